/**
 * The byte paths of the HTTP/1.1 code (no string per field): request heads parsed into byte
 * ranges (parseRequestHeadRaw) and forwarded as bytes (ClientRequest.rawFields), response
 * heads scanned without strings (scanResponseHead; DirectResponse.rawHead / bodyLength), and
 * the promise-free `send` path.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createResponseBodyDecoder } from "../../src/http1/client-response-body.ts";
import { createHttp1Client } from "../../src/http1/client.ts";
import { buildRequestHead } from "../../src/http1/client-request-head.ts";
import { fieldStrings, parseRequestHead, parseRequestHeadRaw } from "../../src/http1/server-request-head.ts";
import { parseResponseHead, scanResponseHead, scannedFraming } from "../../src/http1/client-response-head.ts";
import type { DirectResponse, RawFields } from "../../src/http1/types.ts";
import { startRawServer } from "./helpers.ts";

const bytes = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

function rawHead(s: string) {
  const r = parseRequestHeadRaw(bytes(s));
  if (r.kind !== "ok") throw new Error(`not ok: ${JSON.stringify(r)}`);
  return r.head;
}

describe("parseRequestHeadRaw", () => {
  test("same fields, framing and decisions as parseRequestHead; flags for expect and upgrade", () => {
    const s = "POST /v1/responses HTTP/1.1\r\nHost: x\r\nX-A:  v1 \r\nContent-Length: 2\r\nEXPECT: 100-Continue\r\n\r\n{}";
    const eager = parseRequestHead(bytes(s));
    const raw = rawHead(s);
    if (eager.kind !== "ok") throw new Error("not ok");
    expect(fieldStrings(raw.bytes, raw.fields)).toEqual(eager.head.headers);
    expect(fieldStrings(raw.bytes, raw.fields)).toEqual([["Host", "x"], ["X-A", "v1"], ["Content-Length", "2"], ["EXPECT", "100-Continue"]]);
    expect([raw.method, raw.target, raw.version, raw.framing, raw.keepAlive]).toEqual(["POST", "/v1/responses", "HTTP/1.1", { kind: "length", length: 2 }, true]);
    expect([raw.expectContinue, raw.upgrade]).toEqual([true, false]);
    expect(rawHead("GET / HTTP/1.1\r\nupgrade: websocket\r\nExpect: 100-continuex\r\n\r\n")).toMatchObject({ expectContinue: false, upgrade: true });
  });

  test("the same rejections as the string parser", () => {
    for (const s of [
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1a\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
      "POST / HTTP/1.2\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
    ]) {
      const a = parseRequestHead(bytes(s));
      const b = parseRequestHeadRaw(bytes(s));
      expect(b.kind).toBe("error");
      expect(b).toEqual(a as never);
    }
  });
});

describe("buildRequestHead with rawFields", () => {
  test("written after the caller's fields, names lower-cased; host, the secret's name and framing fields skipped", () => {
    const h = rawHead(
      "POST /v1/responses HTTP/1.1\r\nHost: client\r\nAuthorization: Bearer client\r\nX-Custom: a\tb\xe9\r\n" +
        "Content-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nOpenAI-Beta: responses=v1\r\n\r\n{}",
    );
    const head = buildRequestHead({
      method: "POST",
      target: "/v1/responses",
      headers: [["host", "api.test"]],
      rawFields: h,
      secretHeader: { name: "authorization", value: bytes("Bearer sk-test") },
      framing: { kind: "length", length: 2 },
      inlineBody: bytes("{}"),
    });
    expect(text(head)).toBe(
      "POST /v1/responses HTTP/1.1\r\nhost: api.test\r\nx-custom: a\tb\xe9\r\nopenai-beta: responses=v1\r\n" +
        "authorization: Bearer sk-test\r\ncontent-length: 2\r\n\r\n{}",
    );
  });

  test("invalid raw bytes throw a TypeError naming the field, never the value", () => {
    const raw: RawFields = { bytes: bytes("X-Bad: se\x01cret"), fields: [0, 5, 7, 14] };
    expect(() => buildRequestHead({ method: "POST", target: "/", headers: [], rawFields: raw, framing: { kind: "none" } })).toThrow(
      'invalid byte in value of request header "X-Bad"',
    );
    const badName: RawFields = { bytes: bytes("X(d: v"), fields: [0, 3, 5, 6] };
    expect(() => buildRequestHead({ method: "POST", target: "/", headers: [], rawFields: badName, framing: { kind: "none" } })).toThrow(TypeError);
  });
});

describe("scanResponseHead", () => {
  test("lazy reason and headers equal parseResponseHead's; framing summarised from bytes", () => {
    const s = "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nconnection: Close\r\nX-E:\r\n\r\n";
    const b = bytes(s);
    const h = scanResponseHead(b, b.length);
    const p = parseResponseHead(b, b.length);
    expect([h.version, h.status, h.reason, h.headers]).toEqual([p.version, p.status, p.reason, p.headers]);
    expect([h.contentLength, h.connectionClose, h.te]).toEqual([5, true, null]);
    expect(scannedFraming(h, "POST")).toEqual({ framing: { kind: "length", length: 5 }, reusable: false });
    const c = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect(scannedFraming(scanResponseHead(c, c.length), "POST")).toEqual({ framing: { kind: "chunked" }, reusable: true });
  });

  test("conflicting or malformed content-length is a protocol error", () => {
    for (const s of ["Content-Length: 5\r\nContent-Length: 6", "Content-Length: 5, 6", "Content-Length: x"]) {
      const b = bytes(`HTTP/1.1 200 OK\r\n${s}\r\n\r\n`);
      expect(() => scanResponseHead(b, b.length)).toThrow(/content-length/);
    }
  });
});

describe("body decoders: pushRange", () => {
  test("chunked and length content reported as ranges of the input from the given offset", () => {
    const got: string[] = [];
    const sink = { piece: (b: Uint8Array, s: number, e: number) => void got.push(`${s}-${e}:${text(b.subarray(s, e))}`) };
    const input = bytes("HEAD3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT");
    const chunked = createResponseBodyDecoder({ kind: "chunked" });
    expect(chunked.pushRange(input, 4, sink)).toBe(input.length - 4);
    expect(chunked.done).toBe(true);
    expect(got).toEqual(["7-10:abc", "15-17:de"]);
    got.length = 0;
    const length = createResponseBodyDecoder({ kind: "length", length: 3 });
    expect(length.pushRange(bytes("HH12345"), 2, sink)).toBe(5);
    expect(got).toEqual(["2-5:123"]);
  });
});

describe("client: rawHead, bodyLength and send()", () => {
  const client = createHttp1Client({ proxyEnv: null });
  afterAll(() => client.close());

  test("rawHead holds the field lines as received; bodyLength is the content-length", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write(bytes("HTTP/1.1 200 OK\r\nX-Up: A\r\nContent-Length: 2\r\n\r\nhi"));
    });
    const res: DirectResponse = await client.requestDirect({ url: new URL(`http://127.0.0.1:${server.port}/`), method: "GET", headers: [] });
    expect(res.bodyLength).toBe(2);
    expect(fieldStrings(res.rawHead!.bytes, res.rawHead!.fields)).toEqual([["X-Up", "A"], ["Content-Length", "2"]]);
    expect(res.headers).toEqual([["x-up", "A"], ["content-length", "2"]]);
    res.body.cancel();
  });

  test("send(): the response through the handler; bad input reported a microtask later, never synchronously", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write(bytes("HTTP/1.1 204 No Content\r\n\r\n"));
    });
    const got = Promise.withResolvers<DirectResponse>();
    client.send({ url: new URL(`http://127.0.0.1:${server.port}/`), method: "GET", headers: [] }, { onResponse: got.resolve, onError: got.reject });
    expect((await got.promise).status).toBe(204);

    const failed = Promise.withResolvers<Error>();
    let inSend = true;
    let calledInSend: boolean | null = null;
    client.send(
      { url: new URL(`http://127.0.0.1:${server.port}/`), method: "GET", headers: [["x-bad", "a\nb"]] },
      {
        onResponse: () => failed.reject(new Error("unexpected response")),
        onError: (e) => {
          calledInSend = inSend;
          failed.resolve(e);
        },
      },
    );
    inSend = false;
    const err = await failed.promise;
    expect(calledInSend).toBe(false as never);
    expect(err).toBeInstanceOf(TypeError);
  });

  test("bodyStart/bodyEnd: only that range is sent, inline (small) or as its own write (large); a bad range is a TypeError", async () => {
    for (const size of [5, 70 * 1024]) {
      const inner = "b".repeat(size);
      const all = bytes(`xx${inner}yyy`);
      const seen = Promise.withResolvers<string>();
      using server = startRawServer(async (c) => {
        const t = await c.waitForText(`${inner}`);
        seen.resolve(t);
        c.write(bytes("HTTP/1.1 204 No Content\r\n\r\n"));
      });
      const res = await client.requestDirect({
        url: new URL(`http://127.0.0.1:${server.port}/`),
        method: "POST",
        headers: [],
        body: all,
        bodyStart: 2,
        bodyEnd: 2 + size,
      });
      expect(res.status).toBe(204);
      const t = await seen.promise;
      expect(t).toContain(`content-length: ${size}\r\n\r\n${inner}`);
      expect(t).not.toContain("x");
      expect(t).not.toContain("y");
    }
    await expect(
      client.requestDirect({ url: new URL("http://127.0.0.1:1/"), method: "POST", headers: [], body: bytes("abc"), bodyStart: 2, bodyEnd: 4 }),
    ).rejects.toThrow(TypeError);
  });
});
