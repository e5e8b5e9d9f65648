import { describe, expect, test } from "bun:test";
import {
  HeadAccumulator,
  MAX_HEAD_BYTES,
  parseResponseHead,
  responseFraming,
} from "../../src/http1/client-response-head.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

function parse(s: string) {
  const b = bytes(s);
  const acc = new HeadAccumulator();
  const got = acc.push(b);
  if (!got) throw new Error("incomplete head");
  return parseResponseHead(got.bytes, got.end);
}

function protocolError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).kind).toBe("protocol");
    return (e as Error).message;
  }
  throw new Error("expected a protocol error");
}

describe("parseResponseHead", () => {
  test("status line, lowercased names, trimmed values, order and repeats kept", () => {
    expect(parse("HTTP/1.1 201 Created Now\r\nContent-Type: text/event-stream \r\nSet-Cookie: a=1\r\nset-cookie:b=2\r\nX-Empty:\r\n\r\n")).toEqual({
      version: 11,
      status: 201,
      reason: "Created Now",
      headers: [
        ["content-type", "text/event-stream"],
        ["set-cookie", "a=1"],
        ["set-cookie", "b=2"],
        ["x-empty", ""],
      ],
    });
  });

  test("HTTP/1.0, empty reason, missing reason SP", () => {
    expect(parse("HTTP/1.0 200 \r\n\r\n")).toEqual({ version: 10, status: 200, reason: "", headers: [] });
    expect(parse("HTTP/1.1 204\r\n\r\n")).toEqual({ version: 11, status: 204, reason: "", headers: [] });
  });

  test.each([
    ["not HTTP", "HTTX/1.1 200 OK\r\n\r\n", "not an HTTP/1.x status line"],
    ["HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", "not an HTTP/1.x status line"],
    ["HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", "unsupported HTTP version"],
    ["status letters", "HTTP/1.1 2x0 OK\r\n\r\n", "bad status code"],
    ["status 600", "HTTP/1.1 600 OK\r\n\r\n", "bad status code"],
    ["status 099", "HTTP/1.1 099 OK\r\n\r\n", "bad status code"],
    ["4-digit status", "HTTP/1.1 2000 OK\r\n\r\n", "bad status line"],
    ["NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n", "bad byte in reason phrase"],
    ["bare CR in status line", "HTTP/1.1 200 O\rK\r\n\r\n", "bare CR"],
    ["bare LF in status line", "HTTP/1.1 200 O\nK\r\n\r\n", "bad byte in reason phrase"],
    ["obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\n\r\n", "obs-fold in header section"],
    ["tab obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\tcontinued\r\n\r\n", "obs-fold in header section"],
    ["space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", "bad header field name"],
    ["no colon", "HTTP/1.1 200 OK\r\nX-A\r\n\r\n", "bad header field name"],
    ["empty name", "HTTP/1.1 200 OK\r\n: 1\r\n\r\n", "bad header field name"],
    ["invalid name byte", "HTTP/1.1 200 OK\r\nX(A): 1\r\n\r\n", "bad header field name"],
    ["bare CR in value", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n", "bare CR"],
    ["bare LF in value", "HTTP/1.1 200 OK\r\nX-A: 1\n2\r\n\r\n", "bad byte in header field value"],
    ["NUL in value", "HTTP/1.1 200 OK\r\nX-A: 1\x002\r\n\r\n", "bad byte in header field value"],
    ["DEL in value", "HTTP/1.1 200 OK\r\nX-A: 1\x7f\r\n\r\n", "bad byte in header field value"],
  ])("rejects %s", (_name, raw, msg) => {
    expect(protocolError(() => parse(raw))).toBe(`invalid response from upstream: ${msg}`);
  });

  test("at most 100 fields", () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `x-${i}: v\r\n`).join("");
    expect(parse(`HTTP/1.1 200 OK\r\n${fields(100)}\r\n`).headers.length).toBe(100);
    expect(protocolError(() => parse(`HTTP/1.1 200 OK\r\n${fields(101)}\r\n`))).toContain("too many header fields");
  });

  test("at most 64 KiB of head, also when it arrives in pieces", () => {
    const big = `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(MAX_HEAD_BYTES)}\r\n\r\n`;
    expect(protocolError(() => parse(big))).toContain("response head too large");
    const acc = new HeadAccumulator();
    const b = bytes(big);
    expect(
      protocolError(() => {
        for (let i = 0; i < b.length; i += 1000) acc.push(b.subarray(i, i + 1000));
      }),
    ).toContain("response head too large");
  });

  test("head split byte by byte, body bytes after it kept", () => {
    const raw = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    const acc = new HeadAccumulator();
    let got = null;
    for (let i = 0; i < raw.length && !got; i++) got = acc.push(raw.subarray(i, i + 1));
    expect(got).not.toBeNull();
    expect(parseResponseHead(got!.bytes, got!.end).headers).toEqual([["content-length", "2"]]);
  });
});

