/**
 * ClientRequest.target (a request-target written verbatim, RFC 9112 §3.2) and
 * ClientRequest.bodyLength (a stream body framed by content-length, §6.2), against raw TCP
 * upstreams that see the exact bytes.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHttp1Client } from "../../src/http1/client.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";
import { bodyText, startRawServer } from "./helpers.ts";

const enc = new TextEncoder();
const client = createHttp1Client({ proxyEnv: null });
afterAll(() => client.close());

const url = (port: number) => new URL(`http://127.0.0.1:${port}/normalised`);
const hostHdr = (port: number): [string, string] => ["host", `127.0.0.1:${port}`];
const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/** A stream yielding `pieces` one per pull. */
function streamOf(...pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const p = pieces.shift();
      if (p) c.enqueue(p);
      else c.close();
    },
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

describe("target", () => {
  test("written verbatim: dot-segments, %2F, ';' and the query survive; url only names the origin", async () => {
    const raw = "/a/../b/%2F;p=1/./c%2e%2E/{x}|^`\\?q=%2F..&r=a/../b&s=\"'<>";
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write(OK);
    });
    const res = await client.request({ url: url(server.port), target: raw, method: "GET", headers: [hostHdr(server.port)] });
    expect(await bodyText(res.body)).toBe("ok");
    expect((await server.conn(0)).text()).toBe(`GET ${raw} HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`);
  });

  test("OPTIONS * is sent in asterisk-form", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write(OK);
    });
    const res = await client.request({ url: url(server.port), target: "*", method: "OPTIONS", headers: [hostHdr(server.port)] });
    expect(await bodyText(res.body)).toBe("ok");
    expect((await server.conn(0)).text()).toStartWith("OPTIONS * HTTP/1.1\r\n");
  });

  test("via an HTTP proxy: absolute-form scheme://authority + target (authority alone for *)", async () => {
    using proxy = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n", 1);
      c.write(OK);
      await c.waitForText("\r\n\r\n", 2);
      c.write(OK);
    });
    const viaProxy = createHttp1Client({ proxyEnv: { http_proxy: `http://127.0.0.1:${proxy.port}` } });
    try {
      const target = new URL("http://origin.test:8080/x");
      const a = await viaProxy.request({ url: target, target: "/a/../b;c?d=%2F", method: "GET", headers: [["host", "origin.test:8080"]] });
      expect(await bodyText(a.body)).toBe("ok");
      const b = await viaProxy.request({ url: target, target: "*", method: "OPTIONS", headers: [["host", "origin.test:8080"]] });
      expect(await bodyText(b.body)).toBe("ok");
      const lines = (await proxy.conn(0)).text().split("\r\n").filter((l) => / HTTP\/1\.1$/.test(l));
      expect(lines).toEqual(["GET http://origin.test:8080/a/../b;c?d=%2F HTTP/1.1", "OPTIONS http://origin.test:8080 HTTP/1.1"]);
    } finally {
      viaProxy.close();
    }
  });

  test.each([
    ["no leading slash", "GET", "a/b", "request-target must start with /"],
    ["absolute-form", "GET", "http://h/a", "request-target must start with /"],
    ["empty", "GET", "", "request-target must start with /"],
    ["space", "GET", "/a b", "invalid byte in request-target"],
    ["CR LF", "GET", "/a\r\nx: y", "invalid byte in request-target"],
    ["DEL", "GET", "/a\x7f", "invalid byte in request-target"],
    ["non-ASCII", "GET", "/caf\u00e9", "invalid byte in request-target"],
    ["* for GET", "GET", "*", "request-target * is only valid for OPTIONS"],
  ])("%s → TypeError before any dial", async (_name, method, target, message) => {
    using server = startRawServer();
    const err = await rejection(client.request({ url: url(server.port), target, method, headers: [hostHdr(server.port)] }));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe(message);
    expect(server.conns.length).toBe(0);
  });
});

