/**
 * Prometheus counters of the network proxy (SPEC-network §7 `GET /metrics`), rendered in the
 * text exposition format 0.0.4 (`# HELP`, `# TYPE`, one sample per line).
 *
 * Families:
 * - `codex_network_proxy_requests_total{protocol,decision,reason}` counter — one per policy
 *   decision; `protocol` is the recorded name (`http`, `http-connect`, `https`, `socks5`, …),
 *   `decision` is `allow`/`deny`/`error`, `reason` the block reason or `""`.
 * - `codex_network_proxy_open_tunnels` gauge — raw tunnels currently spliced.
 * - `codex_network_proxy_bytes_up_total` / `codex_network_proxy_bytes_down_total` counters —
 *   payload bytes client→upstream / upstream→client.
 * - `codex_network_proxy_mitm_certs_issued_total` counter — MITM leaf certificates issued.
 * - `codex_network_proxy_config_reloads_total{result}` counter — reloads, `ok` or `error`.
 * - `codex_network_proxy_connections_refused_total` counter — client connections closed at
 *   once because `max_connections` was reached (§12).
 * - `codex_network_proxy_hook_requests_total{hook}` counter — decrypted requests a MITM hook
 *   applied to (§10), by hook label (`name`, else `hooks[<index>]`).
 * - `codex_network_proxy_hook_injected_headers_total{hook}` counter — header fields injected.
 */
import type { Metrics } from "./types.ts";

/** The metrics object of one proxy process, plus the reload counter the reloader feeds. */
export interface ProxyMetrics extends Metrics {
  /** Count one config reload attempt. */
  reload(ok: boolean): void;
  /** Count one client connection refused by the connection cap. */
  connectionRefused(): void;
  /** Count a request a MITM hook applied to, and the header fields it injected (§10). */
  hook(label: string, injected: number): void;
}

/** Escape a label value (backslash, double quote, line feed), per the exposition format. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Create an empty metrics set. No global registry: each proxy instance owns one. */
export function createMetrics(): ProxyMetrics {
  // Keyed by the rendered label set so a decision costs one string build and one Map lookup.
  const requests = new Map<string, number>();
  let openTunnels = 0;
  let bytesUp = 0;
  let bytesDown = 0;
  let certs = 0;
  let reloadsOk = 0;
  let reloadsError = 0;
  let refused = 0;
  const hookRequests = new Map<string, number>();
  const hookInjected = new Map<string, number>();
  return {
    connectionRefused() {
      refused++;
    },
    hook(label, injected) {
      hookRequests.set(label, (hookRequests.get(label) ?? 0) + 1);
      hookInjected.set(label, (hookInjected.get(label) ?? 0) + injected);
    },
    request(protocol, decision, reason) {
      const key = `protocol="${escapeLabel(protocol)}",decision="${decision}",reason="${escapeLabel(reason ?? "")}"`;
      requests.set(key, (requests.get(key) ?? 0) + 1);
    },
    tunnelOpened() {
      openTunnels++;
    },
    tunnelClosed() {
      if (openTunnels > 0) openTunnels--;
    },
    bytes(up, down) {
      bytesUp += up;
      bytesDown += down;
    },
    certIssued() {
      certs++;
    },
    reload(ok) {
      if (ok) reloadsOk++;
      else reloadsError++;
    },
    render() {
      const lines: string[] = [];
      /** One metric family: HELP, TYPE, then its samples (text exposition format 0.0.4). */
      const family = (name: string, type: "counter" | "gauge", help: string, samples: Array<[string, number]>) => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
        for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
      };
      family(
        "codex_network_proxy_requests_total",
        "counter",
        "Policy decisions by transport protocol, decision and block reason.",
        [...requests].map(([labels, n]): [string, number] => [`{${labels}}`, n]),
      );
      family("codex_network_proxy_open_tunnels", "gauge", "Raw tunnels (CONNECT, SOCKS5) currently open.", [["", openTunnels]]);
      family("codex_network_proxy_bytes_up_total", "counter", "Bytes forwarded from clients to upstreams.", [["", bytesUp]]);
      family("codex_network_proxy_bytes_down_total", "counter", "Bytes forwarded from upstreams to clients.", [["", bytesDown]]);
      family("codex_network_proxy_mitm_certs_issued_total", "counter", "MITM leaf certificates issued.", [["", certs]]);
      family("codex_network_proxy_config_reloads_total", "counter", "Configuration reload attempts by result.", [
        ['{result="ok"}', reloadsOk],
        ['{result="error"}', reloadsError],
      ]);
      family(
        "codex_network_proxy_connections_refused_total",
        "counter",
        "Client connections closed at once because max_connections was reached.",
        [["", refused]],
      );
      const byHook = (m: Map<string, number>) => [...m].map(([label, n]): [string, number] => [`{hook="${escapeLabel(label)}"}`, n]);
      family("codex_network_proxy_hook_requests_total", "counter", "Decrypted requests a MITM hook applied to, by hook.", byHook(hookRequests));
      family("codex_network_proxy_hook_injected_headers_total", "counter", "Header fields injected by MITM hooks, by hook.", byHook(hookInjected));
      return lines.join("\n") + "\n";
    },
  };
}
