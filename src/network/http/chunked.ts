/**
 * Request-body framing for the HTTP proxy listener (RFC 9112 §6.3, §7.1): the shared strict
 * decoder (src/http1/chunked-decoder.ts) with its default bounds (chunk-size lines up to
 * 4096 bytes, at most 12 hex digits, trailer section up to 32 KiB), and the chunked encoder
 * for responses re-framed towards HTTP/1.1 clients.
 */
export { createBodyDecoder, type BodyDecoder, type FeedResult } from "../../http1/chunked-decoder.ts";

const CR = 13;
const LF = 10;

/** `<size hex>\r\n<data>\r\n` in one buffer (one write, one copy of `data`). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const prefix = data.byteLength.toString(16);
  const out = new Uint8Array(prefix.length + 2 + data.byteLength + 2);
  for (let i = 0; i < prefix.length; i++) out[i] = prefix.charCodeAt(i);
  out[prefix.length] = CR;
  out[prefix.length + 1] = LF;
  out.set(data, prefix.length + 2);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/** The last-chunk and empty trailer section that end a chunked body. */
export const CHUNKED_END = new Uint8Array([0x30, CR, LF, CR, LF]);
