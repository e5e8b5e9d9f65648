/**
 * Address classification for the local/private rule (SPEC-network §3.3 "Non-public" list).
 * Pure functions; the policy calls them for literal hosts (step 4) and for every DNS answer
 * (step 6, DNS-rebinding defence).
 */
import ipaddr from "ipaddr.js";
import { isIpLiteral, parseDottedQuad, stripZone } from "./host.ts";

/** [network, prefix length] of every non-public IPv4 range of SPEC-network §3.3. */
const V4_NON_PUBLIC: ReadonlyArray<readonly [number, number]> = [
  [0x00000000, 8], // 0.0.0.0/8 "this network" (RFC 1122)
  [0x0a000000, 8], // 10/8 private (RFC 1918)
  [0x64400000, 10], // 100.64/10 CGNAT (RFC 6598)
  [0x7f000000, 8], // 127/8 loopback
  [0xa9fe0000, 16], // 169.254/16 link-local
  [0xac100000, 12], // 172.16/12 private
  [0xc0000000, 24], // 192.0.0/24 IETF protocol assignments
  [0xc0000200, 24], // 192.0.2/24 TEST-NET-1
  [0xc0a80000, 16], // 192.168/16 private
  [0xc6120000, 15], // 198.18/15 benchmarking
  [0xc6336400, 24], // 198.51.100/24 TEST-NET-2
  [0xcb007100, 24], // 203.0.113/24 TEST-NET-3
  [0xe0000000, 4], // 224/4 multicast
  [0xf0000000, 4], // 240/4 reserved, includes 255.255.255.255 broadcast
];

// Flat typed arrays of the table above: the check runs for every DNS answer.
const V4_NETS = Uint32Array.from(V4_NON_PUBLIC, ([net]) => net);
// `>>> 0` keeps masks unsigned; prefixes are 1..32 here.
const V4_MASKS = Uint32Array.from(V4_NON_PUBLIC, ([, bits]) => (0xffffffff << (32 - bits)) >>> 0);

/** True when a 32-bit IPv4 address (as an unsigned number) is in a non-public range. */
export function isNonPublicIpv4Number(n: number): boolean {
  for (let i = 0; i < V4_NETS.length; i++) {
    if (((n & V4_MASKS[i]) >>> 0) === V4_NETS[i]) return true;
  }
  return false;
}


/** Non-public classification of an IPv6 address given as eight 16-bit parts. */
function isNonPublicIpv6Parts(p: number[]): boolean {
  const v4 = (hi: number, lo: number) => ((hi << 16) | lo) >>> 0;
  const zero = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (p[i] !== 0) return false;
    return true;
  };
  // ::/96 IPv4-compatible (this covers :: and ::1: their embedded 0.0.0.x is in 0/8).
  if (zero(0, 6)) return isNonPublicIpv4Number(v4(p[6], p[7]));
  // ::ffff:0:0/96 IPv4-mapped and ::ffff:0:0:0/96 IPv4-translated (RFC 2765).
  if (zero(0, 5) && p[5] === 0xffff) return isNonPublicIpv4Number(v4(p[6], p[7]));
  if (zero(0, 4) && p[4] === 0xffff && p[5] === 0) return isNonPublicIpv4Number(v4(p[6], p[7]));
  // (beyond) NAT64 64:ff9b::/96 (RFC 6052): judged by the embedded IPv4.
  if (p[0] === 0x64 && p[1] === 0xff9b && zero(2, 6)) return isNonPublicIpv4Number(v4(p[6], p[7]));
  // (beyond) local-use NAT64 64:ff9b:1::/48 (RFC 8215) only reaches site-local translators.
  if (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 1) return true;
  // (beyond) 6to4 2002::/16 (RFC 3056): IPv4 in bits 16..47.
  if (p[0] === 0x2002) return isNonPublicIpv4Number(v4(p[1], p[2]));
  // (beyond) Teredo 2001::/32 (RFC 4380): server IPv4 in bits 32..63, client IPv4 inverted in
  // the last 32 bits. Either one being non-public fails closed.
  if (p[0] === 0x2001 && p[1] === 0) {
    return isNonPublicIpv4Number(v4(p[2], p[3])) || isNonPublicIpv4Number(~v4(p[6], p[7]) >>> 0);
  }
  if ((p[0] & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((p[0] & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((p[0] & 0xff00) === 0xff00) return true; // ff00::/8 multicast
  return false;
}

/**
 * True when `ip` (IPv4 dotted quad or IPv6, optional `%zone` which is ignored) is not a
 * public unicast address per SPEC-network §3.3, including IPv4-mapped/compatible IPv6 and
 * (beyond) NAT64, 6to4 and Teredo judged by their embedded IPv4. IPv4 must be a strict dotted
 * quad (normalise hosts first); anything that does not parse returns true (fail closed).
 */
export function isNonPublicAddress(ip: string): boolean {
  const addr = stripZone(ip);
  const quad = parseDottedQuad(addr);
  if (quad >= 0) return isNonPublicIpv4Number(quad);
  try {
    if (ipaddr.IPv6.isValid(addr)) return isNonPublicIpv6Parts(ipaddr.IPv6.parse(addr).parts);
  } catch {
    // fall through: unparseable = non-public
  }
  return true;
}

/**
 * True when a normalised host (see `normalizeHost`) is a local literal for step 4 of
 * SPEC-network §3.3: `localhost` (and `*.localhost`, which RFC 6761 reserves for loopback), or
 * an IP literal that is not public. Names are not resolved here.
 */
export function isLocalLiteral(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  return isIpLiteral(host) && isNonPublicAddress(host);
}
