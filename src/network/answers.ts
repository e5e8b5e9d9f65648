/**
 * The one table of answers the proxy makes itself (SPEC-network §2, §4, §6; the reference
 * crate's `responses.rs`, smokescreen's `rejectResponse`): every block reason and every
 * short `text/plain` answer, each a named entry with status, `x-proxy-error` (blocks only)
 * and text. Transports name an entry; `http/answer-bytes.ts` renders it, for the plain
 * listener and inside the MITM alike. Unknown reasons fail closed to `blocked-by-policy`.
 */
import type { BlockReason } from "./reasons.ts";

/** Values of the `x-proxy-error` header (SPEC-network §4). */
export type ProxyErrorValue =
  | "blocked-by-allowlist"
  | "blocked-by-denylist"
  | "blocked-by-method-policy"
  | "blocked-by-mitm-required"
  | "blocked-by-mitm-hook"
  | "blocked-by-policy";

/** How an answer is shown: HTTP status, `x-proxy-error` (blocks), human text. */
export interface AnswerView {
  status: number;
  proxyError?: ProxyErrorValue;
  text: string;
}

/** The proxy's own non-block answers, by name (all `text/plain`). */
export const ANSWERS = {
  missing_authority: { status: 400, text: "missing authority" },
  invalid_host: { status: 400, text: "invalid host" },
  missing_host: { status: 400, text: "missing host" },
  unsupported_scheme: { status: 400, text: "unsupported URL scheme" },
  host_header_mismatch: { status: 400, text: "Host header does not match request target" },
  host_mismatch: { status: 400, text: "host mismatch" },
  invalid_request_target: { status: 400, text: "invalid request target" },
  invalid_request_body: { status: 400, text: "invalid request body" },
  invalid_unix_socket_header: { status: 400, text: "invalid x-unix-socket header" },
  connect_inside_mitm: { status: 405, text: "CONNECT not supported inside MITM" },
  request_timeout: { status: 408, text: "request timeout" },
  internal_error: { status: 500, text: "error" },
  upstream_failure: { status: 502, text: "upstream failure" },
  mitm_upstream_error: { status: 502, text: "mitm upstream error" },
  unix_socket_failed: { status: 502, text: "unix socket proxy failed" },
  proxy_disabled: { status: 503, text: "proxy disabled" },
} as const satisfies Record<string, AnswerView>;

/** Name of a non-block answer. */
export type AnswerName = keyof typeof ANSWERS;

const POLICY_TEXT = "Codex blocked this request by network policy.";

const BLOCKS: Record<BlockReason, AnswerView> = {
  not_allowed: { status: 403, proxyError: "blocked-by-allowlist", text: "Codex blocked this request: domain not in allowlist." },
  not_allowed_local: {
    status: 403,
    proxyError: "blocked-by-allowlist",
    text: "Codex blocked this request: local/private addresses not allowed.",
  },
  denied: { status: 403, proxyError: "blocked-by-denylist", text: "Codex blocked this request: domain denied by policy." },
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
  mitm_hook_denied: {
    status: 403,
    proxyError: "blocked-by-mitm-hook",
    text: "Codex blocked this request: no MITM hook matched this request.",
  },
  // A disabled proxy is not a block of this request: every request gets 503 (SPEC-network §2).
  proxy_disabled: ANSWERS.proxy_disabled,
  policy_denied: { status: 403, proxyError: "blocked-by-policy", text: POLICY_TEXT },
  sni_mismatch: { status: 403, proxyError: "blocked-by-policy", text: POLICY_TEXT },
};

/** The view of a block reason. Unknown input (should not happen) fails closed to `blocked-by-policy`. */
export function reasonView(reason: BlockReason): AnswerView {
  return BLOCKS[reason] ?? BLOCKS.policy_denied;
}

/** Whether a deny is answered as a block (403 with `x-proxy-error`) rather than a plain answer. */
export function isBlockAnswer(view: AnswerView): boolean {
  return view.proxyError !== undefined;
}
