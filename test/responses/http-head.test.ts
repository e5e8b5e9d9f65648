import { describe, expect, test } from "bun:test";
import { ChunkedDecoder } from "../../src/responses/chunked.ts";
import { parseRequestHead } from "../../src/responses/http-head.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");
const parse = (s: string) => {
  const b = bytes(s);
  return parseRequestHead(b, b.length);
};

describe("parseRequestHead", () => {
  test("origin-form POST with body framing, names kept as sent", () => {
    expect(parse("POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-A:  v  \r\n\r\nhello")).toEqual({
      kind: "ok",
      head: {
        method: "POST",
        target: "/v1/responses",
        version: "HTTP/1.1",
        headers: [["Host", "x"], ["Content-Length", "5"], ["X-A", "v"]],
        framing: { kind: "length", length: 5 },
        keepAlive: true,
        expectContinue: false,
        upgrade: false,
      },
      headLength: 70,
    });
  });

  test.each([
    ["absolute-form kept verbatim", "POST http://h/v1/responses HTTP/1.1\r\n\r\n", "http://h/v1/responses"],
    ["dot segments kept", "POST /v1/../v1/responses HTTP/1.1\r\n\r\n", "/v1/../v1/responses"],
    ["query kept", "POST /v1/responses?a=b HTTP/1.1\r\n\r\n", "/v1/responses?a=b"],
    ["leading empty line ignored", "\r\nGET / HTTP/1.1\r\n\r\n", "/"],
  ])("%s", (_n, input, target) => {
    const r = parse(input);
    expect(r.kind === "ok" && r.head.target).toBe(target);
  });

  test.each([
    ["HTTP/1.0 default close", "GET / HTTP/1.0\r\n\r\n", false],
    ["HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true],
    ["HTTP/1.1 close", "GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", false],
  ])("keep-alive: %s", (_n, input, keepAlive) => {
    const r = parse(input);
    expect(r.kind === "ok" && r.head.keepAlive).toBe(keepAlive);
  });

  test("chunked, expect and upgrade flags", () => {
    const r = parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\nUpgrade: websocket\r\n\r\n");
    expect(r).toMatchObject({ kind: "ok", head: { framing: { kind: "chunked" }, expectContinue: true, upgrade: true } });
  });

  test("incomplete until CRLFCRLF, also byte at a time", () => {
    const full = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let result;
    let scanned = 0;
    for (let n = 1; n <= full.length; n++) {
      result = parseRequestHead(full, n, scanned);
      if (result.kind === "incomplete") scanned = n;
      else break;
    }
    expect(result).toMatchObject({ kind: "ok", headLength: full.length });
  });

  test.each([
    ["bare LF line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400],
    ["space in target", "GET /a b HTTP/1.1\r\n\r\n", 400],
    ["bad method", "G(T / HTTP/1.1\r\n\r\n", 400],
    ["obs-fold", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400],
    ["space before colon", "GET / HTTP/1.1\r\nA : b\r\n\r\n", 400],
    ["CTL in value", "GET / HTTP/1.1\r\nA: b\u0001\r\n\r\n", 400],
    ["TE + CL", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["TE gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501],
    ["CL not a number", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400],
    ["CL conflict in a list", "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", 400],
    ["HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505],
    ["101 fields", "GET / HTTP/1.1\r\n" + "A: b\r\n".repeat(101) + "\r\n", 431],
  ])("rejects %s → %d", (_n, input, status) => {
    expect(parse(input)).toMatchObject({ kind: "error", status });
  });

  test("same content-length repeated is accepted", () => {
    expect(parse("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n")).toMatchObject({
      kind: "ok",
      head: { framing: { kind: "length", length: 2 } },
    });
  });
});

describe("ChunkedDecoder", () => {
  const wire = "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

  test("whole message, rest returned", () => {
    const r = new ChunkedDecoder(1024).push(bytes(wire));
    expect(r.kind).toBe("done");
    if (r.kind !== "done") return;
    expect(Buffer.from(r.body).toString()).toBe("hello 0123456789");
    expect(Buffer.from(r.rest).toString()).toBe("NEXT");
  });

  test("byte at a time", () => {
    const d = new ChunkedDecoder(1024);
    const b = bytes(wire);
    let r;
    let i = 0;
    for (; i < b.length; i++) {
      r = d.push(b.subarray(i, i + 1));
      if (r.kind !== "more") break;
    }
    expect(r).toMatchObject({ kind: "done" });
    expect(i).toBe(b.length - 5);
  });

  test.each([
    ["bad size", "zz\r\n", 400],
    ["missing CRLF after data", "1\r\nab\r\n", 400],
    ["bare LF", "1\nX\r\n", 400],
    ["too large", "800\r\n", 413],
  ])("%s → %d", (_n, input, status) => {
    expect(new ChunkedDecoder(1024).push(bytes(input))).toMatchObject({ kind: "error", status });
  });
});
