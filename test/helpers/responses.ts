/**
 * Test helpers for the responses proxy: start it as a child process (key piped on stdin),
 * raw HTTP exchanges over TCP, and line-wise stderr waiting. All traffic is on 127.0.0.1.
 */
import type { Subprocess } from "bun";
import { join } from "node:path";
import { childEnv, runChild, type ChildResult } from "./child.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const MAIN = join(ROOT, "src", "responses", "main.ts");
export const BUN = process.execPath;

/** Collects a child's stderr as lines and lets tests wait for a line matching a pattern. */
export class LineWaiter {
  readonly lines: string[] = [];
  private partial = "";
  private waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  readonly ended: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.ended = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this.feed(decoder.decode(chunk, { stream: true }));
      if (this.partial) this.feed("\n");
      for (const w of this.waiters) w.resolve(null as unknown as RegExpMatchArray);
    })();
  }

  private feed(text: string) {
    this.partial += text;
    let nl: number;
    while ((nl = this.partial.indexOf("\n")) >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        const m = line.match(w.re);
        if (m) w.resolve(m);
        return !m;
      });
    }
  }

  /** Resolves with the first (past or future) line matching `re`; null if the stream ends first. */
  wait(re: RegExp): Promise<RegExpMatchArray | null> {
    for (const line of this.lines) {
      const m = line.match(re);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve) => this.waiters.push({ re, resolve }));
  }

  get text(): string {
    return this.lines.join("\n") + (this.partial ? "\n" + this.partial : "");
  }
}

export interface ProxyChild {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  port: number;
  stderr: LineWaiter;
  base: string;
  stop(): Promise<void>;
}

/**
 * Spawn `cmd` (default: bun main.ts) with `args`, write `stdin` and close it, and wait for
 * the listening line. Rejects with the child's stderr if it exits first.
 */
export async function startProxyChild(
  args: string[],
  opts: { key?: string; stdin?: string | Uint8Array; env?: Record<string, string | undefined>; cmd?: string[]; cwd?: string } = {},
): Promise<ProxyChild> {
  const proc = Bun.spawn([...(opts.cmd ?? [BUN, MAIN]), ...args], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: childEnv(opts.env),
    cwd: opts.cwd,
  });
  proc.stdin.write(opts.stdin ?? `${opts.key ?? "sk-test-key_123"}\n`);
  await proc.stdin.end();
  const stderr = new LineWaiter(proc.stderr);
  const m = await Promise.race([
    // Text format: the reference's exact line; --log-format json: the same text as a JSON line's msg.
    stderr.wait(/^(?:responses-api-proxy listening on 127\.0\.0\.1:(\d+)|\{.*"msg":"responses-api-proxy listening on 127\.0\.0\.1:(\d+)".*\})$/),
    proc.exited.then(async () => {
      await stderr.ended;
      return null;
    }),
  ]);
  if (!m) throw new Error(`proxy exited (${proc.exitCode}) before listening:\n${stderr.text}`);
  const port = Number(m[1] ?? m[2]);
  return {
    proc,
    port,
    stderr,
    base: `http://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** Run the responses proxy (bun main.ts) to completion with `stdin` (see child.ts). */
export function runProxyMain(args: string[], stdin: string | Uint8Array = "", env: Record<string, string | undefined> = {}): Promise<ChildResult> {
  return runChild([BUN, MAIN, ...args], { stdin, env });
}

/** `until` predicate: one complete response head with `content-length: 0`. */
export const emptyResponseComplete = (t: string) => /\r\n\r\n$/.test(t) && /content-length: 0\r\n/i.test(t);
