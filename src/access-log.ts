/**
 * The access line: one line per request when it ends (issue 13; smokescreen's canonical log
 * line, squid's access.log), the operations record next to the policy decision line (the
 * audit event). Both executables write it with the same field names, so one grep or one log
 * pipeline reads both:
 *
 * | field | meaning |
 * | --- | --- |
 * | `event.name` | `codex.network_proxy.access` / `codex.responses_api_proxy.access` |
 * | `client.address` | client `ip:port` (as in the decision line) |
 * | `http.request.method` | request method, absent for SOCKS5 and unparsable heads |
 * | `server.address`, `server.port` | target host (normalised) and port — never a path or query |
 * | `url.path` | responses proxy only: the request-target without its query |
 * | `network.transport.protocol` | `http`, `http-connect`, `https`, `socks5`, … (as in `/blocked`) |
 * | `network.policy.decision`, `network.policy.reason` | network proxy: the decision the request got |
 * | `http.response.status_code` | status sent to the client (absent when none was sent) |
 * | `socks5.reply` | SOCKS5 REP code sent (RFC 1928 §6) |
 * | `network.bytes_up`, `network.bytes_down` | bytes client → upstream and upstream → client (heads included) |
 * | `event.duration_ms` | from the request head (or connection) to the end, ms, one decimal |
 * | `upstream.ttfb_ms` | responses proxy: from forwarding to the upstream's response head, ms |
 * | `event.outcome` | `complete`, `client_closed` or `upstream_failed` |
 *
 * Written at `info`, so `--log-level warn` silences it. Never carries a header value, a query
 * string or a credential; client-supplied strings are bounded and control characters escaped.
 */
import type { Logger } from "./log.ts";

/** `event.name` of the network proxy's access line. */
export const NETWORK_ACCESS_EVENT = "codex.network_proxy.access";
/** `event.name` of the responses proxy's access line. */
export const RESPONSES_ACCESS_EVENT = "codex.responses_api_proxy.access";

/** How a request ended. */
export type AccessOutcome = "complete" | "client_closed" | "upstream_failed";

/** One finished request (or tunnel). Null/undefined fields are left out of the line. */
export interface AccessRecord {
  event: typeof NETWORK_ACCESS_EVENT | typeof RESPONSES_ACCESS_EVENT;
  client: string | null;
  method: string | null;
  host?: string | null;
  port?: number | null;
  /** Request-target without query (responses proxy). */
  path?: string | null;
  protocol: string;
  decision?: "allow" | "deny" | "error" | null;
  reason?: string | null;
  status?: number | null;
  socksReply?: number | null;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  upstreamTtfbMs?: number | null;
  outcome: AccessOutcome;
}

// Values come from clients: keep a hostile one from forging extra log lines or flooding the log
// (text format prints values raw). Same rule as the decision line.
function clean(v: string): string {
  const s = v.length > 256 ? v.slice(0, 256) : v;
  return s.replace(/[\x00-\x20\x7f"\\]/g, "?");
}

const ms = (v: number) => Math.round(v * 10) / 10;

/** The request-target without its query or fragment (never logged: it may carry tokens). */
export function pathOnly(target: string): string {
  const q = target.search(/[?#]/);
  return q < 0 ? target : target.slice(0, q);
}

/** Write the access line at `info`. Never throws. */
export function logAccess(log: Logger, r: AccessRecord): void {
  try {
    log.info("access", {
      "event.name": r.event,
      "client.address": r.client === null ? undefined : clean(r.client),
      "http.request.method": r.method === null ? undefined : clean(r.method),
      "server.address": r.host == null ? undefined : clean(r.host),
      "server.port": r.port ?? undefined,
      "url.path": r.path == null ? undefined : clean(pathOnly(r.path)),
      "network.transport.protocol": r.protocol,
      "network.policy.decision": r.decision ?? undefined,
      "network.policy.reason": r.reason ?? undefined,
      "http.response.status_code": r.status ?? undefined,
      "socks5.reply": r.socksReply ?? undefined,
      "network.bytes_up": r.bytesUp,
      "network.bytes_down": r.bytesDown,
      "event.duration_ms": ms(r.durationMs),
      "upstream.ttfb_ms": r.upstreamTtfbMs == null ? undefined : ms(r.upstreamTtfbMs),
      "event.outcome": r.outcome,
    });
  } catch {
    // A failing sink (closed stderr) must not break a request.
  }
}
