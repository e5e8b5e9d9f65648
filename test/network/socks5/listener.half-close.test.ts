/**
 * SOCKS5 tunnel half-close (SPEC-network §5; TCP half-close, RFC 9293 §3.6): a client that
 * sends its request bytes and then FIN (shutdown of its sending side) must still read the
 * upstream's answer. The listener runs with `allowHalfOpen` and passes the FIN upstream; the
 * fake upstream answers only once it has seen that FIN.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { createTestContext } from "../../helpers/network.ts";
import { startSocks5Listener, type Socks5ListenerHandle } from "../../../src/network/socks5/listener.ts";
import { domainRequest, GREETING, ipv4Request, readReply } from "../../helpers/socks5.ts";
import { RawClient } from "../../helpers/raw-client.ts";

const CONNECT = 0x01;

/** Upstream that collects bytes until the peer's FIN, then answers `answer to <bytes>` and closes. */
function startAnswerAfterFin(): TCPSocketListener<{ got: string }> {
  const decoder = new TextDecoder();
  return Bun.listen<{ got: string }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { got: "" };
      },
      data(s, chunk) {
        s.data.got += decoder.decode(chunk);
      },
      end(s) {
        s.end(`answer to ${s.data.got}`);
      },
    },
  });
}

const upstream = startAnswerAfterFin();
const { ctx } = createTestContext(
  { policy: { allowedDomains: ["allowed.test", "127.0.0.1"], allowLocalBinding: true } },
  { "allowed.test": ["127.0.0.1"] },
);
let proxy: Socks5ListenerHandle;

beforeAll(() => {
  proxy = startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await proxy.stop();
  upstream.stop(true);
});

for (const [name, request] of [
  ["IPv4 target", () => ipv4Request(CONNECT, "127.0.0.1", upstream.port)],
  ["domain target", () => domainRequest(CONNECT, "allowed.test", upstream.port)],
] as const) {
  test(`${name}: client sends, half-closes, and still reads the upstream's answer`, async () => {
    const c = await RawClient.connect(proxy.port);
    c.write(GREETING);
    expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
    c.write(request());
    expect((await readReply(c)).rep).toBe(0x00);
    c.write("the question");
    c.socket.shutdown(); // FIN: nothing more from the client, but it keeps reading
    expect(new TextDecoder().decode(await c.readToClose())).toBe("answer to the question");
  });
}

test("a FIN during the handshake still closes the connection", async () => {
  const c = await RawClient.connect(proxy.port);
  c.write(GREETING);
  expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
  c.socket.shutdown();
  expect((await c.readToClose()).byteLength).toBe(0);
});

test("request, payload and FIN before the reply: the payload and the FIN still reach the upstream", async () => {
  const c = await RawClient.connect(proxy.port);
  c.write(GREETING);
  expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
  // The session keeps reading while the request is judged and dialed: the FIN arrives then.
  c.write(concat(ipv4Request(CONNECT, "127.0.0.1", upstream.port), new TextEncoder().encode("early question")));
  c.socket.shutdown();
  const all = await c.readToClose();
  expect(all[1]).toBe(0x00); // REP succeeded (10-byte IPv4 reply)
  expect(new TextDecoder().decode(all.subarray(10))).toBe("answer to early question");
});

test("a client sending 1 MiB before the reply is paused, not dropped: every byte reaches the upstream", async () => {
  // An upstream that counts bytes until the FIN and answers with the count.
  using counter = Bun.listen<{ n: number }>({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = { n: 0 };
      },
      data(s, chunk) {
        s.data.n += chunk.byteLength;
      },
      end(s) {
        s.end(`got ${s.data.n}`);
      },
    },
  });
  const big = new Uint8Array(1024 * 1024).fill(0x61);
  const c = await RawClient.connect(proxy.port);
  c.write(GREETING);
  expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
  await c.writeAll(concat(ipv4Request(CONNECT, "127.0.0.1", counter.port), big));
  c.socket.shutdown();
  const all = await c.readToClose();
  expect(all[1]).toBe(0x00);
  expect(new TextDecoder().decode(all.subarray(10))).toBe(`got ${big.byteLength}`);
});

function concat(head: number[], b: Uint8Array): Uint8Array {
  const a = Uint8Array.from(head);
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
