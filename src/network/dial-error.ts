/**
 * Why a dial failed (dialer.ts): maps to SOCKS REP 0x03/0x04/0x05/0x06/0x01 (RFC 1928 §6,
 * socks5/reply.ts) and to HTTP 502 `upstream failure` (SPEC-network §3.4).
 */

/** The kinds of dial failure a transport distinguishes. */
export type DialErrorCode = "network_unreachable" | "host_unreachable" | "refused" | "timeout" | "other";

/** A failed dial; `code` says which answer the client gets. */
export class DialError extends Error {
  constructor(
    readonly code: DialErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "DialError";
  }
}
