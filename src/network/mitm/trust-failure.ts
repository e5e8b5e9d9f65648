/**
 * The line logged when a client aborts the TLS handshake inside the MITM (issue 13): almost
 * always a client that does not trust the MITM CA (curl exit 60, Python
 * CERTIFICATE_VERIFY_FAILED, Node UNABLE_TO_GET_ISSUER_CERT_LOCALLY). Without it the operator
 * sees the client fail and nothing in the proxy's log. One line at `info`, naming the host
 * and the client, with the settings that make each client trust the CA (trust-hints.ts).
 */
import type { Logger } from "../../log.ts";
import { trustHints } from "./trust-hints.ts";

/** `event.name` of the line. */
export const TRUST_FAILURE_EVENT = "codex.network_proxy.mitm_handshake_aborted";

/** Message of the line. */
export const TRUST_FAILURE_MESSAGE = "TLS handshake aborted by the client inside the MITM; the client probably does not trust the MITM CA";

/** Hosts and client addresses come from clients: no control characters or quotes in a log line. */
function clean(v: string): string {
  const s = v.length > 256 ? v.slice(0, 256) : v;
  return s.replace(/[\x00-\x20\x7f"\\]/g, "?");
}

/**
 * Log the aborted handshake. `detail` is the TLS library's reason when there is one (never
 * shown to the client). Never throws.
 */
export function logTrustFailure(
  log: Logger,
  f: { host: string; port: number; client: string | null; caCertPath: string; detail?: string | null },
): void {
  try {
    log.info(TRUST_FAILURE_MESSAGE, {
      "event.name": TRUST_FAILURE_EVENT,
      "server.address": clean(f.host),
      "server.port": f.port,
      "client.address": f.client === null ? undefined : clean(f.client),
      "tls.error": f.detail ? clean(f.detail) : undefined,
      "mitm.ca_cert_path": f.caCertPath,
      trust: trustHints(f.caCertPath)
        .map((h) => `${h.client}: ${h.how}`)
        .join("; "),
    });
  } catch {
    // A failing sink must not break the connection handling.
  }
}
