/**
 * Graceful shutdown of the real executable entry (SPEC-network §1): on SIGTERM/SIGINT the
 * proxy stops listening at once, lets open tunnels run for a short grace (server.ts: 2 s),
 * closes what is left, and exits 0. Driven through the child's stderr lines and sockets only.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectRefused as refused, spawnNetworkProxy, startTcpEcho } from "../../helpers/network.ts";
import { rawClient } from "../../helpers/raw-client.ts";

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
  const args = ["--config", cfg, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
  const { proc, stderr, waitFor } = spawnNetworkProxy(args, dir);
  try {
    await waitFor("admin API listening on");
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  const port = Number(/HTTP proxy listening on 127\.0\.0\.1:(\d+)/.exec(stderr())?.[1]);
  return { proc, port, waitFor };
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
