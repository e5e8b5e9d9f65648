/**
 * The shared server-side HTTP/1.1 request parsing (src/http1/server-request-head.ts and
 * chunked-decoder.ts): the merged tables of the former network and responses parsers. The
 * shared rules are the union of both parsers' rejections; bounds are parameters (each
 * product's own bounds are tested in test/network/http/head-parser.test.ts and
 * test/responses/incoming.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { createRequestBodyDecoder } from "../../src/http1/server-request-body.ts";
import { parseRequestHead, type HeadParseResult } from "../../src/http1/server-request-head.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const parse = (s: string) => parseRequestHead(bytes(s));

function errorOf(r: HeadParseResult) {
  return r.kind === "error" ? { status: r.status, message: r.message } : r.kind;
}

describe("parseRequestHead: accepted heads", () => {
  test("origin-form GET with fields, names as sent, values trimmed", () => {
    const raw = "GET /a?b=1 HTTP/1.1\r\nHost: allowed.test\r\nX-Thing:  v a l \t\r\nAccept: */*\r\n\r\nREST";
    const r = parse(raw);
    expect(r).toEqual({
      kind: "ok",
      headLength: raw.length - 4,
      head: {
        method: "GET",
        target: "/a?b=1",
        version: "HTTP/1.1",
        headers: [
          ["Host", "allowed.test"],
          ["X-Thing", "v a l"],
          ["Accept", "*/*"],
        ],
        framing: { kind: "none" },
        keepAlive: true,
      },
    });
  });

  test("origin-form POST with body framing, names kept as sent, headLength excludes the body", () => {
    expect(parse("POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A:  v  \r\n\r\nhello")).toEqual({
      kind: "ok",
      head: {
        method: "POST",
        target: "/v1/responses",
        version: "HTTP/1.1",
        headers: [["Host", "x"], ["Content-Length", "5"], ["X-A", "v"]],
        framing: { kind: "length", length: 5 },
        keepAlive: true,
      },
      headLength: 70,
    });
  });

  test("absolute-form, CONNECT authority-form, content-length and chunked framing", () => {
    const a = parse("POST http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 12\r\n\r\n");
    expect(a.kind === "ok" && a.head.framing).toEqual({ kind: "length", length: 12 });
    const c = parse("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
    expect(c.kind === "ok" && [c.head.method, c.head.target]).toEqual(["CONNECT", "allowed.test:443"]);
    const t = parse("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
    expect(t.kind === "ok" && t.head.framing).toEqual({ kind: "chunked" });
    const z = parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    expect(z.kind === "ok" && z.head.framing).toEqual({ kind: "length", length: 0 });
  });

  test.each([
    ["absolute-form kept verbatim", "POST http://h/v1/responses HTTP/1.1\r\n\r\n", "http://h/v1/responses"],
    ["dot segments kept", "POST /v1/../v1/responses HTTP/1.1\r\n\r\n", "/v1/../v1/responses"],
    ["query kept", "POST /v1/responses?a=b HTTP/1.1\r\n\r\n", "/v1/responses?a=b"],
    ["asterisk-form", "OPTIONS * HTTP/1.1\r\n\r\n", "*"],
    ["leading empty line ignored", "\r\nGET / HTTP/1.1\r\n\r\n", "/"],
  ])("target: %s", (_n, input, target) => {
    const r = parse(input);
    expect(r.kind === "ok" && r.head.target).toBe(target);
  });

  test.each([
    ["HTTP/1.1 default keep-alive", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", true],
    ["HTTP/1.1 close among tokens, any case", "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n", false],
    ["HTTP/1.0 default close", "GET / HTTP/1.0\r\n\r\n", false],
    ["HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true],
    ["HTTP/1.0 keep-alive then close", "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false],
  ])("keep-alive: %s", (_n, input, keepAlive) => {
    const r = parse(input);
    expect(r.kind === "ok" && r.head.keepAlive).toBe(keepAlive);
  });

  test("obs-text in a value is kept byte for byte (latin1)", () => {
    const buf = new Uint8Array([...bytes("GET / HTTP/1.1\r\nX: a"), 0xe9, 0xff, ...bytes("\r\n\r\n")]);
    const r = parseRequestHead(buf);
    expect(r.kind === "ok" && r.head.headers[0]).toEqual(["X", "a\u00e9\u00ff"]);
  });
});

describe("parseRequestHead: rejections (request smuggling classes; union of both products' rules)", () => {
  const cases: Array<[string, string, 400 | 431 | 501 | 505, string]> = [
    ["bare LF line ending", "GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF in request head"],
    ["bare LF after the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF in request head"],
    ["bare LF inside the fields", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400, "bare LF in request head"],
    ["bare CR in a value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "bare CR in request head"],
    ["obs-fold", "GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", 400, "obsolete line folding in request head"],
    ["obs-fold with one space", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "obsolete line folding in request head"],
    ["space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "invalid header field name"],
    ["empty field name", "GET / HTTP/1.1\r\n: h\r\n\r\n", 400, "invalid header field name"],
    ["NUL in value", "GET / HTTP/1.1\r\nX: a\u0000b\r\n\r\n", 400, "invalid header field value"],
    ["SOH in value", "GET / HTTP/1.1\r\nA: b\u0001\r\n\r\n", 400, "invalid header field value"],
    ["DEL in value", "GET / HTTP/1.1\r\nX: a\u007fb\r\n\r\n", 400, "invalid header field value"],
    ["two spaces in request line", "GET  / HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["space in target", "GET /a b HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["missing version", "GET /\r\n\r\n", 400, "invalid request line"],
    ["control in target", "GET /a\u0001b HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["bad method token", "G(T / HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505, "unsupported HTTP version"],
    ["HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505, "unsupported HTTP version"],
    ["HTTP/11", "GET / HTTP/11\r\n\r\n", 400, "unsupported HTTP version"],
    ["lower-case version", "GET / http/1.1\r\n\r\n", 400, "invalid request line"],
    ["duplicate CL", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, "duplicate Content-Length"],
    ["same CL repeated", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", 400, "duplicate Content-Length"],
    ["conflicting CL", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "duplicate Content-Length"],
    ["CL list", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400, "invalid Content-Length"],
    ["CL conflict in a list", "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", 400, "invalid Content-Length"],
    ["CL not a number", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "invalid Content-Length"],
    ["CL sign", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", 400, "invalid Content-Length"],
    ["CL huge", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", 400, "invalid Content-Length"],
    ["TE and CL", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Transfer-Encoding and Content-Length"],
    ["CL and TE", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400, "both Transfer-Encoding and Content-Length"],
    ["TE gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported Transfer-Encoding"],
    ["TE chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "unsupported Transfer-Encoding"],
    ["TE identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501, "unsupported Transfer-Encoding"],
    ["TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding in an HTTP/1.0 request"],
    ["duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate Host header"],
    ["101 fields", "GET / HTTP/1.1\r\n" + "A: b\r\n".repeat(101) + "\r\n", 431, "too many header fields"],
  ];
  for (const [name, raw, status, message] of cases) {
    test(name, () => {
      expect(errorOf(parse(raw))).toEqual({ status, message });
    });
  }
});

describe("parseRequestHead: bounds are parameters", () => {
  test("a head of exactly maxHeadBytes passes, one byte more is 431 (default 32 KiB)", () => {
    const start = "GET / HTTP/1.1\r\nX: ";
    const fill = (n: number) => start + "a".repeat(n - start.length - 4) + "\r\n\r\n";
    expect(parse(fill(32768)).kind).toBe("ok");
    expect(errorOf(parse(fill(32769)))).toEqual({ status: 431, message: "request head too large" });
    expect(parseRequestHead(bytes(fill(40000)), { maxHeadBytes: 40000 }).kind).toBe("ok");
    expect(errorOf(parseRequestHead(bytes(fill(40001)), { maxHeadBytes: 40000 }))).toEqual({ status: 431, message: "request head too large" });
  });

  test("an unterminated head is 431 once it reaches the bound", () => {
    expect(parse("GET / HTTP/1.1\r\nX: " + "a".repeat(40000)).kind).toBe("error");
    expect(parse("GET / HTTP/1.1\r\nX: " + "a".repeat(1000)).kind).toBe("incomplete");
  });

  test("100 fields pass, 101 are 431; limits are configurable", () => {
    const head = (n: number) => "GET / HTTP/1.1\r\n" + Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join("") + "\r\n";
    expect(parse(head(100)).kind).toBe("ok");
    expect(errorOf(parse(head(101)))).toEqual({ status: 431, message: "too many header fields" });
    expect(errorOf(parseRequestHead(bytes(head(3)), { maxFields: 2 }))).toEqual({ status: 431, message: "too many header fields" });
    expect(errorOf(parseRequestHead(bytes(head(3)), { maxHeadBytes: 20 }))).toEqual({ status: 431, message: "request head too large" });
  });

  test("leading empty lines: up to maxLeadingEmptyLines are skipped (default 4), one more is 400", () => {
    const lead = (n: number) => "\r\n".repeat(n) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    expect(parse(lead(4)).kind).toBe("ok");
    const tooMany = { status: 400 as const, message: "too many empty lines before the request line" };
    expect(errorOf(parse(lead(5)))).toEqual(tooMany);
    expect(parseRequestHead(bytes(lead(1)), { maxLeadingEmptyLines: 1 }).kind).toBe("ok");
    expect(errorOf(parseRequestHead(bytes(lead(2)), { maxLeadingEmptyLines: 1 }))).toEqual(tooMany);
  });
});

describe("parseRequestHead: incremental input", () => {
  test("byte at a time with resumeAt gives the same result as all at once", () => {
    const raw = bytes("\r\nPOST http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 3\r\n\r\nabcGET");
    const whole = parseRequestHead(raw);
    let scan = 0;
    let last: HeadParseResult | null = null;
    for (let n = 1; n <= raw.length; n++) {
      last = parseRequestHead(raw.subarray(0, n), undefined, scan);
      if (last.kind === "incomplete") {
        expect(last.resumeAt).toBeGreaterThanOrEqual(scan);
        scan = last.resumeAt;
        continue;
      }
      break;
    }
    expect(last).toEqual(whole);
    expect(whole.kind === "ok" && whole.headLength).toBe(raw.length - 6);
  });

  test("a bare LF is reported as soon as it arrives, before the head ends", () => {
    expect(errorOf(parse("GET / HTTP/1.1\r\nX: y\n"))).toEqual({ status: 400, message: "bare LF in request head" });
  });

  test("pipelined requests: headLength splits them", () => {
    const raw = bytes("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    const a = parseRequestHead(raw);
    if (a.kind !== "ok") throw new Error("first head");
    const b = parseRequestHead(raw.subarray(a.headLength));
    expect(b.kind === "ok" && b.head.target).toBe("/2");
    expect(b.kind === "ok" && a.headLength + b.headLength).toBe(raw.length);
  });
});

describe("createRequestBodyDecoder (chunked-decoder.ts)", () => {
  function decodeAll(
    framing: Parameters<typeof createRequestBodyDecoder>[0],
    input: Uint8Array,
    step = input.length,
    limits?: Parameters<typeof createRequestBodyDecoder>[1],
  ) {
    const d = createRequestBodyDecoder(framing, limits);
    const out: number[] = [];
    let consumed = 0;
    for (let i = 0; i < input.length && !d.finished; i += step) {
      const piece = input.subarray(i, Math.min(input.length, i + step));
      const r = d.feed(piece, (p) => out.push(...p));
      if (!r.ok) return { error: r.message };
      consumed += r.consumed;
      if (r.done) break;
    }
    return { body: new TextDecoder().decode(new Uint8Array(out)), consumed, finished: d.finished };
  }

  test("chunked with extensions and trailers, whole and byte by byte; rest left for the next request", () => {
    const raw = bytes("5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET");
    for (const step of [raw.length, 1, 3]) {
      expect(decodeAll({ kind: "chunked" }, raw, step)).toEqual({ body: "hello0123456789", consumed: raw.length - 3, finished: true });
    }
  });

  test("BWS before an extension, a one-space chunk, upper-case hex", () => {
    const raw = latin1("5 ;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT");
    expect(decodeAll({ kind: "chunked" }, raw)).toEqual({ body: "hello 0123456789", consumed: raw.length - 4, finished: true });
  });

  test("content-length stops at the length; length 0 is finished at once", () => {
    expect(decodeAll({ kind: "length", length: 4 }, bytes("abcdEF"))).toEqual({ body: "abcd", consumed: 4, finished: true });
    expect(createRequestBodyDecoder({ kind: "length", length: 0 }).finished).toBe(true);
    expect(createRequestBodyDecoder({ kind: "none" }).finished).toBe(true);
  });

  const bad: Array<[string, string]> = [
    ["zz\r\n", "invalid chunk size"],
    ["\r\n", "missing chunk size"],
    [" 5\r\nhello\r\n", "missing chunk size"],
    ["5 x\r\nhello\r\n", "invalid chunk size"],
    ["5\nhello\r\n", "bare LF in chunk-size line"],
    ["1\nX\r\n", "bare LF in chunk-size line"],
    ["5\rhello\r\n", "bare CR in chunk-size line"],
    ["5\r\nhelloXX", "chunk data not followed by CRLF"],
    ["1\r\nab\r\n", "chunk data not followed by CRLF"],
    ["1000000000000\r\n", "chunk size too large"],
    ["5;a\u0000\r\n", "invalid byte in chunk extension"],
    ["0\r\nX: y\n", "bare LF in trailer section"],
    ["0\r\nX: \u0001\r\n\r\n", "invalid byte in trailer section"],
    [";a\r\n", "missing chunk size"],
  ];
  for (const [input, message] of bad) {
    test(`chunked rejects ${JSON.stringify(input)}`, () => {
      expect(decodeAll({ kind: "chunked" }, bytes(input))).toEqual({ error: message });
    });
  }

  test("bounds are parameters: size digits, line length, trailer section", () => {
    expect(decodeAll({ kind: "chunked" }, bytes("100000000\r\n"), undefined, { maxSizeDigits: 8 })).toEqual({ error: "chunk size too large" });
    expect(decodeAll({ kind: "chunked" }, bytes(`5;${"e".repeat(100)}\r\n`), undefined, { maxLineBytes: 64 })).toEqual({ error: "chunk-size line too long" });
    expect(decodeAll({ kind: "chunked" }, bytes(`0\r\nX: ${"v".repeat(100)}\r\n\r\n`), undefined, { maxLineBytes: 64 })).toEqual({ error: "trailer line too long" });
    const trailers = `0\r\n${"X: v\r\n".repeat(20)}\r\n`;
    expect(decodeAll({ kind: "chunked" }, bytes(trailers), undefined, { maxTrailerBytes: 64 })).toEqual({ error: "trailer section too large" });
    expect(decodeAll({ kind: "chunked" }, bytes(trailers)).finished).toBe(true);
  });
});
