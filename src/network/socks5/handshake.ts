/**
 * Incremental parsers for the SOCKS5 handshake (RFC 1928 §3 method negotiation, §4 requests,
 * §5 addressing) and the UDP request header (§7).
 *
 * Every parser takes the bytes received so far and answers `incomplete` (wait for more),
 * `error` or `ok` with the frame's length, so a handshake whose bytes arrive one at a time
 * parses exactly like one that arrives in a single chunk. Frames are small and bounded by
 * the format itself (greeting ≤ 257 bytes, request ≤ 262 bytes), so re-parsing from the
 * start on each chunk costs nothing and a caller only ever buffers less than one frame.
 */
import { REP } from "./reply.ts";

/** The SOCKS protocol version this listener speaks (RFC 1928 §3 VER). */
export const SOCKS_VERSION = 0x05;
/** RFC 1928 §3: "NO AUTHENTICATION REQUIRED". */
export const METHOD_NO_AUTH = 0x00;
/** RFC 1928 §3: "NO ACCEPTABLE METHODS". */
export const METHOD_NONE_ACCEPTABLE = 0xff;

/** RFC 1928 §4 CMD values. */
export const CMD = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const;
/** RFC 1928 §4/§5 ATYP values. */
export const ATYP = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const;

/** Largest greeting: VER, NMETHODS, 255 methods. */
export const MAX_GREETING_BYTES = 2 + 255;
/** Largest request: VER CMD RSV ATYP, length byte + 255-byte name, port. */
export const MAX_REQUEST_BYTES = 4 + 1 + 255 + 2;

/** A destination as sent by the client (§5). `host` is dotted-quad, compressed IPv6 or the name. */
export interface SocksAddress {
  atyp: 1 | 3 | 4;
  host: string;
  /** 0–65535. */
  port: number;
}

export type GreetingResult =
  | { kind: "incomplete" }
  | { kind: "error"; message: string }
  | { kind: "ok"; methods: Uint8Array; length: number };

/**
 * Parse the version identifier / method selection message (§3):
 * `VER(1)=5 NMETHODS(1) METHODS(NMETHODS)`. A wrong version or NMETHODS = 0 is an error.
 */
export function parseGreeting(buf: Uint8Array): GreetingResult {
  if (buf.byteLength < 1) return { kind: "incomplete" };
  if (buf[0] !== SOCKS_VERSION) return { kind: "error", message: `unsupported SOCKS version ${buf[0]}` };
  if (buf.byteLength < 2) return { kind: "incomplete" };
  const n = buf[1]!;
  if (n === 0) return { kind: "error", message: "greeting offers no authentication methods" };
  if (buf.byteLength < 2 + n) return { kind: "incomplete" };
  return { kind: "ok", methods: buf.subarray(2, 2 + n), length: 2 + n };
}

export type AddressResult =
  | { kind: "incomplete" }
  /** `rep`: the reply code to send (0x08 unknown ATYP, 0x01 malformed address). */
  | { kind: "error"; rep: number; message: string }
  | { kind: "ok"; address: SocksAddress; end: number };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parse `ATYP DST.ADDR DST.PORT` starting at `offset` (§5). `end` is the offset just past
 * the port. Errors: unknown ATYP → 0x08 "address type not supported"; a zero-length or
 * non-UTF-8 domain name → 0x01 "general failure" (RFC 1928 defines no code for a malformed
 * name; the address type itself is supported, so 0x08 would mislead the client).
 */
export function parseAddress(buf: Uint8Array, offset: number): AddressResult {
  if (buf.byteLength <= offset) return { kind: "incomplete" };
  const atyp = buf[offset]!;
  let start = offset + 1;
  let addrLen: number;
  if (atyp === ATYP.IPV4) addrLen = 4;
  else if (atyp === ATYP.IPV6) addrLen = 16;
  else if (atyp === ATYP.DOMAIN) {
    if (buf.byteLength <= start) return { kind: "incomplete" };
    addrLen = buf[start]!;
    start++;
    if (addrLen === 0) return { kind: "error", rep: REP.GENERAL_FAILURE, message: "zero-length domain name" };
  } else {
    return { kind: "error", rep: REP.ADDRESS_TYPE_NOT_SUPPORTED, message: `unknown address type ${atyp}` };
  }
  const end = start + addrLen + 2;
  if (buf.byteLength < end) return { kind: "incomplete" };
  const raw = buf.subarray(start, start + addrLen);
  let host: string;
  if (atyp === ATYP.IPV4) host = `${raw[0]}.${raw[1]}.${raw[2]}.${raw[3]}`;
  else if (atyp === ATYP.IPV6) host = formatIpv6(raw);
  else {
    try {
      host = utf8.decode(raw);
    } catch {
      return { kind: "error", rep: REP.GENERAL_FAILURE, message: "domain name is not valid UTF-8" };
    }
  }
  const port = (buf[start + addrLen]! << 8) | buf[start + addrLen + 1]!;
  return { kind: "ok", address: { atyp: atyp as 1 | 3 | 4, host, port }, end };
}

export type RequestResult =
  | { kind: "incomplete" }
  /** `rep` = 0 means "close without a reply" (not SOCKS5 at all). */
  | { kind: "error"; rep: number; message: string }
  | { kind: "ok"; command: number; address: SocksAddress; length: number };

/**
 * Parse a request (§4): `VER=5 CMD RSV ATYP DST.ADDR DST.PORT`. The command is returned
 * as-is (the caller answers 0x07 for the ones it does not support); RSV is not checked
 * (clients in the wild send garbage there and it carries no meaning).
 */
export function parseRequest(buf: Uint8Array): RequestResult {
  if (buf.byteLength < 1) return { kind: "incomplete" };
  if (buf[0] !== SOCKS_VERSION) return { kind: "error", rep: 0, message: `unsupported SOCKS version ${buf[0]}` };
  if (buf.byteLength < 3) return { kind: "incomplete" };
  const a = parseAddress(buf, 3);
  if (a.kind !== "ok") return a;
  return { kind: "ok", command: buf[1]!, address: a.address, length: a.end };
}

export type UdpHeaderResult =
  | { kind: "error"; message: string }
  | { kind: "ok"; frag: number; address: SocksAddress; headerLength: number };

/**
 * Parse the UDP request header of one datagram (§7): `RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT`,
 * the payload starts at `headerLength`. A datagram is complete by definition, so a short
 * one is an error rather than incomplete.
 */
export function parseUdpHeader(buf: Uint8Array): UdpHeaderResult {
  if (buf.byteLength < 4) return { kind: "error", message: "datagram shorter than the SOCKS5 UDP header" };
  const a = parseAddress(buf, 3);
  if (a.kind === "incomplete") return { kind: "error", message: "truncated SOCKS5 UDP header" };
  if (a.kind === "error") return { kind: "error", message: a.message };
  return { kind: "ok", frag: buf[2]!, address: a.address, headerLength: a.end };
}

/** RFC 5952 text form of 16 address bytes (longest run of ≥ 2 zero groups compressed). */
export function formatIpv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  // IPv4-mapped addresses keep their dotted tail (RFC 5952 §5) so logs and the policy read them naturally.
  if (bestStart === 0 && bestLen === 5 && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
