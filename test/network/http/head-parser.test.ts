import { describe, expect, test } from "bun:test";
import { parseRequestHead, type HeadParseResult } from "../../../src/network/http/head-parser.ts";
import { createBodyDecoder, encodeChunk } from "../../../src/network/http/chunked.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
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

  test("absolute-form, CONNECT authority-form, content-length and chunked framing", () => {
    const a = parse("POST http://allowed.test/x HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 12\r\n\r\n");
    expect(a.kind === "ok" && a.head.framing).toEqual({ kind: "length", length: 12 });
    const c = parse("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
    expect(c.kind === "ok" && [c.head.method, c.head.target]).toEqual(["CONNECT", "allowed.test:443"]);
    const t = parse("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
    expect(t.kind === "ok" && t.head.framing).toEqual({ kind: "chunked" });
  });

  test("keep-alive defaults and Connection tokens", () => {
    const ka = (s: string) => {
      const r = parse(s);
      return r.kind === "ok" ? r.head.keepAlive : null;
    };
    expect(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).toBe(true);
    expect(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n")).toBe(false);
    expect(ka("GET / HTTP/1.0\r\n\r\n")).toBe(false);
    expect(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).toBe(true);
  });

  test("up to four leading empty lines are skipped, a fifth is refused", () => {
    const r = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    expect(r.kind === "ok" && r.head.target).toBe("/");
    expect(errorOf(parse("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"))).toEqual({
      status: 400,
      message: "too many empty lines before the request line",
    });
  });

  test("obs-text in a value is kept byte for byte (latin1)", () => {
    const buf = new Uint8Array([...bytes("GET / HTTP/1.1\r\nX: a"), 0xe9, 0xff, ...bytes("\r\n\r\n")]);
    const r = parseRequestHead(buf);
    expect(r.kind === "ok" && r.head.headers[0]).toEqual(["X", "a\u00e9\u00ff"]);
  });
});

describe("parseRequestHead: rejections (request smuggling classes)", () => {
  const cases: Array<[string, string, 400 | 431, string]> = [
    ["bare LF line ending", "GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF in request head"],
    ["bare LF inside the fields", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400, "bare LF in request head"],
    ["bare CR in a value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "bare CR in request head"],
    ["obs-fold", "GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n", 400, "obsolete line folding in request head"],
    ["space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "invalid header field name"],
    ["empty field name", "GET / HTTP/1.1\r\n: h\r\n\r\n", 400, "invalid header field name"],
    ["NUL in value", "GET / HTTP/1.1\r\nX: a\u0000b\r\n\r\n", 400, "invalid header field value"],
    ["DEL in value", "GET / HTTP/1.1\r\nX: a\u007fb\r\n\r\n", 400, "invalid header field value"],
    ["two spaces in request line", "GET  / HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["missing version", "GET /\r\n\r\n", 400, "invalid request line"],
    ["control in target", "GET /a\u0001b HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["bad method token", "G(T / HTTP/1.1\r\n\r\n", 400, "invalid request line"],
    ["HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 400, "unsupported HTTP version"],
    ["lower-case version", "GET / http/1.1\r\n\r\n", 400, "invalid request line"],
    ["duplicate CL", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, "duplicate Content-Length"],
    ["conflicting CL", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "duplicate Content-Length"],
    ["CL list", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400, "invalid Content-Length"],
    ["CL sign", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", 400, "invalid Content-Length"],
    ["CL huge", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", 400, "invalid Content-Length"],
    ["TE and CL", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Transfer-Encoding and Content-Length"],
    ["TE gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "unsupported Transfer-Encoding"],
    ["TE chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "unsupported Transfer-Encoding"],
    ["TE identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400, "unsupported Transfer-Encoding"],
    ["TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding in an HTTP/1.0 request"],
    ["duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate Host header"],
  ];
  for (const [name, raw, status, message] of cases) {
    test(name, () => {
      expect(errorOf(parse(raw))).toEqual({ status, message });
    });
  }
});

describe("parseRequestHead: bounds", () => {
  test("a head of exactly 32 KiB passes, one byte more is 431", () => {
    const start = "GET / HTTP/1.1\r\nX: ";
    const fill = (n: number) => start + "a".repeat(n - start.length - 4) + "\r\n\r\n";
    expect(parse(fill(32768)).kind).toBe("ok");
    expect(errorOf(parse(fill(32769)))).toEqual({ status: 431, message: "request head too large" });
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

describe("body decoders", () => {
  function decodeAll(framing: Parameters<typeof createBodyDecoder>[0], input: Uint8Array, step = input.length) {
    const d = createBodyDecoder(framing);
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

  test("content-length stops at the length", () => {
    expect(decodeAll({ kind: "length", length: 4 }, bytes("abcdEF"))).toEqual({ body: "abcd", consumed: 4, finished: true });
  });

  const bad: Array<[string, string]> = [
    ["zz\r\n", "invalid chunk size"],
    ["\r\n", "missing chunk size"],
    ["5\nhello\r\n", "bare LF in chunk-size line"],
    ["5\r\nhelloXX", "chunk data not followed by CRLF"],
    ["1000000000000\r\n", "chunk size too large"],
    ["0\r\nX: y\n", "bare LF in trailer section"],
    [";a\r\n", "missing chunk size"],
  ];
  for (const [input, message] of bad) {
    test(`chunked rejects ${JSON.stringify(input)}`, () => {
      expect(decodeAll({ kind: "chunked" }, bytes(input))).toEqual({ error: message });
    });
  }

  test("encodeChunk frames data as one buffer", () => {
    expect(new TextDecoder().decode(encodeChunk(bytes("0123456789abcdefX")))).toBe("11\r\n0123456789abcdefX\r\n");
  });
});
