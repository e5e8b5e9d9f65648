/**
 * Where a proxied request goes (RFC 9112 §3.2, SPEC-network §4): absolute-form
 * (`GET http://host[:port]/path`), origin-form plus `Host`, or authority-form for CONNECT.
 * Authorities are checked against a strict grammar (no userinfo, no percent-encoding, ASCII
 * only) before the WHATWG URL parser canonicalises them (lowercase, IPv4 spellings, IPv6),
 * so what the policy judges is exactly what is dialled and named in `Host`/SNI.
 * Errors carry the 400 texts of SPEC-network §4.
 */
import { headerValue, type RequestHead } from "./head-parser.ts";

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

/** Outcome of target resolution: the target, or the text of a 400 answer. */
export type TargetResult = ({ ok: true } & HttpTarget) | { ok: false; message: string };

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
    if (hostField === undefined || hostField === "") return { ok: false, message: "missing host" };
    const a = parseAuthority(hostField);
    const hostname = a && canonicalHost(a.host);
    if (!a || !hostname) return { ok: false, message: "invalid host" };
    const port = a.port ?? 80;
    let url: URL;
    try {
      url = new URL(`http://${hostname}:${port}${t}`);
    } catch {
      return { ok: false, message: "invalid host" };
    }
    return { ok: true, scheme: "http", hostname, port, url, path: withoutFragment(t), hasHost: true };
  }
  const m = ABSOLUTE.exec(t);
  if (!m) return { ok: false, message: "missing host" };
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http" && scheme !== "https") return { ok: false, message: "unsupported URL scheme" };
  const authority = m[2]!;
  if (authority === "") return { ok: false, message: "missing host" };
  const a = parseAuthority(authority);
  const hostname = a && canonicalHost(a.host);
  if (!a || !hostname) return { ok: false, message: "invalid host" };
  const defaultPort = scheme === "https" ? 443 : 80;
  const port = a.port ?? defaultPort;
  const rest = m[3]!;
  const path = rest.startsWith("/") ? rest : rest === "" && head.method === "OPTIONS" ? "*" : `/${rest}`;
  let url: URL;
  try {
    url = new URL(`${scheme}://${authority}${rest.startsWith("/") ? rest : `/${rest}`}`);
  } catch {
    return { ok: false, message: "invalid host" };
  }
  if (hostField !== undefined) {
    const h = parseAuthority(hostField);
    const hn = h && canonicalHost(h.host);
    if (!h || !hn || stripDots(hn) !== stripDots(hostname) || (h.port ?? defaultPort) !== port) {
      return { ok: false, message: "Host header does not match request target" };
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
): { ok: true; host: string; port: number } | { ok: false; message: string } {
  const a = parseAuthority(target);
  if (!a || a.port === null) return { ok: false, message: "missing authority" };
  const host = canonicalHost(a.host);
  if (!host) return { ok: false, message: "invalid host" };
  return { ok: true, host, port: a.port };
}
