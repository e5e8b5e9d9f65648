/**
 * The MITM-hook step of the policy (SPEC-network §10), a pure function of the compiled hooks
 * and the request. It runs after the host steps (a hooked host must be allowed first) and
 * before the mode step (hooks only narrow).
 *
 * - Host not hooked → null (the step does not apply).
 * - A tunnel that can be intercepted — `https_connect`, or a SOCKS5 TCP connection not yet
 *   peeked (`method` null, not a `writeChannel` of unreadable bytes) — → `intercept`: MITM it in both modes (the SOCKS5 front end then
 *   MITMs a TLS ClientHello and judges plain bytes as below).
 * - A request that reached the proxy in plaintext (`http`, a peeked SOCKS5 HTTP request) or a
 *   UDP datagram → deny `mitm_required`: credentials never ride a plaintext request.
 * - A decrypted request (`https`): the first hook that matches → `apply`; none →
 *   deny `mitm_hook_denied` (the hint is computed by `hookHint` from the same match).
 */
import type { PolicyProtocol } from "../reasons.ts";
import type { CompiledHook, HookTable } from "./match.ts";

/** What the step needs of a request (the host is passed normalised, apart); `target`/`headers` only for `https`. */
export interface HookStepRequest {
  protocol: PolicyProtocol;
  port: number;
  method: string | null;
  /** A stream the proxy cannot read (SOCKS5 bytes that are neither HTTP nor TLS). */
  writeChannel?: boolean;
  /** Raw origin-form request-target (decrypted requests). */
  target?: string;
  headers?: ReadonlyArray<readonly [string, string]>;
}

/** Outcome of the step (null: the host is not hooked). */
export type HookStep =
  | null
  | { action: "intercept" }
  | { action: "apply"; hook: CompiledHook }
  | { action: "deny"; reason: "mitm_required" | "mitm_hook_denied" };

/** Judge `req` to the normalised `host` against the hooks (see the module comment). Never throws for well-formed input. */
export function judgeHooks(table: HookTable, req: HookStepRequest, host: string): HookStep {
  if (!table.isHooked(host, req.port)) return null;
  switch (req.protocol) {
    case "https_connect":
      return { action: "intercept" };
    case "socks5_tcp":
      // Not peeked yet → look inside; a peeked plain-HTTP request or unreadable bytes → refused.
      return req.method === null && !req.writeChannel ? { action: "intercept" } : { action: "deny", reason: "mitm_required" };
    case "https": {
      const m = table.match({ host, port: req.port, method: req.method ?? "", target: req.target ?? "", headers: req.headers ?? [] });
      return m.kind === "match" ? { action: "apply", hook: m.hook } : { action: "deny", reason: "mitm_hook_denied" };
    }
    default:
      // http (absolute-form http:// or https://), socks5_udp; unix sockets never get here.
      return { action: "deny", reason: "mitm_required" };
  }
}