describe("bodyLength", () => {
  test("a stream with bodyLength goes out with content-length, unframed, byte-exact", async () => {
    const pieces = [enc.encode("abc"), new Uint8Array(0), new Uint8Array(200_000).map((_, i) => i & 0xff), enc.encode("z")];
    const total = 3 + 200_000 + 1;
    const expectedBody = Buffer.concat(pieces);
    using server = startRawServer(async (c) => {
      await c.waitFor((a) => {
        const end = Buffer.from(a).indexOf("\r\n\r\n");
        return end >= 0 && a.length - end - 4 >= total;
      });
      c.write(OK);
    });
    const res = await client.request({
      url: url(server.port),
      target: "/up",
      method: "PUT",
      headers: [hostHdr(server.port), ["content-length", "1"], ["transfer-encoding", "chunked"]],
      body: streamOf(...pieces),
      bodyLength: total,
    });
    expect(await bodyText(res.body)).toBe("ok");
    const all = Buffer.from((await server.conn(0)).all());
    const end = all.indexOf("\r\n\r\n") + 4;
    expect(all.subarray(0, end).toString("latin1")).toBe(
      `PUT /up HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\ncontent-length: ${total}\r\n\r\n`,
    );
    expect(all.subarray(end).equals(expectedBody)).toBe(true);
  });

  test("the connection is reused after a bodyLength stream", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("hello");
      c.write(OK);
      await c.waitForText("world");
      c.write(OK);
    });
    for (const word of ["hello", "world"]) {
      const res = await client.request({
        url: url(server.port),
        method: "POST",
        headers: [hostHdr(server.port)],
        body: streamOf(enc.encode(word)),
        bodyLength: 5,
      });
      expect(await bodyText(res.body)).toBe("ok");
    }
    expect(server.conns.length).toBe(1);
  });

  test("a stream yielding more than bodyLength: rejects (aborted), extra bytes never written, connection closed", async () => {
    using server = startRawServer();
    const err = await rejection(
      client.request({
        url: url(server.port),
        method: "POST",
        headers: [hostHdr(server.port)],
        body: streamOf(enc.encode("1234"), enc.encode("5678")),
        bodyLength: 6,
      }),
    );
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).kind).toBe("aborted");
    expect((err as Error).message).toBe("request body stream yielded more than its bodyLength (6 bytes)");
    const conn = await server.conn(0);
    await conn.closed.promise;
    expect(conn.text()).toBe(`POST /normalised HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\ncontent-length: 6\r\n\r\n1234`);
  });

  test("a stream ending before bodyLength: rejects (aborted), connection closed", async () => {
    using server = startRawServer();
    const err = await rejection(
      client.request({
        url: url(server.port),
        method: "POST",
        headers: [hostHdr(server.port)],
        body: streamOf(enc.encode("1234")),
        bodyLength: 10,
      }),
    );
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).kind).toBe("aborted");
    expect((err as Error).message).toBe("request body stream ended after 4 of 10 bytes (bodyLength)");
    const conn = await server.conn(0);
    await conn.closed.promise;
    expect(conn.text()).toEndWith("content-length: 10\r\n\r\n1234");
  });

  test("a mismatch after the response head arrived errors the response body", async () => {
    const gate = Promise.withResolvers<void>();
    let pulls = 0;
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\nab");
      // An early answer (e.g. a 413 while the upload runs): the head arrives, the body is open.
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345");
    });
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        pulls++;
        if (pulls === 1) c.enqueue(enc.encode("ab"));
        else {
          await gate.promise;
          c.enqueue(enc.encode("cdef"));
        }
      },
    });
    const res = await client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body, bodyLength: 4 });
    expect(res.status).toBe(200);
    gate.resolve();
    const err = await rejection(bodyText(res.body));
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).kind).toBe("aborted");
    await (await server.conn(0)).closed.promise;
  });

  test.each([
    ["negative", -1, null],
    ["fractional", 1.5, null],
    ["NaN", Number.NaN, null],
    ["bytes of another length", 3, enc.encode("four")],
    ["no body but a length", 2, null],
  ])("%s → TypeError before any dial", async (_name, bodyLength, body) => {
    using server = startRawServer();
    const err = await rejection(
      client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body, bodyLength }),
    );
    expect(err).toBeInstanceOf(TypeError);
    expect(server.conns.length).toBe(0);
  });

  test("bodyLength equal to a byte body's length (or 0 without a body) is accepted", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("four");
      c.write(OK);
      await c.waitForText("\r\n\r\n", 2);
      c.write(OK);
    });
    const a = await client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], body: enc.encode("four"), bodyLength: 4 });
    expect(await bodyText(a.body)).toBe("ok");
    const b = await client.request({ url: url(server.port), method: "POST", headers: [hostHdr(server.port)], bodyLength: 0 });
    expect(await bodyText(b.body)).toBe("ok");
    expect((await server.conn(0)).text()).toEndWith("content-length: 4\r\n\r\nfourPOST /normalised HTTP/1.1\r\n" + `host: 127.0.0.1:${server.port}\r\ncontent-length: 0\r\n\r\n`);
  });
});
