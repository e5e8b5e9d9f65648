/**
 * Latin-1 decoding of a byte range (one code unit per byte, so field values can be
 * re-encoded unchanged, RFC 9110 §5.5 obs-text included).
 *
 * Why not `Buffer.from(u8.buffer, …).toString("latin1")`: reading `.buffer` of a typed
 * array makes JavaScriptCore give it a separate ArrayBuffer object, which costs more than the
 * decoding itself on every request head. Bun's `Buffer.prototype.latin1Slice` accepts any
 * Uint8Array receiver; where it is missing the Buffer view is the fallback.
 */
type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;

/** `buf[start..end)` as a latin1 string. */
export const latin1: (buf: Uint8Array, start: number, end: number) => string =
  typeof latin1Slice === "function"
    ? (buf, start, end) => latin1Slice.call(buf, start, end)
    : (buf, start, end) => Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");

/** `text` (code units 0–255) as bytes, one byte per code unit (the inverse of `latin1`). */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
