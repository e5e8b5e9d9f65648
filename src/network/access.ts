/**
 * The network proxy's access line (issue 13, fields in src/access-log.ts): what one request
 * or tunnel did, written once when it ends. The HTTP/1.1 loop (http/connection.ts) fills one
 * `AccessNote` per request — the verdict its handler got, the status it answered, the bytes
 * each way — and writes it when the request is done; tunnels (HTTP CONNECT, SOCKS5 CONNECT)
 * write theirs when they close. The same byte counts feed
 * `codex_network_proxy_bytes_{up,down}_total` for requests (tunnels count per chunk).
 */
import { logAccess, NETWORK_ACCESS_EVENT, type AccessOutcome } from "../access-log.ts";
import type { NetworkContext, PolicyRequest, Verdict } from "./types.ts";
import { recordedProtocol } from "./reasons.ts";

/** The facts of one request or tunnel, filled while it runs. */
export interface AccessNote {
  /** `performance.now()` when the request head was complete (tunnels: when asked for). */
  readonly start: number;
  client: string | null;
  method: string | null;
  /** Bytes of the request head (a tunnel adds them to what it carried). */
  headBytes: number;
  protocol: string;
  host: string | null;
  port: number | null;
  decision: "allow" | "deny" | "error" | null;
  reason: string | null;
  status: number | null;
  socksReply: number | null;
  outcome: AccessOutcome;
}

/** A fresh note for a request from `client`. */
export function startAccess(client: string | null, method: string | null, protocol: string, headBytes = 0): AccessNote {
  return {
    start: performance.now(),
    client,
    method,
    headBytes,
    protocol,
    host: null,
    port: null,
    decision: null,
    reason: null,
    status: null,
    socksReply: null,
    outcome: "complete",
  };
}

/** Record what the policy said about `req` (target, protocol, decision, reason). */
export function noteVerdict(note: AccessNote, req: PolicyRequest, verdict: Verdict): void {
  note.protocol = recordedProtocol(req.protocol);
  note.host = verdict.host || req.host;
  note.port = req.port;
  note.decision = verdict.action;
  note.reason = verdict.action === "deny" ? verdict.reason : verdict.action === "error" ? "dns" : null;
}

/** Write the access line for `note` with the bytes moved (never throws). */
export function writeAccess(ctx: NetworkContext, note: AccessNote, bytesUp: number, bytesDown: number): void {
  if (!ctx.log.enabled("info")) return;
  logAccess(ctx.log, {
    event: NETWORK_ACCESS_EVENT,
    client: note.client,
    method: note.method,
    host: note.host,
    port: note.port,
    protocol: note.protocol,
    decision: note.decision,
    reason: note.reason,
    status: note.status,
    socksReply: note.socksReply,
    bytesUp,
    bytesDown,
    durationMs: performance.now() - note.start,
    outcome: note.outcome,
  });
}
