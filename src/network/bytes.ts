/**
 * Byte-buffer joining shared by the network modules (SOCKS5 handshake and peeking, the TLS
 * ClientHello reader, the MITM's early bytes, the tunnel's SNI hold).
 */

/**
 * Join `parts` into one contiguous buffer. Copies only when needed: with one non-empty part
 * that part itself is returned (not a copy), with none an empty array.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  let nonEmpty = 0;
  let only: Uint8Array | null = null;
  for (const p of parts) {
    if (p.byteLength === 0) continue;
    total += p.byteLength;
    nonEmpty++;
    only = p;
  }
  if (nonEmpty <= 1) return only ?? new Uint8Array(0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
