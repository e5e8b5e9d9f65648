/**
 * Byte-level pieces of the HTTP/1.1 grammar shared by the request-head parser, the
 * response-head parser, the request-head writer and the SOCKS5 peek.
 */

/** tchar (RFC 9110 §5.6.2) as a lookup table over all 256 byte values: 1 = token byte. */
export const TCHAR: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1;
  return t;
})();

/**
 * The value of 1 to 15 ASCII digits in `buf[start..end)` (always a safe integer), else -1
 * (empty, too long, or a non-digit). Used for Content-Length (RFC 9110 §8.6) and status codes.
 */
export function asciiDigitsValue(buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
