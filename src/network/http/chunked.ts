/**
 * Request-body framing for the HTTP proxy listener (RFC 9112 §6.3, §7.1): the shared strict
 * decoder (src/http1/chunked-decoder.ts) with its default bounds (chunk-size lines up to
 * 4096 bytes, at most 12 hex digits, trailer section up to 32 KiB), and the chunked encoder
 * for responses re-framed towards HTTP/1.1 clients.
 */
export { createBodyDecoder, type BodyDecoder, type FeedResult } from "../../http1/chunked-decoder.ts";
export { CHUNKED_END, chunkSizeLine, encodeChunk } from "../../http1/chunked-encoder.ts";
