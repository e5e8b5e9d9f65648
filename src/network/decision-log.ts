/**
 * The one log line per policy decision (SPEC-network §9). The same field names are used in
 * both log formats, so text lines and JSON lines can be grepped the same way:
 * `event.name=codex.network_proxy.policy_decision`, `network.policy.decision`
 * (`allow`/`deny`/`error`), `network.policy.reason`, `network.transport.protocol` (the name
 * recorded in `/blocked`), `server.address` (normalised host), `server.port`,
 * `http.request.method`, `client.address`, `network.policy.hook` (the MITM hook that applied,
 * §10), and for a deny `network.policy.source` (who denied,
SPEC-network §3). Exactly one line per request is written, by the context's `evaluate` (or
`recordBlock` for facts learned after the verdict). Query strings and credentials are never part of a
 * decision, so they can't reach the log.
 */
import type { Logger } from "../log.ts";

/** Value of the `event.name` field. */
export const DECISION_EVENT = "codex.network_proxy.policy_decision";

/** One decision to log. */
export interface DecisionRecord {
  decision: "allow" | "deny" | "error";
  /** Block reason (deny), `dns` (error), null (allow). */
  reason: string | null;
  /** Deny source (§3), null otherwise. */
  source: string | null;
  /** Label of the MITM hook that applied (§10 `network.policy.hook`); absent otherwise. */
  hook?: string;
  protocol: string;
  host: string;
  port: number;
  method: string | null;
  client: string | null;
}

// Hosts and methods come from clients: keep a hostile value from forging extra log lines or
// flooding the log (text format prints values raw).
function clean(v: string): string {
  const s = v.length > 256 ? v.slice(0, 256) : v;
  return s.replace(/[\x00-\x20\x7f"\\]/g, "?");
}

/** Write the decision line at `info` level. Never throws. */
export function logDecision(log: Logger, d: DecisionRecord): void {
  try {
    log.info("policy decision", {
      "event.name": DECISION_EVENT,
      "network.policy.decision": d.decision,
      "network.policy.reason": d.reason ?? undefined,
      "network.policy.source": d.source ?? undefined,
      "network.policy.hook": d.hook === undefined ? undefined : clean(d.hook),
      "network.transport.protocol": d.protocol,
      "server.address": clean(d.host),
      "server.port": d.port,
      "http.request.method": d.method === null ? undefined : clean(d.method),
      "client.address": d.client === null ? undefined : clean(d.client),
    });
  } catch {
    // A failing sink (closed stderr) must not turn a decision into a fault.
  }
}
