/**
 * Host normalisation for policy matching (SPEC-network §3.1). Every host the policy sees and
 * every configured pattern goes through `normalizeHost` first, so matching and address
 * classification compare one canonical spelling.
 */
import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import ipaddr from "ipaddr.js";

/** Non-empty labels of lowercase letters, digits, `-`, `_`; no empty label, no trailing dot. */
const CANONICAL = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/**
 * The hot path: true when `s` is already canonical — it matches CANONICAL, its last label does
 * not start with a digit (so it is no IPv4 spelling) and it has no `xn--` label (punycode that
 * IDNA must validate). A regex test beats a charCodeAt loop on Bun/JSC here.
 */
function isCanonicalName(s: string): boolean {
  if (!CANONICAL.test(s)) return false;
  const first = s.charCodeAt(s.lastIndexOf(".") + 1);
  if (first >= 48 && first <= 57) return false;
  return !(s.startsWith("xn--") || s.includes(".xn--"));
}

/**
 * Normalise a host as a client or a config sent it (SPEC-network §3.1):
 * trim; `[v6]` / `[v6]:port` → the inside; exactly one `:` → drop the port; ASCII-lowercase;
 * strip all trailing dots; IPv6 in RFC 5952 form (IPv4-mapped → dotted quad), zone `%25` → `%`
 * (zone kept); (beyond) Unicode → punycode
 * (IDNA via `domainToASCII`) and IPv4 in any WHATWG spelling (`2130706433`, `0x7f.1`,
 * `127.1`) → dotted quad.
 *
 * Returns `""` for an empty host, for URL syntax (`/ ? # \ @ %`), for characters no DNS name
 * has (`*`, `!`, spaces...), for empty labels (`a..b`, `.a`) and for a name IDNA rejects (an invalid IPv4 such as `1.2.3.09`),
 * so bad input fails closed as `not_allowed`. Never throws.
 */
export function normalizeHost(raw: string): string {
  if (isCanonicalName(raw) || parseDottedQuad(raw) >= 0) return raw;
  let host = raw.trim();
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    // "[" without "]" is not a bracketed literal: IDNA below rejects it ("[" is forbidden).
    if (end > 0) return normalizeIpv6(host.slice(1, end));
  } else {
    const colon = host.indexOf(":");
    if (colon >= 0) {
      // Exactly one ":" is host:port; more is a bare IPv6 literal.
      if (host.indexOf(":", colon + 1) < 0) host = host.slice(0, colon);
      else return normalizeIpv6(host);
    }
  }
  return normalizeName(host);
}

/** Lowercase, strip trailing dots, IDNA + WHATWG IPv4 (the non-IPv6 half of `normalizeHost`). */
function normalizeName(host: string): string {
  host = stripTrailingDots(host.toLowerCase());
  if (host === "") return "";
  if (isCanonicalName(host) || parseDottedQuad(host) >= 0) return host;
  // URL syntax has no place in a host: domainToASCII would cut "a.com/x" to "a.com" and
  // percent-decode "%41"; refuse instead of guessing what the client meant.
  if (URL_SYNTAX.test(host)) return "";
  // domainToASCII runs the WHATWG host parser: IDNA to punycode, IPv4 number forms to
  // dotted quad, "" for a host it rejects.
  const ascii = stripTrailingDots(domainToASCII(host));
  // DNS names are non-empty labels of letters, digits, "-" and "_"; anything else ("*", "!",
  // "a..b", ".a") is no host a resolver could answer for.
  return CANONICAL.test(ascii) ? ascii : "";
}

const URL_SYNTAX = /[/?#\\@%]/;


/**
 * Parse a canonical dotted quad (`a.b.c.d`, each 0..255, no leading zeros) to an unsigned
 * 32-bit number; -1 for anything else (other spellings go through the WHATWG parser first).
 */
export function parseDottedQuad(s: string): number {
  let n = 0;
  let parts = 0;
  let i = 0;
  const len = s.length;
  for (;;) {
    const start = i;
    let v = 0;
    while (i < len) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && s.charCodeAt(start) === 48)) return -1;
    n = n * 256 + v;
    parts++;
    if (i === len) return parts === 4 ? n : -1;
    if (s.charCodeAt(i) !== 46 || parts === 4) return -1;
    i++;
  }
}

function normalizeIpv6(inner: string): string {
  let host = stripTrailingDots(inner.trim().toLowerCase());
  // RFC 6874 spells the zone separator "%25" inside URLs; the policy keeps the zone as "%zone".
  const pct = host.indexOf("%25");
  if (pct >= 0 && isIP(host.slice(0, pct)) === 6) host = host.slice(0, pct) + "%" + host.slice(pct + 3);
  if (isIpLiteral(host)) return canonicalIpv6(host);
  // "[name]" or "[1.2.3.4]": not IPv6, judge it like any other name.
  return normalizeName(host);
}

/**
 * RFC 5952 text form of an IPv6 literal (`0:0::1` → `::1`, `2001:0DB8::` → `2001:db8::`), so one
 * address has one spelling and a deny entry cannot be sidestepped by another. An IPv4-mapped
 * address (`::ffff:a.b.c.d`) is that IPv4 address on the wire, so it becomes the dotted quad:
 * a denied `8.8.8.8` also denies `[::ffff:8.8.8.8]`. The zone is kept as is.
 */
function canonicalIpv6(host: string): string {
  const pct = host.indexOf("%");
  const addr = pct < 0 ? host : host.slice(0, pct);
  const zone = pct < 0 ? "" : host.slice(pct);
  if (!ipaddr.IPv6.isValid(addr)) return host;
  const parsed = ipaddr.IPv6.parse(addr);
  if (parsed.isIPv4MappedAddress()) return parsed.toIPv4Address().toString();
  return parsed.toRFC5952String() + zone;
}

function stripTrailingDots(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 46) end--;
  return end === s.length ? s : s.slice(0, end);
}

/**
 * True when a normalised host is an IP literal: dotted-quad IPv4 or IPv6 (a `%zone` suffix
 * allowed). Pass hosts through `normalizeHost` first; `127.1` is only a literal after that.
 */
export function isIpLiteral(host: string): boolean {
  // Normalised IPv4 is always a canonical dotted quad; only IPv6 needs the full parser.
  if (!host.includes(":")) return parseDottedQuad(host) >= 0;
  if (isIP(host) !== 0) return true;
  const pct = host.indexOf("%");
  return pct > 0 && isIP(host.slice(0, pct)) === 6;
}

/** The address part of an IP literal without its IPv6 zone id (`fe80::1%lo0` → `fe80::1`). */
export function stripZone(host: string): string {
  const pct = host.indexOf("%");
  return pct < 0 ? host : host.slice(0, pct);
}
