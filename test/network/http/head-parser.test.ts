/**
 * The network listener's request parsing (src/http1/server-request-head.ts, chunked-decoder.ts): the
 * shared parser and decoder (rules in test/http1/request-head-parser.test.ts) with the
 * network bounds as defaults, and the chunked encoder.
 */
import { describe, expect, test } from "bun:test";
import { createRequestBodyDecoder } from "../../../src/http1/server-request-body.ts";
import { encodeChunk, CHUNKED_END } from "../../../src/http1/chunked-encoder.ts";
import { parseRequestHead } from "../../../src/http1/server-request-head.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

describe("network head bounds (defaults)", () => {
  test("a head of exactly 32 KiB passes, one byte more is 431", () => {
    const start = "GET http://allowed.test/ HTTP/1.1\r\nX: ";
    const fill = (n: number) => start + "a".repeat(n - start.length - 4) + "\r\n\r\n";
    expect(parseRequestHead(bytes(fill(32768))).kind).toBe("ok");
    expect(parseRequestHead(bytes(fill(32769)))).toEqual({ kind: "error", status: 431, message: "request head too large" });
  });

  test("up to four leading empty lines are skipped, a fifth is refused", () => {
    const r = parseRequestHead(bytes("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    expect(r.kind === "ok" && r.head.target).toBe("/");
    expect(parseRequestHead(bytes("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"))).toEqual({
      kind: "error",
      status: 400,
      message: "too many empty lines before the request line",
    });
  });

  test("100 fields pass, 101 are 431", () => {
    const head = (n: number) => "GET / HTTP/1.1\r\n" + Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join("") + "\r\n";
    expect(parseRequestHead(bytes(head(100))).kind).toBe("ok");
    expect(parseRequestHead(bytes(head(101)))).toMatchObject({ kind: "error", status: 431 });
  });
});

describe("network chunked bounds (defaults) and encoder", () => {
  test("12 hex digits are accepted as a size, 13 are refused", () => {
    const ok = createRequestBodyDecoder({ kind: "chunked" }).feed(bytes("000000000001\r\nx\r\n0\r\n\r\n"), () => {});
    expect(ok).toEqual({ ok: true, consumed: 22, done: true });
    expect(createRequestBodyDecoder({ kind: "chunked" }).feed(bytes("1000000000000\r\n"), () => {})).toEqual({ ok: false, message: "chunk size too large" });
  });

  test("a trailer section over 32 KiB is refused", () => {
    const r = createRequestBodyDecoder({ kind: "chunked" }).feed(bytes(`0\r\n${"X: v\r\n".repeat(6000)}\r\n`), () => {});
    expect(r).toEqual({ ok: false, message: "trailer section too large" });
  });

  test("encodeChunk frames data as one buffer; CHUNKED_END ends the body", () => {
    expect(new TextDecoder().decode(encodeChunk(bytes("0123456789abcdefX")))).toBe("11\r\n0123456789abcdefX\r\n");
    expect(new TextDecoder().decode(CHUNKED_END)).toBe("0\r\n\r\n");
  });
});
