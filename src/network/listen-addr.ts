/**
 * Listener addresses (SPEC-network §2 "Listener addresses"): parse `proxy_url`, `socks_url`,
 * `admin_url` and the `--http/--socks/--admin` flags into a bind host and port, then clamp
 * non-loopback binds to loopback unless the matching `dangerously_*` flag is set.
 */
import { isIP } from "node:net";
import type { Logger } from "../log.ts";
import { ConfigError } from "./config-error.ts";

/** A bind address: an IP literal (IPv6 without brackets) and a TCP port (0 = ephemeral). */
export interface ListenAddress {
  host: string;
  port: number;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** A decimal port 0..65535, or null when `s` is not one (callers then use the default). */
function parsePort(s: string): number | null {
  if (!/^[0-9]{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

/**
 * Parse a listener address (SPEC-network §2): trim; empty → `ConfigError`
 * `missing host in network proxy address: <input>`; `http://` assumed without a scheme (any
 * scheme is ignored); userinfo, path, query and fragment dropped; `[v6]:port` and bare IPv6
 * accepted; a bad or missing port → `defaultPort`; `localhost` and any other non-IP name →
 * `127.0.0.1` (listeners never bind by name).
 */
export function parseListenAddress(input: string, defaultPort: number): ListenAddress {
  const missing = () => new ConfigError(`missing host in network proxy address: ${input}`);
  let s = input.trim();
  if (s === "") throw missing();
  const scheme = SCHEME.exec(s);
  if (scheme) s = s.slice(scheme[0].length);
  // Authority ends at the first "/", "?" or "#".
  const end = s.search(/[/?#]/);
  if (end >= 0) s = s.slice(0, end);
  const at = s.lastIndexOf("@");
  if (at >= 0) s = s.slice(at + 1);

  let host: string;
  let portText = "";
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) {
      host = s.slice(1);
    } else {
      host = s.slice(1, close);
      const rest = s.slice(close + 1);
      if (rest.startsWith(":")) portText = rest.slice(1);
    }
  } else {
    const colon = s.indexOf(":");
    if (colon >= 0 && s.indexOf(":", colon + 1) >= 0) {
      host = s; // bare IPv6 literal: no port possible
    } else if (colon >= 0) {
      host = s.slice(0, colon);
      portText = s.slice(colon + 1);
    } else {
      host = s;
    }
  }
  host = host.trim().toLowerCase();
  if (host === "") throw missing();
  const port = parsePort(portText) ?? defaultPort;
  // A name is never bound: "localhost" and any other hostname mean loopback (§2).
  if (isIP(host) === 0) host = "127.0.0.1";
  return { host, port };
}

/** True for 127.0.0.0/8, `::1` and IPv4-mapped loopback. */
export function isLoopbackAddress(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith("127.");
  const h = host.toLowerCase();
  return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** Render `host:port` with brackets for IPv6. */
export function formatListenAddress(addr: ListenAddress): string {
  return addr.host.includes(":") ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}

/**
 * Clamp a parsed listener address (SPEC-network §2 "Clamping"). Loopback addresses pass
 * unchanged. Otherwise: with `forceLoopback` (non-empty `allow_unix_sockets`) → `127.0.0.1:<port>`
 * with a warning; without `allowNonLoopback` → `127.0.0.1:<port>` with a warning naming the
 * `dangerously_*` flag; with it → unchanged plus a
 * `DANGEROUS: <what> listening on non-loopback address <addr>` warning.
 * `what` names the listener (`HTTP proxy`, `SOCKS5 proxy`, `admin API`); `flag` the config key
 * that would allow the bind (default: derived from `what`).
 */
export function clampListenAddress(
  addr: ListenAddress,
  opts: { allowNonLoopback: boolean; forceLoopback: boolean; what: string; flag?: string },
  log: Logger,
): ListenAddress {
  if (isLoopbackAddress(addr.host)) return addr;
  const shown = formatListenAddress(addr);
  const clamped = { host: "127.0.0.1", port: addr.port };
  if (opts.forceLoopback) {
    log.warn(
      `${opts.what} requested non-loopback bind (${shown}); forcing 127.0.0.1:${addr.port} because ` +
        `network_proxy.policy.allow_unix_sockets is not empty`,
    );
    return clamped;
  }
  if (!opts.allowNonLoopback) {
    const flag =
      opts.flag ??
      (/admin/i.test(opts.what) ? "dangerously_allow_non_loopback_admin" : "dangerously_allow_non_loopback_proxy");
    log.warn(
      `${opts.what} requested non-loopback bind (${shown}); clamping to 127.0.0.1:${addr.port} ` +
        `(set network_proxy.${flag} to override)`,
    );
    return clamped;
  }
  log.warn(`DANGEROUS: ${opts.what} listening on non-loopback address ${shown}`);
  return addr;
}
