/**
 * Reverse half-close through the raw tunnels (HTTP CONNECT and SOCKS5 CONNECT; TCP
 * half-close, RFC 9293 §3.6): an upstream that sends its bytes and then FIN while the client
 * is still sending. The proxy must pass the FIN on to the client after every upstream byte,
 * keep carrying the client's bytes upstream, and close once the client finishes too.
 * Raw sockets on both ends; every wait is on an event, bounded by a failsafe.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { createHash, randomBytes } from "node:crypto";
import { createTestContext } from "../helpers/network.ts";
import { startHttpProxyListener } from "../../src/network/http/listener.ts";
import { startSocks5Listener } from "../../src/network/socks5/listener.ts";
import { within } from "../helpers/within.ts";
import { rawClient, type RawClient } from "../helpers/raw-client.ts";

const ESTABLISHED = "HTTP/1.1 200 Connection established\r\n\r\n";
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface UpstreamConn {
  received: Uint8Array[];
  /** Resolves with every byte the client sent once the upstream socket closed. */
  done: PromiseWithResolvers<Uint8Array>;
}

/**
 * An upstream (allowHalfOpen) that writes `greeting` on accept, then FIN (`shutdown()`), and
 * keeps reading until the client's FIN closes the connection.
 */
function startFinFirstUpstream(greeting: Uint8Array) {
  const conns: UpstreamConn[] = [];
  const next = Promise.withResolvers<UpstreamConn>();
  const listener = Bun.listen<{ conn: UpstreamConn; off: number }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        const conn: UpstreamConn = { received: [], done: Promise.withResolvers<Uint8Array>() };
        conns.push(conn);
        next.resolve(conn);
        s.data = { conn, off: 0 };
        send(s);
      },
      drain: (s) => send(s),
      data(s, chunk) {
        s.data.conn.received.push(new Uint8Array(chunk));
      },
      end(s) {
        s.end();
      },
      close(s) {
        s.data.conn.done.resolve(Buffer.concat(s.data.conn.received));
      },
    },
  });
  // Write what the socket takes; the rest on `drain`; FIN after the last byte.
  function send(s: Socket<{ conn: UpstreamConn; off: number }>) {
    while (s.data.off < greeting.byteLength) {
      const n = s.write(greeting.subarray(s.data.off));
      if (n <= 0) return;
      s.data.off += n;
    }
    if (s.data.off === greeting.byteLength) {
      s.data.off++; // FIN once
      s.shutdown();
    }
  }
  return { port: listener.port, first: next.promise, conns, stop: () => listener.stop(true) };
}

const { ctx } = createTestContext({ policy: { allowedDomains: ["127.0.0.1"], allowLocalBinding: true } });
const http = startHttpProxyListener(ctx, { host: "127.0.0.1", port: 0 });
const socks = startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 });
const upstreams: Array<{ stop(): void }> = [];
afterAll(async () => {
  await http.stop();
  await socks.stop();
  for (const u of upstreams) u.stop();
});

/** Open a tunnel to 127.0.0.1:`port` through `via`; resolves with the client and the reply length. */
async function openTunnel(via: "connect" | "socks5", port: number): Promise<{ c: RawClient; replyLength: number }> {
  if (via === "connect") {
    const c = await rawClient(http.port, { allowHalfOpen: true });
    c.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    return { c, replyLength: ESTABLISHED.length };
  }
  const c = await rawClient(socks.port, { allowHalfOpen: true });
  c.write(new Uint8Array([0x05, 0x01, 0x00]));
  await c.until((t) => t.length >= 2);
  c.write(new Uint8Array([0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, port >> 8, port & 0xff]));
  return { c, replyLength: 2 + 10 };
}

/** Every byte the upstream got from the client, once the client's FIN closed it (bounded). */
async function clientBytesAtUpstream(first: Promise<UpstreamConn>): Promise<Uint8Array> {
  return within(first.then((c) => c.done.promise), 10_000, "the upstream to see the client's FIN");
}

for (const via of ["connect", "socks5"] as const) {
  describe(`${via} tunnel: upstream FIN while the client still sends`, () => {
    test("the client gets every upstream byte and then FIN; its later bytes still reach the upstream", async () => {
      const upstream = startFinFirstUpstream(new TextEncoder().encode("greeting, then FIN"));
      upstreams.push(upstream);
      const { c, replyLength } = await openTunnel(via, upstream.port);
      // The FIN arrives after the greeting; the connection stays open for the client's bytes.
      const got = await c.ended();
      expect(got.slice(replyLength)).toBe("greeting, then FIN");
      if (via === "connect") expect(got.slice(0, replyLength)).toBe(ESTABLISHED);
      const after = randomBytes(1024 * 1024 + 7);
      await c.writeAll(new TextEncoder().encode("after the upstream FIN: "));
      await c.writeAll(after);
      c.socket.shutdown();
      const seen = await clientBytesAtUpstream(upstream.first);
      expect(seen.byteLength).toBe(24 + after.byteLength);
      expect(Buffer.from(seen.subarray(0, 24)).toString()).toBe("after the upstream FIN: ");
      expect(sha(seen.subarray(24))).toBe(sha(after));
      // Both directions are finished: the proxy closes the client connection.
      await c.closed(5_000);
    });

    test("a large upstream answer before the FIN arrives whole, and the FIN only after it", async () => {
      const big = randomBytes(4 * 1024 * 1024 + 3);
      const upstream = startFinFirstUpstream(big);
      upstreams.push(upstream);
      const { c, replyLength } = await openTunnel(via, upstream.port);
      const got = await c.ended(10_000);
      expect(got.length).toBe(replyLength + big.byteLength);
      expect(sha(c.bytes().subarray(replyLength))).toBe(sha(big));
      c.write("still here");
      c.socket.shutdown();
      const seen = await clientBytesAtUpstream(upstream.first);
      expect(Buffer.from(seen).toString()).toBe("still here");
      await c.closed(5_000);
    });
  });
}
