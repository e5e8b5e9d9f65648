/**
 * The one way tests run a child process to completion: `runChild(cmd, opts)` writes `stdin`,
 * collects stdout and stderr, and is bounded (default 15 s, then SIGKILL and the exit code
 * says so). Children get a small environment from `childEnv()`: PATH, HOME and this run's
 * TMPDIR (so their temporary files land in the folder test/setup.ts checks), plus `env`;
 * an `undefined` value removes a variable.
 */

/** PATH, HOME and TMPDIR of this run, then `extra` (undefined values dropped). */
export function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const merged: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    ...extra,
  };
  return Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
}

/** How a child ended and what it printed. */
export interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd` to completion (see the module comment). */
export async function runChild(
  cmd: string[],
  opts: { stdin?: string | Uint8Array; env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<ChildResult> {
  const proc = Bun.spawn(cmd, {
    stdin: opts.stdin === undefined ? "ignore" : typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin,
    stdout: "pipe",
    stderr: "pipe",
    env: childEnv(opts.env),
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 15_000,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}
