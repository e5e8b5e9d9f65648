/**
 * The closed list of block reasons and the one table mapping each to what a client sees.
 * Source: SPEC-network §3 (reasons) and §4 (status, `x-proxy-error`, text); the reference
 * crate's `reasons.rs` + `responses.rs`. Every transport turns a deny into bytes through
 * this table only.
 */
export const BLOCK_REASONS = [
  "denied",
  "not_allowed",
  "not_allowed_local",
  "method_not_allowed",
  "mitm_required",
  "proxy_disabled",
  "policy_denied",
  "sni_mismatch",
] as const;

/** A reason a request was blocked (SPEC-network §3). */
export type BlockReason = (typeof BLOCK_REASONS)[number];

/** How a reason is shown: HTTP status, `x-proxy-error` header value, human text. */
export interface ReasonView {
  status: 403 | 503;
  proxyError:
    | "blocked-by-allowlist"
    | "blocked-by-denylist"
    | "blocked-by-method-policy"
    | "blocked-by-mitm-required"
    | "blocked-by-policy";
  text: string;
}

const TABLE: Record<BlockReason, ReasonView> = {
  not_allowed: {
    status: 403,
    proxyError: "blocked-by-allowlist",
    text: "Codex blocked this request: domain not in allowlist.",
  },
  not_allowed_local: {
    status: 403,
    proxyError: "blocked-by-allowlist",
    text: "Codex blocked this request: local/private addresses not allowed.",
  },
  denied: {
    status: 403,
    proxyError: "blocked-by-denylist",
    text: "Codex blocked this request: domain denied by policy.",
  },
  method_not_allowed: {
    status: 403,
    proxyError: "blocked-by-method-policy",
    text: "Codex blocked this request: method not allowed in limited mode.",
  },
  mitm_required: {
    status: 403,
    proxyError: "blocked-by-mitm-required",
    text: "Codex blocked this request: MITM required for limited HTTPS.",
  },
  proxy_disabled: { status: 403, proxyError: "blocked-by-policy", text: "Codex blocked this request by network policy." },
  policy_denied: { status: 403, proxyError: "blocked-by-policy", text: "Codex blocked this request by network policy." },
  sni_mismatch: { status: 403, proxyError: "blocked-by-policy", text: "Codex blocked this request by network policy." },
};

/** Look up the view of a reason. Unknown input (should not happen) fails closed to `blocked-by-policy`. */
export function reasonView(reason: BlockReason): ReasonView {
  return TABLE[reason] ?? TABLE.policy_denied;
}

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
