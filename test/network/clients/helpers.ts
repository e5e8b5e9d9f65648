/**
 * Helpers for the client tests: the real CLI as a `codex-network-proxy` command on PATH (a
 * two-line sh wrapper around `bun src/network/main.ts`), a shell runner, and a folder that
 * removes itself.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "../../..");

/** A temp folder with `[Symbol.dispose]` that removes it. */
export function tempDir(prefix = "cnp-clients-"): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** Write `bin/codex-network-proxy` under `dir`; returns the bin folder to put first on PATH. */
export function installCliWrapper(dir: string): string {
  const bin = join(dir, "bin");
  const file = join(bin, "codex-network-proxy");
  Bun.spawnSync(["mkdir", "-p", bin]);
  writeFileSync(file, `#!/bin/sh\nexec '${process.execPath}' '${join(REPO, "src/network/main.ts")}' "$@"\n`);
  chmodSync(file, 0o755);
  return bin;
}

export interface RunResult {
  code: number;
  out: string;
  err: string;
}

/** Run `argv` with exactly `env` (plus nothing inherited), stdin closed; bounded by `timeoutMs`. */
export async function run(argv: string[], env: Record<string, string>, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const p = Bun.spawn(argv, { env, cwd: opts.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  try {
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  } finally {
    clearTimeout(timer);
  }
}

/** A minimal environment for child processes: PATH with `bin` first, HOME, no proxy variables. */
export function baseEnv(bin: string, home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOME: home, LANG: "C.UTF-8", ...extra };
}
