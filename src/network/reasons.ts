/**
 * The closed lists of the policy's vocabulary: block reasons, deny sources, the protocols it
 * is asked about and the names recorded for them. Source: SPEC-network §3, §7; the reference
 * crate's `reasons.rs`. What a client sees for each reason is in answers.ts.
 */
export const BLOCK_REASONS = [
  "denied",
  "not_allowed",
  "not_allowed_local",
  "method_not_allowed",
  "mitm_required",
  "mitm_hook_denied",
  "proxy_disabled",
  "policy_denied",
  "sni_mismatch",
] as const;

/** A reason a request was blocked (SPEC-network §3). */
export type BlockReason = (typeof BLOCK_REASONS)[number];

/**
 * Who denied a request (SPEC-network §3; the reference's `NetworkDecision::Deny.source`):
 * `baseline_policy` (host lists, local addresses, socket list), `mode_guard` (limited mode),
 * `proxy_state` (disabled, MITM not available), `mitm_hook` (§10), `transport` (facts learned
 * after the verdict, such as `sni_mismatch`).
 */
export type DenySource = "baseline_policy" | "mode_guard" | "proxy_state" | "mitm_hook" | "transport";

/** SOCKS5 reply code for a policy deny (RFC 1928 §6: 0x02 "connection not allowed by ruleset"). */
export const SOCKS_REP_NOT_ALLOWED = 0x02;

/** Transport protocols the policy function is asked about (SPEC-network §3). */
export type PolicyProtocol = "http" | "https_connect" | "https" | "socks5_tcp" | "socks5_udp" | "unix_socket";

/** Protocol names used in `/blocked` entries and metrics (SPEC-network §7). */
export type RecordedProtocol = "http" | "http-connect" | "https" | "socks5" | "socks5-udp" | "unix-socket";

const RECORDED: Record<PolicyProtocol, RecordedProtocol> = {
  http: "http",
  https_connect: "http-connect",
  https: "https",
  socks5_tcp: "socks5",
  socks5_udp: "socks5-udp",
  unix_socket: "unix-socket",
};

/** Map a policy protocol to the name recorded in `/blocked`. */
export function recordedProtocol(p: PolicyProtocol): RecordedProtocol {
  return RECORDED[p];
}
