/**
 * Where a proxied request goes (RFC 9112 §3.2, SPEC-network §4): absolute-form
 * (`GET http://host[:port]/path`), origin-form plus `Host`, or authority-form for CONNECT.
 * Authorities are checked against a strict grammar (no userinfo, no percent-encoding, ASCII
 * only) before the WHATWG URL parser canonicalises them (lowercase, IPv4 spellings, IPv6),
 * so what the policy judges is exactly what is dialled and named in `Host`/SNI.
 * Errors name their 400 answer (answers.ts, SPEC-network §4). Connections pinned to a
 * checked target (SOCKS5 hand-off, MITM) use `pinnedRequestTarget`: every request must name
 * that target or none.
 */
import { headerValue, type RequestHead } from "../../http1/server-request-head.ts";
import type { AnswerName } from "../answers.ts";
import { normalizeHost } from "../host.ts";
import type { PinnedFrontEnd } from "./conn-io.ts";

/** Where a plain-HTTP request goes. */
export interface HttpTarget {
  scheme: "http" | "https";
  /** WHATWG hostname (IPv6 in brackets), what the policy is asked about. */
  hostname: string;
  port: number;
  /** Upstream URL: scheme, host and port (its path is the URL parser's normalised one). */
  url: URL;
  /**
   * The origin-form request-target to send upstream (RFC 9112 §3.2): the client's path and
   * query byte-exact (no dot-segment removal, no percent-encoding), without a fragment; `/`
   * when an absolute-form target has an empty path, `*` for OPTIONS with an empty path and
   * no query (§3.2.4).
   */
  path: string;
  /** Whether the request carried a Host field (else one is added from the target). */
  hasHost: boolean;
}

/** Outcome of target resolution: the target, or the 400 answer to give. */
export type TargetResult = ({ ok: true } & HttpTarget) | { ok: false; answer: AnswerName };

const fail = (answer: AnswerName): { ok: false; answer: AnswerName } => ({ ok: false, answer });

// host = IP-literal / reg-name (RFC 3986 §3.2.2) without pct-encoding; port = *DIGIT.
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]*)(?::([0-9]*))?$/;

/** Split and check `host[:port]`; `port` is null when absent or empty. */
export function parseAuthority(a: string): { host: string; port: number | null } | null {
  const m = AUTHORITY.exec(a);
  if (!m) return null;
  let port: number | null = null;
  if (m[2] !== undefined && m[2] !== "") {
    if (m[2].length > 5) return null;
    port = Number(m[2]);
    if (port < 1 || port > 65535) return null;
  }
  return { host: m[1]!, port };
}

/** WHATWG-canonical hostname of an already grammar-checked host, or null. */
function canonicalHost(host: string): string | null {
  if (host.replace(/\.+$/, "") === "") return null;
  try {
    const h = new URL(`http://${host}/`).hostname;
    return h.replace(/\.+$/, "") === "" ? null : h;
  } catch {
    return null;
  }
}

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/;

/** Resolve the target of a non-CONNECT request. */
export function resolveRequestTarget(head: RequestHead): TargetResult {
  const hostField = headerValue(head.headers, "host");
  const t = head.target;
  if (t.startsWith("/")) {
    if (hostField === undefined || hostField === "") return fail("missing_host");
    const a = parseAuthority(hostField);
    const hostname = a && canonicalHost(a.host);
    if (!a || !hostname) return fail("invalid_host");
    const port = a.port ?? 80;
    let url: URL;
    try {
      url = new URL(`http://${hostname}:${port}${t}`);
    } catch {
      return fail("invalid_host");
    }
    return { ok: true, scheme: "http", hostname, port, url, path: withoutFragment(t), hasHost: true };
  }
  const m = ABSOLUTE.exec(t);
  if (!m) return fail("missing_host");
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http" && scheme !== "https") return fail("unsupported_scheme");
  const authority = m[2]!;
  if (authority === "") return fail("missing_host");
  const a = parseAuthority(authority);
  const hostname = a && canonicalHost(a.host);
  if (!a || !hostname) return fail("invalid_host");
  const defaultPort = scheme === "https" ? 443 : 80;
  const port = a.port ?? defaultPort;
  const rest = m[3]!;
  const path = rest.startsWith("/") ? rest : rest === "" && head.method === "OPTIONS" ? "*" : `/${rest}`;
  let url: URL;
  try {
    url = new URL(`${scheme}://${authority}${rest.startsWith("/") ? rest : `/${rest}`}`);
  } catch {
    return fail("invalid_host");
  }
  if (hostField !== undefined) {
    const h = parseAuthority(hostField);
    const hn = h && canonicalHost(h.host);
    if (!h || !hn || stripDots(hn) !== stripDots(hostname) || (h.port ?? defaultPort) !== port) {
      return fail("host_header_mismatch");
    }
  }
  return { ok: true, scheme, hostname, port, url, path, hasHost: hostField !== undefined };
}

