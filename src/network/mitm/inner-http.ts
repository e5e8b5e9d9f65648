/**
 * The MITM front end of the one HTTP/1.1 request loop (SPEC-network §6): the decrypted side
 * of a tunnel runs `http/connection.ts` with the MITM's own rules as data —
 * CONNECT → 405 `CONNECT not supported inside MITM`; Host / absolute authority ≠ the tunnel's
 * checked target → 400 `host mismatch` (HTTP/1.1 without Host → 400 `missing host`); each
 * request judged by the policy again with protocol `https` (local/private re-check, method
 * and write channel of the current mode, proxy disabled → 503); blocks answered as
 * `text/plain`; upstream failures → 502 `mitm upstream error`; one `mitm inspect` line per
 * response while `mitm.inspect` is on. Forwarded to `https://host[:port≠443]/path?query` over
 * the tunnel's checked addresses.
 */
import { createHttpSession } from "../http/connection.ts";
import type { HttpSession, HttpTransport, PinnedFrontEnd } from "../http/conn-io.ts";
import type { UpstreamClients } from "../http/upstream-clients.ts";
import type { CheckedTarget, NetworkContext } from "../types.ts";

/** The MITM's front-end rules for a tunnel to `target`. */
export function mitmFrontEnd(target: CheckedTarget): PinnedFrontEnd {
  return {
    protocol: "https",
    scheme: "https",
    target,
    mismatch: "host_mismatch",
    requireHost: true,
    json: false,
    upstreamFailure: "mitm_upstream_error",
    inspect: true,
  };
}

/** Start the loop for one decrypted connection. `client` is the downstream `ip:port` (or null). */
export function createInnerHttpSession(
  deps: { ctx: NetworkContext; clients: UpstreamClients; headTimeoutMs?: number; idleTimeoutMs?: number },
  target: CheckedTarget,
  client: string | null,
  transport: HttpTransport,
): HttpSession {
  const { clients, headTimeoutMs, idleTimeoutMs } = deps;
  return createHttpSession(deps.ctx, { clients, frontEnd: mitmFrontEnd(target), headTimeoutMs, idleTimeoutMs }, transport, client);
}
