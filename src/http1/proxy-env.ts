/**
 * Proxy selection from the environment, as curl does it: `http_proxy`/`HTTP_PROXY` for http
 * targets, `https_proxy`/`HTTPS_PROXY` for https targets (lower case wins), and
 * `no_proxy`/`NO_PROXY` exclusions:
 * - entries separated by commas (and/or spaces), case-insensitive;
 * - `*` alone excludes every host;
 * - a name matches itself and its subdomains; a leading `.` is ignored (`.example.com`
 *   matches `example.com` and `a.example.com`), a trailing `.` on either side too;
 * - an IP literal matches that address; `addr/bits` matches a CIDR range (IPv6 may be
 *   bracketed);
 * - `host:port` restricts the entry to that port.
 * Only `http://` proxies (or a bare `host:port`) are supported.
 */
import ipaddr from "ipaddr.js";

/** The proxy a request goes through. */
export interface ProxyChoice {
  /** The proxy's `http:` URL (credentials stripped from `href` use; see `authorization`). */
  url: URL;
  /** Host and port to dial. */
  host: string;
  port: number;
  /** `Basic …` credentials from the proxy URL's userinfo, or null. */
  authorization: string | null;
  /** A key for connection pooling (no credentials). */
  key: string;
}

function envValue(env: Record<string, string | undefined>, name: string): string | undefined {
  const lower = env[name.toLowerCase()];
  if (lower !== undefined && lower !== "") return lower;
  const upper = env[name.toUpperCase()];
  return upper !== undefined && upper !== "" ? upper : undefined;
}

/** Strip IPv6 brackets and trailing dots, lowercase. */
function normHost(h: string): string {
  let s = h.toLowerCase();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  while (s.endsWith(".")) s = s.slice(0, -1);
  return s;
}

/** Split a NO_PROXY entry into host pattern and optional port. */
function splitEntry(entry: string): { host: string; port: number | null } {
  if (entry.startsWith("[")) {
    const close = entry.indexOf("]");
    if (close > 0) {
      const rest = entry.slice(close + 1);
      const port = rest.startsWith(":") ? Number(rest.slice(1)) : null;
      return { host: entry.slice(1, close) + (rest.startsWith("/") ? rest : ""), port: Number.isInteger(port) ? port : null };
    }
  }
  const colons = entry.split(":").length - 1;
  if (colons === 1) {
    const [h, p] = entry.split(":");
    const port = Number(p);
    return { host: h!, port: Number.isInteger(port) && p !== "" ? port : null };
  }
  return { host: entry, port: null }; // bare IPv6 (many colons) or no port
}

/**
 * True when `NO_PROXY` (value `noProxy`) excludes `host:port`.
 * @param host the target host as in `URL.hostname` (IPv6 bracketed or not)
 */
export function noProxyMatches(noProxy: string, host: string, port: number): boolean {
  const target = normHost(host);
  const targetIp = ipaddr.isValid(target) ? ipaddr.parse(target) : null;
  for (const raw of noProxy.split(/[\s,]+/)) {
    if (raw === "") continue;
    if (raw === "*") return true;
    const { host: pattern, port: entryPort } = splitEntry(raw);
    if (entryPort !== null && entryPort !== port) continue;
    let p = pattern.toLowerCase();
    if (p.includes("/")) {
      if (targetIp === null) continue;
      try {
        const [range, bits] = ipaddr.parseCIDR(p);
        if (range.kind() === targetIp.kind() && targetIp.match(range, bits)) return true;
      } catch {
        // Not a valid CIDR: ignore the entry, as curl does.
      }
      continue;
    }
    p = normHost(p);
    while (p.startsWith(".")) p = p.slice(1);
    if (p === "") continue;
    if (targetIp !== null) {
      if (ipaddr.isValid(p) && ipaddr.parse(p).toNormalizedString() === targetIp.toNormalizedString()) return true;
      continue;
    }
    if (target === p || target.endsWith("." + p)) return true;
  }
  return false;
}

/**
 * Parse a proxy URL value. `host:port` without a scheme means `http://`.
 * @throws TypeError for an unparsable value or a scheme other than http (message names the
 *   variable, never its value, which may carry credentials)
 */
export function parseProxyUrl(value: string, variable: string): ProxyChoice {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`${variable} is not a valid proxy URL`);
  }
  if (url.protocol !== "http:") throw new TypeError(`${variable}: unsupported proxy scheme ${url.protocol} (only http:// proxies)`);
  if (url.hostname === "") throw new TypeError(`${variable} has no host`);
  const port = url.port === "" ? 80 : Number(url.port);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  let authorization: string | null = null;
  if (url.username !== "" || url.password !== "") {
    const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    authorization = `Basic ${Buffer.from(cred, "utf8").toString("base64")}`;
  }
  return { url, host, port, authorization, key: `${host}:${port}` };
}

/**
 * Choose the proxy for `target`, or null for a direct connection.
 * @throws TypeError when the relevant variable is set but unusable (fail closed: never
 *   silently connect directly when the user asked for a proxy)
 */
export function proxyForUrl(target: URL, env: Record<string, string | undefined> | null): ProxyChoice | null {
  if (env === null) return null;
  const name = target.protocol === "https:" ? "https_proxy" : "http_proxy";
  const value = envValue(env, name);
  if (value === undefined) return null;
  const noProxy = envValue(env, "no_proxy");
  const port = target.port === "" ? (target.protocol === "https:" ? 443 : 80) : Number(target.port);
  if (noProxy !== undefined && noProxyMatches(noProxy, target.hostname, port)) return null;
  return parseProxyUrl(value, env[name] !== undefined && env[name] !== "" ? name : name.toUpperCase());
}
