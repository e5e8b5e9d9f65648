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
 */
import type { Metrics } from "./types.ts";

/** The metrics object of one proxy process, plus the reload counter the reloader feeds. */
export interface ProxyMetrics extends Metrics {
  /** Count one config reload attempt. */
  reload(ok: boolean): void;
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
  return {
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
      const lines: string[] = [
        "# HELP codex_network_proxy_requests_total Policy decisions by transport protocol, decision and block reason.",
        "# TYPE codex_network_proxy_requests_total counter",
      ];
      for (const [labels, n] of requests) lines.push(`codex_network_proxy_requests_total{${labels}} ${n}`);
      lines.push(
        "# HELP codex_network_proxy_open_tunnels Raw tunnels (CONNECT, SOCKS5) currently open.",
        "# TYPE codex_network_proxy_open_tunnels gauge",
        `codex_network_proxy_open_tunnels ${openTunnels}`,
        "# HELP codex_network_proxy_bytes_up_total Bytes forwarded from clients to upstreams.",
        "# TYPE codex_network_proxy_bytes_up_total counter",
        `codex_network_proxy_bytes_up_total ${bytesUp}`,
        "# HELP codex_network_proxy_bytes_down_total Bytes forwarded from upstreams to clients.",
        "# TYPE codex_network_proxy_bytes_down_total counter",
        `codex_network_proxy_bytes_down_total ${bytesDown}`,
        "# HELP codex_network_proxy_mitm_certs_issued_total MITM leaf certificates issued.",
        "# TYPE codex_network_proxy_mitm_certs_issued_total counter",
        `codex_network_proxy_mitm_certs_issued_total ${certs}`,
        "# HELP codex_network_proxy_config_reloads_total Configuration reload attempts by result.",
        "# TYPE codex_network_proxy_config_reloads_total counter",
        `codex_network_proxy_config_reloads_total{result="ok"} ${reloadsOk}`,
        `codex_network_proxy_config_reloads_total{result="error"} ${reloadsError}`,
      );
      return lines.join("\n") + "\n";
    },
  };
}
