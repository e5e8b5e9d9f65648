/** The test-side chunked decoder must fail, never loop, on malformed framing (issue 14, row 1). */
import { describe, expect, test } from "bun:test";
import { ChunkedFramingError, decodeChunked, decodeChunkedAt } from "./chunked.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

describe("decodeChunked", () => {
  test("well-formed bodies: chunks, extensions, trailers; the end offset of a body with bytes after it", () => {
    expect(decodeChunked(bytes("4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n")).toString()).toBe("Wikipedia");
    expect(decodeChunked(bytes("3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n")).toString()).toBe("abc");
    expect(decodeChunked(bytes("0\r\n\r\n")).byteLength).toBe(0);
    const r = decodeChunkedAt(bytes("HEAD2\r\nhi\r\n0\r\n\r\nNEXT"), 4);
    expect(r !== "incomplete" && [r.body.toString(), r.end]).toEqual(["hi", 16]);
  });

  test("every prefix of a body is incomplete, never an error or a loop", () => {
    const whole = "4\r\nWiki\r\n0\r\nx: y\r\n\r\n";
    for (let n = 0; n < whole.length; n++) expect(decodeChunkedAt(bytes(whole.slice(0, n)))).toBe("incomplete");
  });

  test.each([
    ["no CRLF at all", "zzzz"],
    ["a size that is not hex (NaN)", "xyz\r\nabc\r\n0\r\n\r\n"],
    ["a negative size", "-1\r\nabc\r\n0\r\n\r\n"],
    ["whitespace before the size", " 3\r\nabc\r\n0\r\n\r\n"],
    ["13 hex digits", "0000000000003\r\nabc\r\n0\r\n\r\n"],
    ["data longer than its size", "2\r\nabc\r\n0\r\n\r\n"],
    ["bytes after the last chunk", "3\r\nabc\r\n0\r\n\r\nextra"],
    ["a body that never ends", "3\r\nabc\r\n"],
    ["a trailer line without a colon", "0\r\nnot a field\r\n\r\n"],
    ["a size line longer than 4 KiB", "1".repeat(5000)],
  ])("%s throws ChunkedFramingError", (_name, body) => {
    expect(() => decodeChunked(bytes(body))).toThrow(ChunkedFramingError);
  });
});
