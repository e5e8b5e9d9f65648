/**
 * The HTTP/1.1 client against raw TCP upstreams (exact bytes both ways): request heads with
 * the secret header, body framings, keep-alive, retry of a stale pooled connection,
 * streaming without batching, aborts, and errors before the response head.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHttp1Client, INLINE_BODY_MAX } from "../../src/http1/client.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";
import { bodyText, RawConn, startRawServer } from "../helpers/http1.ts";
import { WAIT_MS, within } from "../helpers/within.ts";

const enc = new TextEncoder();
const dials: string[] = [];
const zeroed: Uint8Array[] = [];
const flow: boolean[] = [];
let onPaused: (() => void) | null = null;
const client = createHttp1Client(
  { proxyEnv: null },
  {
    onDial: (k) => dials.push(k),
    onHeadZeroed: (h) => zeroed.push(h),
    onFlow: (p) => {
      flow.push(p);
      if (p) onPaused?.();
    },
  },
);
afterAll(() => client.close());

const url = (port: number, path = "/") => new URL(`http://127.0.0.1:${port}${path}`);
const hostHdr = (port: number): [string, string] => ["host", `127.0.0.1:${port}`];

/** Answer every request head on a connection with `response(n)` (n counts requests on that connection). */
function respondEach(response: (n: number, c: RawConn) => string | null) {
  return (c: RawConn) => {
    let n = 0;
    const next = async () => {
      for (;;) {
        const text = await c.waitForText("\r\n\r\n", n + 1);
        void text;
        const r = response(n, c);
        n++;
        if (r === null) return;
        c.write(r);
      }
    };
    void next();
  };
}

async function expectUpstreamError(p: Promise<unknown>, kind: UpstreamError["kind"]): Promise<UpstreamError> {
  let err: unknown = null;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UpstreamError);
  expect((err as UpstreamError).kind).toBe(kind);
  return err as UpstreamError;
}

