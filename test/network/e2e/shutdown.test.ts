/**
 * Graceful shutdown of the real executable entry (SPEC-network §1): on SIGTERM/SIGINT the
 * proxy stops listening at once, lets open tunnels run for a short grace (server.ts: 2 s),
 * closes what is left, and exits 0. Driven through the child's stderr lines and sockets only.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startTcpEcho } from "../../helpers/network.ts";
import { rawClient } from "../http/helpers.ts";

const ROOT = resolve(import.meta.dir, "../../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const MAIN = join(ROOT, "src/network/main.ts");
const ESTABLISHED = "HTTP/1.1 200 Connection established\r\n\r\n";

const echo = startTcpEcho();
const dirs: string[] = [];
afterAll(() => {
  echo.stop();
  for (const d of dirs) Bun.spawnSync(["rm", "-rf", d]);
});

/** Start the CLI in a child; resolves with its HTTP proxy port once every listener is up. */
async function startChild() {
  const dir = mkdtempSync(join(tmpdir(), "cnp-shutdown-"));
  dirs.push(dir);
  const cfg = join(dir, "config.toml");
  writeFileSync(cfg, '[network_proxy]\nmode = "full"\n[network_proxy.policy]\nallowed_domains = ["127.0.0.1"]\n');
  const proc = Bun.spawn([BUN, MAIN, "--config", cfg, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, CODEX_HOME: dir },
    stdout: "ignore",
    stderr: "pipe",
  });
  let stderr = "";
  const waiters: Array<{ text: string; resolve(): void }> = [];
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      stderr += dec.decode(chunk, { stream: true });
      for (const w of waiters) if (stderr.includes(w.text)) w.resolve();
    }
  })();
  /** Resolve when stderr contains `text`; reject after 10 s (a failsafe, never a wait). */
  const waitFor = (text: string): Promise<void> => {
    const d = Promise.withResolvers<void>();
    const t = setTimeout(() => d.reject(new Error(`stderr never showed ${text}: ${stderr}`)), 10_000);
    waiters.push({ text, resolve: () => (clearTimeout(t), d.resolve()) });
    if (stderr.includes(text)) d.resolve();
    return d.promise;
  };
  try {
    await waitFor("admin API listening on");
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  const port = Number(/HTTP proxy listening on 127\.0\.0\.1:(\d+)/.exec(stderr)?.[1]);
  return { proc, port, waitFor };
}

async function refused(port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    return false;
  } catch {
    return true;
  }
}

test("SIGTERM: stops listening at once, an open tunnel still works until its client ends it, exit 0", async () => {
  const child = await startChild();
  try {
    const c = await rawClient(child.port);
    c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\n`);
    await c.until((t) => t === ESTABLISHED);
    child.proc.kill("SIGTERM");
    await child.waitFor("received SIGTERM; shutting down");
    expect(await refused(child.port)).toBe(true);
    c.write("after the signal");
    expect(await c.until((t) => t.endsWith("after the signal"))).toBe(ESTABLISHED + "after the signal");
    c.socket.end();
    expect(await child.proc.exited).toBe(0);
  } finally {
    child.proc.kill("SIGKILL");
  }
}, 15_000);

test("SIGINT: a tunnel still open when the grace ends is closed, exit 0", async () => {
  const child = await startChild();
  try {
    const c = await rawClient(child.port);
    c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\n`);
    await c.until((t) => t === ESTABLISHED);
    child.proc.kill("SIGINT");
    expect(await c.closed(10_000)).toBe(ESTABLISHED);
    expect(await child.proc.exited).toBe(0);
  } finally {
    child.proc.kill("SIGKILL");
  }
}, 15_000);
