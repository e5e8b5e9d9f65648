/**
 * The chunked transfer coding as written (RFC 9112 §7.1): the one encoder used by the HTTP/1.1
 * client (request bodies), the responses listener and the network proxy (re-framed responses).
 * The decoder is server-request-body.ts.
 */

/** `<size in hex>\r\n`, the chunk-size line before `size` bytes of chunk-data. */
export function chunkSizeLine(size: number): Uint8Array {
  const hex = size.toString(16);
  const out = new Uint8Array(hex.length + 2);
  for (let i = 0; i < hex.length; i++) out[i] = hex.charCodeAt(i);
  out[hex.length] = 0x0d;
  out[hex.length + 1] = 0x0a;
  return out;
}

/** `<size in hex>\r\n<data>\r\n` in one buffer (one write, one copy of `data`). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const hex = data.byteLength.toString(16);
  const out = new Uint8Array(hex.length + 2 + data.byteLength + 2);
  for (let i = 0; i < hex.length; i++) out[i] = hex.charCodeAt(i);
  out[hex.length] = 0x0d;
  out[hex.length + 1] = 0x0a;
  out.set(data, hex.length + 2);
  out[out.length - 2] = 0x0d;
  out[out.length - 1] = 0x0a;
  return out;
}

/** `0\r\n\r\n`: the last-chunk and an empty trailer section, which end a chunked body. Never mutated. */
export const CHUNKED_END = new Uint8Array([0x30, 0x0d, 0x0a, 0x0d, 0x0a]);