describe("request bytes", () => {
  test("head (incl. the secret header) and a small body arrive exactly, in one buffer that is zeroed after the write", async () => {
    using server = startRawServer(respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const secret = enc.encode("Bearer sk-proj-TESTKEY_0123456789");
    zeroed.length = 0;
    const res = await client.request({
      url: url(server.port, "/v1/responses?api-version=2024"),
      method: "POST",
      headers: [hostHdr(server.port), ["content-type", "application/json"], ["authorization", "Bearer client"], ["content-length", "1"]],
      secretHeader: { name: "authorization", value: secret },
      body: enc.encode('{"a":1}'),
    });
    expect(await bodyText(res.body)).toBe("ok");
    const expectedHead =
      "POST /v1/responses?api-version=2024 HTTP/1.1\r\n" +
      `host: 127.0.0.1:${server.port}\r\n` +
      "content-type: application/json\r\n" +
      "authorization: Bearer sk-proj-TESTKEY_0123456789\r\n" +
      "content-length: 7\r\n\r\n";
    const conn = await server.conn(0);
    expect(await conn.waitForText('{"a":1}')).toBe(expectedHead + '{"a":1}');
    expect(zeroed.length).toBe(1);
    // Head and body were merged into one write (INLINE_BODY_MAX); the whole buffer is zeroed.
    expect(zeroed[0]!.length).toBe(expectedHead.length + 7);
    expect(zeroed[0]!.every((b) => b === 0)).toBe(true);
    // The caller's secret buffer is left alone (it belongs to the key holder).
    expect(Buffer.from(secret).toString()).toBe("Bearer sk-proj-TESTKEY_0123456789");
  });

  test("secretHeaders (MITM hook credentials): prefix + locked bytes in the head, client fields of those names dropped, head zeroed", async () => {
    using server = startRawServer(respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const token = enc.encode("ghp-hook-token-1");
    zeroed.length = 0;
    const res = await client.request({
      url: url(server.port, "/repos/acme/x"),
      method: "GET",
      headers: [hostHdr(server.port), ["Authorization", "Bearer agent"], ["x-npm", "mine"]],
      secretHeaders: [
        { name: "authorization", prefix: "Bearer ", value: token },
        { name: "x-npm", value: enc.encode("npm-tok") },
      ],
    });
    expect(await bodyText(res.body)).toBe("ok");
    const expectedHead = `GET /repos/acme/x HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\nauthorization: Bearer ghp-hook-token-1\r\nx-npm: npm-tok\r\n\r\n`;
    expect(await (await server.conn(0)).waitForText("npm-tok\r\n\r\n")).toBe(expectedHead);
    expect(zeroed.length).toBe(1);
    expect(zeroed[0]!.every((b) => b === 0)).toBe(true);
    expect(Buffer.from(token).toString()).toBe("ghp-hook-token-1");
  });

  test("a byte body larger than INLINE_BODY_MAX is written after the head, which alone is zeroed", async () => {
    using server = startRawServer(respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const body = new Uint8Array(INLINE_BODY_MAX + 1).fill(0x62);
    zeroed.length = 0;
    const res = await client.request({
      url: url(server.port, "/big"),
      method: "POST",
      headers: [hostHdr(server.port)],
      secretHeader: { name: "authorization", value: enc.encode("Bearer k") },
      body,
    });
    expect(await bodyText(res.body)).toBe("ok");
    const expectedHead = `POST /big HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\nauthorization: Bearer k\r\ncontent-length: ${body.length}\r\n\r\n`;
    const conn = await server.conn(0);
    expect(await conn.waitForText("b".repeat(body.length))).toBe(expectedHead + "b".repeat(body.length));
    expect(zeroed.length).toBe(1);
    expect(zeroed[0]!.length).toBe(expectedHead.length);
    expect(zeroed[0]!.every((b) => b === 0)).toBe(true);
    expect(body.every((b) => b === 0x62)).toBe(true);
  });

  test("a stream body is sent chunked, with backpressure, and fully", async () => {
    const pieces = [enc.encode("abc"), new Uint8Array(0), new Uint8Array(100_000).fill(0x61), enc.encode("z")];
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n0\r\n\r\n");
      c.write("HTTP/1.1 204 No Content\r\n\r\n");
    });
    const body = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        const p = pieces.shift();
        if (p) ctrl.enqueue(p);
        else ctrl.close();
      },
    });
    const res = await client.request({ url: url(server.port, "/up"), method: "PUT", headers: [hostHdr(server.port)], body });
    expect(res.status).toBe(204);
    expect(await bodyText(res.body)).toBe("");
    const got = (await server.conn(0)).text();
    expect(got).toBe(
      `PUT /up HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\ntransfer-encoding: chunked\r\n\r\n` +
        `3\r\nabc\r\n186a0\r\n${"a".repeat(100_000)}\r\n1\r\nz\r\n0\r\n\r\n`,
    );
  });

  test("a large byte body is written completely (partial writes queued)", async () => {
    const size = 8 * 1024 * 1024;
    using server = startRawServer(async (c) => {
      await c.waitFor((a) => a.length >= size + 60);
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    });
    const body = new Uint8Array(size).fill(0x62);
    const res = await client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body });
    expect(res.status).toBe(200);
    const all = (await server.conn(0)).all();
    const headEnd = Buffer.from(all).indexOf("\r\n\r\n") + 4;
    expect(all.length - headEnd).toBe(size);
  });

  test("a body-less POST announces content-length: 0; GET has no framing field", async () => {
    using server = startRawServer(respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    await bodyText((await client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)] })).body);
    await bodyText((await client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] })).body);
    expect((await server.conn(0)).text()).toBe(
      `POST / HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\ncontent-length: 0\r\n\r\n` +
        `GET / HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`,
    );
  });

  test("invalid header values are rejected before any connection is made", async () => {
    const before = dials.length;
    await expect(
      client.request({ url: url(1), method: "GET", headers: [["x-a", "1\r\nx-b: 2"]] }),
    ).rejects.toThrow('invalid byte in value of request header "x-a"');
    expect(dials.length).toBe(before);
  });
});

