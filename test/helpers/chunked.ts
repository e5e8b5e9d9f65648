/**
 * The test side's chunked decoder (RFC 9112 §7.1), for checking what the proxies put on the wire.
 * Independent of the product's decoders on purpose (a shared bug would otherwise pass), strict,
 * and unable to loop: every step moves forward by at least one chunk-size line or fails. Bad
 * framing throws a `ChunkedFramingError` naming the offset, so a framing regression fails one
 * test instead of hanging the run (Bun's per-test timeout cannot stop a synchronous loop).
 */

/** Malformed chunked framing at `offset` (bytes from the start of the buffer). */
export class ChunkedFramingError extends Error {
  constructor(readonly offset: number, what: string) {
    super(`bad chunked framing at byte ${offset}: ${what}`);
  }
}

/** chunk-size (1–12 hex digits) [BWS ; chunk-ext]; no whitespace before the size. */
const SIZE_LINE = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;[^\r\n]*)?$/;

/**
 * Decode one chunked body starting at `from` in `buf`. Returns the decoded content and `end`
 * (the offset just after the body's final CRLF, where a next message would start), or
 * `"incomplete"` when `buf` ends before the body does. Trailer fields are skipped.
 * Throws {@link ChunkedFramingError} on anything else.
 */
export function decodeChunkedAt(buf: Uint8Array, from = 0): { body: Buffer<ArrayBuffer>; end: number } | "incomplete" {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const parts: Buffer[] = [];
  let at = from;
  // Each pass consumes ≥ 3 bytes (one hex digit + CRLF) or returns/throws: at most b.length passes.
  for (let pass = 0; pass <= b.length; pass++) {
    const eol = b.indexOf("\r\n", at);
    if (eol < 0) {
      if (b.length - at > 4096) throw new ChunkedFramingError(at, "chunk-size line longer than 4096 bytes");
      return "incomplete";
    }
    const line = b.toString("latin1", at, eol);
    const m = SIZE_LINE.exec(line);
    if (!m) throw new ChunkedFramingError(at, `chunk-size line ${JSON.stringify(line.slice(0, 40))}`);
    const size = parseInt(m[1]!, 16);
    at = eol + 2;
    if (size === 0) {
      // trailer-section, then the final CRLF (RFC 9112 §7.1.2).
      for (let t = 0; t <= b.length; t++) {
        const tEnd = b.indexOf("\r\n", at);
        if (tEnd < 0) return "incomplete";
        if (tEnd === at) return { body: Buffer.concat(parts), end: at + 2 };
        if (b.indexOf(":", at) < 0 || b.indexOf(":", at) > tEnd) throw new ChunkedFramingError(at, "trailer line without a colon");
        at = tEnd + 2;
      }
      throw new ChunkedFramingError(at, "unreachable");
    }
    if (b.length < at + size + 2) return "incomplete";
    if (b[at + size] !== 0x0d || b[at + size + 1] !== 0x0a) throw new ChunkedFramingError(at + size, "chunk data not followed by CRLF");
    parts.push(b.subarray(at, at + size));
    at += size + 2;
  }
  throw new ChunkedFramingError(at, "more chunks than bytes");
}

/**
 * Decode a whole chunked body: `buf` must hold exactly one complete body, nothing after it.
 * Throws {@link ChunkedFramingError} when it is malformed, incomplete or followed by bytes.
 */
export function decodeChunked(buf: Uint8Array): Buffer<ArrayBuffer> {
  const r = decodeChunkedAt(buf);
  if (r === "incomplete") throw new ChunkedFramingError(buf.byteLength, "body ends before its last-chunk");
  if (r.end !== buf.byteLength) throw new ChunkedFramingError(r.end, `${buf.byteLength - r.end} bytes after the body`);
  return r.body;
}