/** Path and query of an origin-form target as sent; a fragment (never valid here) is dropped. */
export function withoutFragment(t: string): string {
  const hash = t.indexOf("#");
  return hash < 0 ? t : t.slice(0, hash);
}

function stripDots(h: string): string {
  return h.replace(/\.+$/, "");
}

/** Parse a CONNECT authority-form target `host:port` (RFC 9112 §3.2.3); port required. */
export function parseConnectTarget(
  target: string,
): { ok: true; host: string; port: number } | { ok: false; answer: AnswerName } {
  const a = parseAuthority(target);
  if (!a || a.port === null) return fail("missing_authority");
  const host = canonicalHost(a.host);
  if (!host) return fail("invalid_host");
  return { ok: true, host, port: a.port };
}

/** A host and optional port from a Host field or an absolute-form authority, host normalised as the policy does (§3.1). */
export interface NormalizedAuthority {
  host: string;
  port: number | null;
}

/**
 * `parseAuthority` (strict grammar) with the host normalised as the policy does
 * (SPEC-network §3.1: lowercase, no brackets or trailing dots, IPv4 spellings → dotted quad).
 * Null when the grammar fails or the host is empty.
 */
export function parseNormalizedAuthority(value: string): NormalizedAuthority | null {
  const a = parseAuthority(value.trim());
  if (!a) return null;
  let host: string;
  try {
    host = normalizeHost(a.host);
  } catch {
    return null;
  }
  return host === "" ? null : { host, port: a.port };
}

/** True when `a` names `target` (same normalised host; port, when given, equal). */
export function authorityMatches(a: NormalizedAuthority, target: { host: string; port: number }): boolean {
  return a.host === normalizeHost(target.host) && (a.port === null || a.port === target.port);
}

const ABSOLUTE_ANY = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/;

/**
 * The target of a request on a connection pinned to `fe.target` (SOCKS5 hand-off, MITM;
 * SPEC-network §5, §6): origin-form, or absolute-form whose authority names the target; a
 * Host field, when present, must name it too (else `fe.mismatch`); HTTP/1.1 without Host is
 * 400 `missing host` when `fe.requireHost`. Asterisk-form and other schemes are 400
 * `invalid request target`. The upstream URL names the target (`fe.scheme`, default port
 * omitted); `path` is the client's path and query byte-exact, without a fragment.
 */
export function pinnedRequestTarget(head: RequestHead, fe: PinnedFrontEnd): TargetResult {
  const target = fe.target;
  let path: string;
  const t = head.target;
  if (t.startsWith("/")) {
    path = withoutFragment(t);
  } else {
    const m = ABSOLUTE_ANY.exec(t);
    if (!m) return fail("invalid_request_target");
    const scheme = m[1]!.toLowerCase();
    if ((scheme !== "https" && scheme !== "http") || m[2]!.includes("@")) return fail("invalid_request_target");
    const a = parseNormalizedAuthority(m[2]!);
    if (!a || !authorityMatches(a, target)) return fail(fe.mismatch);
    const rest = withoutFragment(m[3]!);
    path = rest.startsWith("/") ? rest : `/${rest}`;
  }
  let hasHost = false;
  for (const [k, v] of head.headers) {
    if (k.length !== 4 || k.toLowerCase() !== "host") continue;
    hasHost = true;
    const a = parseNormalizedAuthority(v);
    if (!a || !authorityMatches(a, target)) return fail(fe.mismatch);
  }
  if (!hasHost && fe.requireHost && head.version === "HTTP/1.1") return fail("missing_host");
  const hostName = target.host.includes(":") ? `[${target.host}]` : target.host;
  const defaultPort = fe.scheme === "https" ? 443 : 80;
  let url: URL;
  try {
    url = new URL(`${fe.scheme}://${hostName}${target.port === defaultPort ? "" : `:${target.port}`}/`);
  } catch {
    return fail("invalid_host");
  }
  return { ok: true, scheme: fe.scheme, hostname: target.host, port: target.port, url, path, hasHost };
}
