/**
 * Bytes the SOCKS5 listener sends: the method selection message (RFC 1928 §3), replies
 * (§6) and the address encoding shared with UDP relay headers (§5, §7); plus the mapping
 * from dial failures to reply codes (SPEC-network §5).
 */
import ipaddr from "ipaddr.js";
import type { DialErrorCode } from "../dial-error.ts";

/** RFC 1928 §6 REP values. */
export const REP = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

/** `05 <method>`: the server's method selection (§3). */
export function methodSelection(method: number): Uint8Array {
  return Uint8Array.of(0x05, method);
}

const UNSPECIFIED_V4 = Uint8Array.of(0x01, 0, 0, 0, 0);

/**
 * `ATYP ADDR PORT` for an IP address (§5). IPv4 → ATYP 1, IPv6 (zone id dropped) → ATYP 4.
 * Anything that is not an IP literal (or null) encodes as 0.0.0.0:0 — the reply format
 * cannot say "unknown" and RFC 1928 clients ignore BND for CONNECT in practice.
 */
export function encodeAddress(address: string | null | undefined, port: number): Uint8Array {
  let head: Uint8Array = UNSPECIFIED_V4;
  let p = port;
  if (address) {
    const bare = address.split("%")[0]!;
    if (ipaddr.IPv4.isValidFourPartDecimal(bare)) {
      head = Uint8Array.of(0x01, ...ipaddr.IPv4.parse(bare).toByteArray());
    } else if (ipaddr.IPv6.isValid(bare)) {
      head = Uint8Array.of(0x04, ...ipaddr.IPv6.parse(bare).toByteArray());
    } else {
      p = 0;
    }
  } else {
    p = 0;
  }
  const out = new Uint8Array(head.byteLength + 2);
  out.set(head, 0);
  out[head.byteLength] = (p >> 8) & 0xff;
  out[head.byteLength + 1] = p & 0xff;
  return out;
}

/**
 * A reply (§6): `VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT`. `bound` = the outbound socket's
 * local address for CONNECT, the relay's address for UDP ASSOCIATE; omitted for failures
 * (then 0.0.0.0:0).
 */
export function replyBytes(rep: number, bound?: { address: string; port: number } | null): Uint8Array {
  const addr = encodeAddress(bound?.address, bound?.port ?? 0);
  const out = new Uint8Array(3 + addr.byteLength);
  out[0] = 0x05;
  out[1] = rep;
  out[2] = 0x00;
  out.set(addr, 3);
  return out;
}

/** SPEC-network §5: network unreachable 0x03, host unreachable 0x04, refused 0x05, timeout 0x06, else 0x01. */
export function repForDialError(code: DialErrorCode): number {
  switch (code) {
    case "network_unreachable":
      return REP.NETWORK_UNREACHABLE;
    case "host_unreachable":
      return REP.HOST_UNREACHABLE;
    case "refused":
      return REP.CONNECTION_REFUSED;
    case "timeout":
      return REP.TTL_EXPIRED;
    default:
      return REP.GENERAL_FAILURE;
  }
}
