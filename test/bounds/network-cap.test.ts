/**
 * `network_proxy.max_connections` (SPEC-network §12): one cap across the HTTP and SOCKS5
 * listeners (admin not counted); past it a connection is closed at once, counted in
 * `codex_network_proxy_connections_refused_total`, and warned about once a minute.
 */
import { expect, test } from "bun:test";
import type { Socket } from "bun";
import { parseProm, startTestProxy } from "../helpers/network.ts";

async function connect(port: number) {
  const closed = Promise.withResolvers<void>();
  const c = { text: "", closed: closed.promise, socket: null as unknown as Socket<undefined>, got: () => {} };
  try {
    c.socket = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data(_s, d) {
          c.text += new TextDecoder("latin1").decode(d);
          c.got();
        },
        close: () => closed.resolve(),
        error: () => closed.resolve(),
      },
    });
  } catch {
    closed.resolve();
  }
  return c;
}

test("max_connections is shared by HTTP and SOCKS5; past it connections close at once and are counted", async () => {
  await using proxy = await startTestProxy({ config: { maxConnections: 2 } });
  const http = await connect(proxy.ports.http);
  const socks = await connect(proxy.ports.socks!);
  // Prove both are admitted: a SOCKS5 greeting is answered, an HTTP request too.
  const greeted = Promise.withResolvers<void>();
  socks.got = () => socks.text.length >= 2 && greeted.resolve();
  socks.socket.write(new Uint8Array([5, 1, 0]));
  await greeted.promise;
  expect([...socks.text].map((ch) => ch.charCodeAt(0))).toEqual([5, 0]);
  for (const port of [proxy.ports.http, proxy.ports.socks!]) {
    const extra = await connect(port);
    await extra.closed;
    expect(extra.text).toBe("");
  }
  expect(proxy.connections.refused).toBe(2);
  const metrics = parseProm(await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/metrics`)).text());
  expect(metrics.get("codex_network_proxy_connections_refused_total")).toBe(2);
  expect(proxy.lines.filter((l) => l.includes("connection limit reached"))).toEqual([
    "WARN: connection limit reached (max_connections=2): refused 1 connection(s) since the last warning",
  ]);
  http.socket.end();
  socks.socket.end();
});