describe("response bodies", () => {
  test.each([
    ["content-length", ["HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello", " world"]],
    ["chunked split anywhere", ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r", "\nhello\r\n6;e=1\r\n wo", "rld\r\n0\r\nt: 1\r\n\r\n"]],
    ["close-delimited", ["HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nhello", " world", null]],
    ["HTTP/1.0", ["HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nhello world"]],
    ["interim 100 and 103 skipped", ["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world"]],
  ] as const)("%s", async (_name, parts) => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      for (const p of parts) {
        if (p === null) c.socket.end();
        else c.write(p);
      }
    });
    const res = await client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
    expect(res.status).toBe(200);
    expect(await bodyText(res.body)).toBe("hello world");
  });

  test("HEAD, 204 and 304 have empty bodies and keep the connection", async () => {
    using server = startRawServer(
      respondEach((n) =>
        n === 0
          ? "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"
          : n === 1
            ? "HTTP/1.1 204 No Content\r\n\r\n"
            : n === 2
              ? "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n"
              : null,
      ),
    );
    for (const [method, status] of [["HEAD", 200], ["DELETE", 204], ["GET", 304]] as const) {
      const res = await client.request({ url: url(server.port), method, headers: [hostHdr(server.port)] });
      expect(res.status).toBe(status);
      expect(await bodyText(res.body)).toBe("");
    }
    expect(server.conns.length).toBe(1);
  });

  test("a response body is streamed chunk by chunk, as the upstream sends it (no batching)", async () => {
    const sent = Promise.withResolvers<RawConn>();
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
      sent.resolve(c);
    });
    const res = await client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body: enc.encode("{}") });
    const c = await sent.promise;
    const reader = res.body.getReader();
    const events = ["data: one\n\n", "data: two\n\n", "data: three\n\n"];
    for (const ev of events) {
      // The next event is only sent once the client has the previous one.
      c.write(`${ev.length.toString(16)}\r\n${ev}\r\n`);
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      expect(Buffer.from(value!).toString()).toBe(ev);
    }
    c.write("0\r\n\r\n");
    expect((await reader.read()).done).toBe(true);
  });

  test("a consumer that does not read pauses the upstream socket; reading resumes it", async () => {
    // Large enough to overflow the loopback socket buffers once the client stops reading.
    const size = 48 * 1024 * 1024;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) payload[i] = (i >> 12) % 251;
    const blocked = Promise.withResolvers<void>();
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
      let off = 0;
      const pump = () => {
        while (off < size) {
          const want = Math.min(256 * 1024, size - off);
          const n = c.socket.write(payload.subarray(off, off + want));
          if (n > 0) off += n;
          if (n < want) {
            blocked.resolve(); // the client stopped reading: its kernel buffers are full
            return;
          }
        }
      };
      c.onDrain = pump;
      pump();
    });
    const paused = Promise.withResolvers<void>();
    onPaused = paused.resolve;
    flow.length = 0;
    const res = await client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
    // Nobody reads yet: the body queue fills, the socket is paused, and the server's writes block.
    await paused.promise;
    await blocked.promise;
    onPaused = null;
    const reader = res.body.getReader();
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let reads = 0; reads < 1_000_000; reads++) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(value!);
      total += value!.length;
    }
    expect(total).toBe(size);
    expect(Buffer.concat(parts).equals(Buffer.from(payload))).toBe(true);
    expect(flow[0]).toBe(true);
    expect(flow).toContain(false);
  });
});

describe("keep-alive", () => {
  test("two requests reuse one socket; connection: close ends reuse", async () => {
    using server = startRawServer(
      respondEach((n) =>
        n === 0
          ? "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na"
          : n === 1
            ? "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n1\r\nb\r\n0\r\n\r\n"
            : null,
      ),
    );
    const req = () => client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
    expect(await bodyText((await req()).body)).toBe("a");
    expect(await bodyText((await req()).body)).toBe("b");
    expect(server.conns.length).toBe(1);
    await server.conns[0]!.closed.promise; // the client closed it after "connection: close"
    expect(await bodyText((await req()).body)).toBe("a");
    expect(server.conns.length).toBe(2);
  });

  test("a pooled connection the server drops before answering is retried once on a fresh one (byte body)", async () => {
    using server = startRawServer((c) => {
      if (c === server.conns[0]) {
        respondEach((n) => {
          if (n === 0) return "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na";
          c.socket.terminate(); // the keep-alive race: closed without a byte of response
          return null;
        })(c);
      } else respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb")(c);
    });
    const req = (body?: Uint8Array | ReadableStream<Uint8Array>) =>
      client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body });
    expect(await bodyText((await req(enc.encode("x"))).body)).toBe("a");
    expect(await bodyText((await req(enc.encode("y"))).body)).toBe("b");
    expect(server.conns.length).toBe(2);
    expect((await server.conn(1)).text()).toContain("\r\n\r\ny");
  });

  test("a stream body is never replayed", async () => {
    using server = startRawServer((c) => {
      respondEach((n) => {
        if (n === 0) return "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na";
        c.socket.terminate();
        return null;
      })(c);
    });
    const req = (body?: Uint8Array | ReadableStream<Uint8Array>) =>
      client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body });
    expect(await bodyText((await req(enc.encode("x"))).body)).toBe("a");
    const stream = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(enc.encode("y")), c.close()) });
    await expectUpstreamError(req(stream), "closed");
    expect(server.conns.length).toBe(1);
  });

  test("chunked responses keep the connection; at most maxIdlePerOrigin idle connections are kept", async () => {
    using server = startRawServer(
      respondEach(() => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    );
    const small = createHttp1Client({ proxyEnv: null, maxIdlePerOrigin: 1 });
    try {
      const req = () => small.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
      // Two at once need two connections; only one may stay idle afterwards.
      const [a, b] = await Promise.all([req(), req()]);
      expect([await bodyText(a.body), await bodyText(b.body)]).toEqual(["ok", "ok"]);
      expect(server.conns.length).toBe(2);
      await Promise.race([server.conns[0]!.closed.promise, server.conns[1]!.closed.promise]);
      expect(server.conns.filter((c) => c.isClosed).length).toBe(1);
      expect(await bodyText((await req()).body)).toBe("ok");
      expect(server.conns.length).toBe(2);
    } finally {
      small.close();
    }
  });

  test("a response followed by unsolicited bytes is not reused", async () => {
    using server = startRawServer(respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naJUNK"));
    const req = () => client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
    expect(await bodyText((await req()).body)).toBe("a");
    expect(await bodyText((await req()).body)).toBe("a");
    expect(server.conns.length).toBe(2);
  });
});

