/**
 * Facts about a request head that the policy judges (SPEC-network §3, §4): whether it
 * carries a body, and whether it is a write channel. Transports compute them here, once,
 * and pass them in `PolicyRequest`; the rule that limited mode denies a write channel is in
 * policy.ts (`allowsMethod`).
 */
import type { RequestHead } from "../../http1/server-request-head.ts";
import { READ_ONLY_METHODS } from "../policy.ts";

/** Method-override fields some frameworks honour (SPEC-network §4). Lower-case. */
const METHOD_OVERRIDE = new Set(["x-http-method-override", "x-http-method", "x-method-override"]);

/** Whether the request carries content (a zero content-length does not: nothing to read, nothing to block). */
export function requestHasBody(head: RequestHead): boolean {
  return head.framing.kind === "chunked" || (head.framing.kind === "length" && head.framing.length > 0);
}

/**
 * Whether the request is a write channel (SPEC-network §4): it carries a body, asks for
 * `Upgrade` (WebSocket, h2c), or carries a method-override field naming a method other than
 * GET, HEAD or OPTIONS.
 */
export function isWriteChannel(head: RequestHead): boolean {
  if (requestHasBody(head)) return true;
  for (const [k, v] of head.headers) {
    // Length first: this runs for every request, and most field names rule themselves out.
    const len = k.length;
    if (len !== 7 && len !== 13 && len !== 17 && len !== 22) continue;
    const n = k.toLowerCase();
    if (n === "upgrade") return true;
    if (METHOD_OVERRIDE.has(n) && !READ_ONLY_METHODS.has(v.trim().toUpperCase())) return true;
  }
  return false;
}
