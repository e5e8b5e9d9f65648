/**
 * Graceful shutdown of the proxy listeners (SPEC-network §1: on SIGTERM/SIGINT stop listening,
 * close tunnels after a short grace period). `stop({graceMs})` of the HTTP and the SOCKS5
 * listener: new connections are refused at once, an open tunnel keeps working until its client
 * finishes (stop then resolves without waiting for the grace), or is closed when the grace ends.
 * Every wait is on an event, bounded by a failsafe.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { connectRefused as refused, createTestContext, startTcpEcho } from "../../helpers/network.ts";
import { startHttpProxyListener } from "../../../src/network/http/listener.ts";
import { startSocks5Listener } from "../../../src/network/socks5/listener.ts";
import { rawClient, type RawClient } from "../../helpers/raw-client.ts";

/** Far longer than any test may run: a stop() that resolves only when its grace ends fails the test by timeout. */
const LONG_GRACE_MS = 60_000;
const ESTABLISHED = "HTTP/1.1 200 Connection established\r\n\r\n";

const echo = startTcpEcho();
const { ctx } = createTestContext({ policy: { allowedDomains: ["allowed.test", "127.0.0.1"], allowLocalBinding: true } });
afterAll(() => echo.stop());

/** Track whether `p` has settled (checked after an event, never after a sleep). */
function track(p: Promise<void>): { settled(): boolean; promise: Promise<void> } {
  let done = false;
  const promise = p.then(() => {
    done = true;
  });
  return { settled: () => done, promise };
}

/** Open an HTTP CONNECT tunnel to the echo server. */
async function connectTunnel(port: number): Promise<RawClient> {
  const c = await rawClient(port);
  c.write(`CONNECT allowed.test:${echo.port} HTTP/1.1\r\nHost: allowed.test:${echo.port}\r\n\r\n`);
  await c.until((t) => t === ESTABLISHED);
  return c;
}

/** Open a SOCKS5 tunnel (IPv4 target) to the echo server; returns the client once REP 0x00 is in. */
async function socksTunnel(port: number): Promise<RawClient> {
  const c = await rawClient(port);
  c.write(Uint8Array.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]));
  await c.until((t) => t.length >= 12); // 2 bytes method selection + 10 bytes reply
  expect(Array.from(c.bytes().subarray(0, 4))).toEqual([0x05, 0x00, 0x05, 0x00]);
  return c;
}

const kinds = [
  {
    name: "HTTP CONNECT",
    start: () => startHttpProxyListener(ctx, { host: "127.0.0.1", port: 0 }),
    open: connectTunnel,
    prefix: ESTABLISHED.length,
  },
  {
    name: "SOCKS5",
    start: () => startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 }),
    open: socksTunnel,
    prefix: 12,
  },
] as const;

for (const kind of kinds) {
  describe(`${kind.name} listener stop({graceMs})`, () => {
    test("refuses new connections at once; an open tunnel keeps working until its client finishes", async () => {
      const listener = kind.start();
      const c = await kind.open(listener.port);
      const stopped = track(listener.stop({ graceMs: LONG_GRACE_MS }));
      try {
        expect(await refused(listener.port)).toBe(true);
        c.write("still here");
        await c.until((t) => t.endsWith("still here"));
        expect(c.text().slice(kind.prefix)).toBe("still here");
        expect(stopped.settled()).toBe(false); // the tunnel is open: the grace is still running
        c.socket.end();
        await stopped.promise; // resolves as the last connection closes, long before the grace ends
        expect(stopped.settled()).toBe(true);
      } finally {
        c.socket.terminate();
        await listener.stop();
      }
    });

    test("closes a tunnel that is still open when the grace ends", async () => {
      const listener = kind.start();
      const c = await kind.open(listener.port);
      await listener.stop({ graceMs: 50 });
      const all = await c.closed();
      expect(all.length).toBe(kind.prefix);
    });

    test("graceMs 0 (the default) closes open tunnels at once; stop() is idempotent", async () => {
      const listener = kind.start();
      const c = await kind.open(listener.port);
      const first = listener.stop();
      expect(listener.stop({ graceMs: LONG_GRACE_MS })).toBe(first);
      await first;
      await c.closed();
    });
  });
}