describe("responseFraming", () => {
  const head = (version: 10 | 11, status: number, headers: Array<[string, string]>) => ({ version, status, reason: "", headers });

  test.each([
    ["content-length", head(11, 200, [["content-length", "5"]]), "GET", { framing: { kind: "length", length: 5 }, reusable: true }],
    ["repeated identical CL", head(11, 200, [["content-length", "5"], ["content-length", "5, 5"]]), "GET", { framing: { kind: "length", length: 5 }, reusable: true }],
    ["chunked", head(11, 200, [["transfer-encoding", "Chunked"]]), "GET", { framing: { kind: "chunked" }, reusable: true }],
    ["TE and CL: TE wins, no reuse", head(11, 200, [["transfer-encoding", "chunked"], ["content-length", "3"]]), "GET", { framing: { kind: "chunked" }, reusable: false }],
    ["close-delimited", head(11, 200, []), "GET", { framing: { kind: "close" }, reusable: false }],
    ["connection: close", head(11, 200, [["content-length", "0"], ["connection", "Keep-Alive, Close"]]), "GET", { framing: { kind: "length", length: 0 }, reusable: false }],
    ["HTTP/1.0 never reused", head(10, 200, [["content-length", "1"]]), "GET", { framing: { kind: "length", length: 1 }, reusable: false }],
    ["HEAD", head(11, 200, [["content-length", "100"]]), "HEAD", { framing: { kind: "none" }, reusable: true }],
    ["204", head(11, 204, []), "GET", { framing: { kind: "none" }, reusable: true }],
    ["304 with CL", head(11, 304, [["content-length", "10"]]), "GET", { framing: { kind: "none" }, reusable: true }],
  ] as const)("%s", (_n, h, method, expected) => {
    expect(responseFraming(h as never, method)).toEqual(expected as never);
  });

  test.each([
    ["conflicting CL", [["content-length", "5"], ["content-length", "6"]]],
    ["conflicting CL list", [["content-length", "5, 6"]]],
    ["negative CL", [["content-length", "-1"]]],
    ["CL with letters", [["content-length", "5a"]]],
    ["empty CL", [["content-length", ""]]],
    ["huge CL", [["content-length", "1234567890123456"]]],
    ["gzip TE", [["transfer-encoding", "gzip"]]],
    ["gzip, chunked TE", [["transfer-encoding", "gzip, chunked"]]],
    ["chunked twice", [["transfer-encoding", "chunked"], ["transfer-encoding", "chunked"]]],
    ["chunked not last", [["transfer-encoding", "chunked, identity"]]],
  ] as const)("rejects %s", (_n, headers) => {
    protocolError(() => responseFraming(head(11, 200, headers as never), "GET"));
  });

  test("rejects transfer-encoding in an HTTP/1.0 response", () => {
    protocolError(() => responseFraming(head(10, 200, [["transfer-encoding", "chunked"]]), "GET"));
  });
});
