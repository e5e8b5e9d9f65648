/**
 * The responses listener's request side (src/responses/incoming.ts): its bounds for the
 * shared parser and chunked decoder (whose rules are tested in
 * test/http1/request-head-parser.test.ts), the routing flags, and the bounded body buffer.
 */
import { describe, expect, test } from "bun:test";
import { parseRequestHeadRaw } from "../../src/http1/server-request-head.ts";
import { BodyCollector, HEAD_LIMITS, hasBody, type IncomingHead } from "../../src/responses/incoming.ts";

const bytes = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const parse = (s: string) => parseRequestHeadRaw(bytes(s), HEAD_LIMITS);
const head = (s: string): IncomingHead => {
  const r = parse(s);
  if (r.kind !== "ok") throw new Error(`not ok: ${JSON.stringify(r)}`);
  return r.head;
};

describe("responses head bounds", () => {
  test("heads up to 64 KiB pass, one byte more is 431", () => {
    const start = "POST /v1/responses HTTP/1.1\r\nX: ";
    const fill = (n: number) => start + "a".repeat(n - start.length - 4) + "\r\n\r\n";
    expect(parse(fill(65536)).kind).toBe("ok");
    expect(parse(fill(65537))).toMatchObject({ kind: "error", status: 431 });
  });

  test("two leading empty lines are skipped, a third is 400", () => {
    expect(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n").kind).toBe("ok");
    expect(parse("\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n")).toMatchObject({ kind: "error", status: 400 });
  });

  test("101 fields → 431", () => {
    expect(parse("GET / HTTP/1.1\r\n" + "A: b\r\n".repeat(101) + "\r\n")).toMatchObject({ kind: "error", status: 431 });
  });
});

describe("parser flags (expect, upgrade) and hasBody", () => {
  test("expect: 100-continue (any case) and upgrade", () => {
    const h = head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nEXPECT: 100-Continue\r\nUpgrade: websocket\r\n\r\n");
    expect([h.expectContinue, h.upgrade, h.framing]).toEqual([true, true, { kind: "chunked" }]);
    const plain = head("POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 0\r\n\r\n");
    expect([plain.expectContinue, plain.upgrade]).toEqual([false, false]);
  });

  test.each([
    [{ kind: "none" } as const, false],
    [{ kind: "length", length: 0 } as const, false],
    [{ kind: "length", length: 1 } as const, true],
    [{ kind: "chunked" } as const, true],
  ])("hasBody(%p) → %p", (framing, expected) => {
    expect(hasBody(framing)).toBe(expected);
  });
});

describe("BodyCollector", () => {
  const wire = "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

  test("chunked: whole message; consumed leaves the next request's bytes", () => {
    const c = new BodyCollector({ kind: "chunked" });
    const b = bytes(wire);
    expect(c.feed(b)).toEqual({ kind: "done", consumed: b.length - 4 });
    expect(Buffer.from(c.body).toString()).toBe("hello 0123456789");
  });

  test("chunked: byte at a time", () => {
    const c = new BodyCollector({ kind: "chunked" });
    const b = bytes(wire);
    let i = 0;
    for (; i < b.length; i++) {
      const r = c.feed(b.subarray(i, i + 1));
      if (r.kind === "done") break;
      expect(r.kind).toBe("more");
    }
    expect(i).toBe(b.length - 5);
    expect(Buffer.from(c.body).toString()).toBe("hello 0123456789");
  });

  test("content-length: exact buffer, rest left over", () => {
    const c = new BodyCollector({ kind: "length", length: 5 });
    expect(c.feed(bytes("hel"))).toEqual({ kind: "more" });
    expect(c.feed(bytes("loGET"))).toEqual({ kind: "done", consumed: 2 });
    expect(Buffer.from(c.body).toString()).toBe("hello");
  });

  test.each([
    ["bad size", "zz\r\n", 400],
    ["missing CRLF after data", "1\r\nab\r\n", 400],
    ["bare LF", "1\nX\r\n", 400],
    ["more than 8 hex digits", "100000000\r\n", 400],
    ["body over the bound", "800\r\n" + "a".repeat(0x800) + "\r\n", 413],
  ])("%s → %d", (_n, input, status) => {
    expect(new BodyCollector({ kind: "chunked" }, 1024).feed(bytes(input))).toEqual({ kind: "error", status: status as 400 | 413 });
  });
});
