import { describe, expect, test } from "bun:test";
import { createResponseBodyDecoder, MAX_TRAILER_BYTES } from "../../src/http1/client-response-body.ts";
import type { BodyFraming } from "../../src/http1/client-response-head.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

/** Feed `raw` in pieces of `step` bytes; returns content, bytes consumed and the done flag. */
function decode(framing: BodyFraming, raw: string, step = raw.length || 1) {
  const d = createResponseBodyDecoder(framing);
  const out: string[] = [];
  const b = bytes(raw);
  let used = 0;
  for (let i = 0; i < b.length; i += step) {
    const piece = b.subarray(i, i + step);
    const n = d.push(piece, (c) => out.push(Buffer.from(c).toString("latin1")));
    used += n;
    if (n < piece.length) break;
  }
  return { content: out.join(""), used, done: d.done, eofOk: d.eof() };
}

describe("chunked", () => {
  const msg = "5;ext=1;q=\"a b\"\r\nhello\r\n1 ; x\r\n,\r\nA\r\n 012345678\r\n0\r\nx-trailer: 1\r\ny: 2\r\n\r\n";
  test.each([1, 2, 3, 7, 1000])("decodes with extensions and trailers, fed %i byte(s) at a time", (step) => {
    expect(decode({ kind: "chunked" }, msg, step)).toEqual({
      content: "hello, 012345678",
      used: msg.length,
      done: true,
      eofOk: true,
    });
  });

  test("hex sizes in both cases; stops at the end of the message", () => {
    const raw = "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n0\r\n\r\nHTTP/1.1 200 OK";
    const r = decode({ kind: "chunked" }, raw);
    expect(r).toEqual({ content: "0123456789abcdefghijk", used: raw.length - "HTTP/1.1 200 OK".length, done: true, eofOk: true });
  });

  test("emits subarrays of the input (no copy) for data", () => {
    const d = createResponseBodyDecoder({ kind: "chunked" });
    const input = bytes("3\r\nabc\r\n");
    const seen: Uint8Array[] = [];
    d.push(input, (c) => seen.push(c));
    expect(seen.length).toBe(1);
    expect(seen[0]!.buffer).toBe(input.buffer);
  });

  test("cut short: not done, eof is an error", () => {
    expect(decode({ kind: "chunked" }, "5\r\nhel")).toEqual({ content: "hel", used: 6, done: false, eofOk: false });
  });

  test.each([
    ["missing size", "\r\nabc", "missing chunk size"],
    ["size not hex", "g\r\n", "missing chunk size"],
    ["garbage after size", "5x\r\nhello\r\n", "bad chunk size"],
    ["too many digits", "10000000000000\r\n", "chunk size too large"],
    ["bare CR after size", "5\rhello", "bare CR"],
    ["no CRLF after data", "5\r\nhelloX\r\n", "missing CRLF after chunk data"],
    ["LF missing after data", "5\r\nhello\rX", "missing CRLF after chunk data"],
    ["NUL in extension", "5;a\0\r\nhello\r\n", "bad byte in chunk extension"],
    ["overlong extension", `5;${"a".repeat(5000)}\r\n`, "chunk size line too long"],
    ["obs-fold in trailer", "0\r\nx: 1\r\n y\r\n\r\n", "obs-fold in trailer section"],
    ["bare CR in trailer", "0\r\nx: 1\ry\r\n\r\n", "bare CR"],
    ["bad final line", "0\r\n\rX", "bare CR"],
    ["huge trailer", `0\r\nx: ${"a".repeat(MAX_TRAILER_BYTES)}\r\n\r\n`, "trailer section too large"],
  ])("rejects %s", (_n, raw, msg) => {
    let err: unknown = null;
    try {
      decode({ kind: "chunked" }, raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).kind).toBe("protocol");
    expect((err as Error).message).toBe(`invalid response body framing: ${msg}`);
  });
});

describe("content-length, close, none", () => {
  test("length: exact bytes, extra left over", () => {
    expect(decode({ kind: "length", length: 5 }, "hello world", 3)).toEqual({ content: "hello", used: 5, done: true, eofOk: true });
  });
  test("length: short body is not complete at eof", () => {
    expect(decode({ kind: "length", length: 5 }, "hel")).toEqual({ content: "hel", used: 3, done: false, eofOk: false });
  });
  test("length 0 and none: done at once", () => {
    expect(decode({ kind: "length", length: 0 }, "")).toEqual({ content: "", used: 0, done: true, eofOk: true });
    expect(decode({ kind: "none" }, "junk")).toEqual({ content: "", used: 0, done: true, eofOk: true });
  });
  test("close-delimited: everything until eof", () => {
    expect(decode({ kind: "close" }, "a\r\n0\r\n\r\nrest", 4)).toEqual({ content: "a\r\n0\r\n\r\nrest", used: 12, done: false, eofOk: true });
  });
});