describe("aborts and errors", () => {
  test("abort mid-stream errors the body and closes the upstream socket", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    });
    const ac = new AbortController();
    const res = await client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)], signal: ac.signal });
    const reader = res.body.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toBe("first");
    ac.abort();
    const err = await reader.read().then(() => null, (e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe("aborted");
    await (await server.conn(0)).closed.promise;
  });

  test("cancelling the body closes the upstream socket", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
    });
    const res = await client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
    const conn = await server.conn(0);
    expect(conn.isClosed).toBe(false);
    await res.body.cancel();
    // 93 body bytes are still owed: the socket cannot go back to the pool, it must close.
    await within(conn.closed.promise, WAIT_MS, "the upstream socket to close after cancel()");
    expect({ closed: conn.isClosed, connections: server.conns.length }).toEqual({ closed: true, connections: 1 });
  });

  test("abort before the response head rejects with kind aborted and closes the socket", async () => {
    using server = startRawServer();
    const ac = new AbortController();
    const p = client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)], signal: ac.signal });
    const c = await server.conn(0);
    await c.waitForText("\r\n\r\n");
    ac.abort();
    await expectUpstreamError(p, "aborted");
    await c.closed.promise;
  });

  test("an already aborted signal rejects without connecting", async () => {
    const before = dials.length;
    await expectUpstreamError(
      client.request({ url: url(1), method: "GET", headers: [], signal: AbortSignal.abort() }),
      "aborted",
    );
    expect(dials.length).toBe(before);
  });

  test.each([
    ["closed before responding", null, "closed", "upstream closed the connection before responding"],
    ["closed mid-head", "HTTP/1.1 200 OK\r\nx-a: 1", "closed", "upstream closed the connection before the response head was complete"],
    ["garbage", "SSH-2.0-OpenSSH\r\n\r\n", "protocol", "invalid response from upstream: not an HTTP/1.x status line"],
    ["101", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "protocol", "unexpected 101 Switching Protocols"],
    ["bad framing", "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", "protocol", "invalid response from upstream: unsupported transfer-encoding"],
  ] as const)("%s → UpstreamError", async (_n, reply, kind, message) => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      if (reply !== null) c.write(reply);
      c.socket.end();
    });
    const err = await expectUpstreamError(
      client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] }),
      kind,
    );
    expect(err.message).toBe(message);
  });

  test("body cut short → the stream errors with kind closed", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
      c.socket.end();
    });
    const res = await client.request({ url: url(server.port), method: "GET", headers: [hostHdr(server.port)] });
    const err = await bodyText(res.body).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe("closed");
  });

  test("connection refused → kind connect; connectTo tries the next address", async () => {
    const closed = startRawServer();
    const deadPort = closed.port;
    closed.stop();
    const refused = await expectUpstreamError(client.request({ url: url(deadPort), method: "GET", headers: [] }), "connect");
    expect(refused.message).toBe(`connect to 127.0.0.1:${deadPort} failed (ECONNREFUSED)`);
    using server = startRawServer(respondEach(() => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    // Port is taken from the URL; the first address refuses, the second answers.
    const res = await client.request({
      url: new URL(`http://pinned.test:${server.port}/`),
      method: "GET",
      headers: [["host", "pinned.test"]],
      connectTo: ["127.0.0.2", "127.0.0.1"], // nothing listens on 127.0.0.2 (the upstream binds 127.0.0.1)
    });
    expect(await bodyText(res.body)).toBe("ok");
    expect((await server.conn(0)).text()).toStartWith("GET / HTTP/1.1\r\nhost: pinned.test\r\n");
  });
});
