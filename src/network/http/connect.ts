/**
 * HTTP CONNECT (RFC 9110 §9.3.6, SPEC-network §4): judge `host:port` with protocol
 * `https_connect`; limited mode → the MITM when it runs, else 403 `mitm_required`; full
 * mode → dial the checked addresses, answer `200 Connection established` only once the
 * upstream is up (dial failure → 502 `upstream failure`), then splice (tunnel.ts) with the
 * SNI check (beyond). Block answers are `text/plain` and close the connection. A Host field
 * is never trusted over the CONNECT target.
 */
import { DialError, type PolicyRequest } from "../types.ts";
import { spliceTunnel } from "../tunnel.ts";
import type { ConnIO, Outcome } from "./conn-io.ts";
import type { RequestHead } from "./head-parser.ts";
import { parseConnectTarget } from "./target.ts";

const ESTABLISHED = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

/** Handle a CONNECT request; on success the socket belongs to the tunnel or the MITM. */
export async function handleConnect(io: ConnIO, head: RequestHead): Promise<Outcome> {
  const { ctx } = io;
  const t = parseConnectTarget(head.target);
  if (!t.ok) {
    io.text(400, t.message, true);
    return "close";
  }
  const req: PolicyRequest = { protocol: "https_connect", host: t.host, port: t.port, method: "CONNECT", client: io.client };
  const verdict = await ctx.evaluate(req);
  if (io.signal.aborted) return "close";
  if (verdict.action === "deny") {
    if (verdict.reason === "proxy_disabled") io.text(503, "proxy disabled", true);
    else io.block(verdict.reason, req, verdict.host, false, true);
    return "close";
  }
  if (verdict.action === "error") {
    ctx.log.info("upstream name lookup failed", { host: verdict.host, client: io.client });
    io.text(502, "upstream failure", true);
    return "close";
  }
  const target = { host: verdict.host, port: t.port, addresses: verdict.addresses };

  if (ctx.config().mode === "limited") {
    const mitm = ctx.mitm();
    if (!mitm) {
      // The policy answers mitm_required itself when MITM is off; this is the case of an
      // engine that is configured but not running (its CA failed to load).
      ctx.recordBlock(req, "mitm_required");
      io.block("mitm_required", req, verdict.host, false, true);
      return "close";
    }
    io.write(ESTABLISHED);
    await io.drained();
    if (io.signal.aborted) return "close";
    const initial = io.takeBuffered();
    io.socket.data.handler = null;
    io.socket.resume(); // reading may have been paused for buffered early bytes; the MITM reads now
    mitm.intercept(io.socket, target, io.client, initial.byteLength > 0 ? initial : undefined);
    return "handed-off";
  }

  const initial = io.takeBuffered();
  try {
    const tunnel = await spliceTunnel(io.socket, target.addresses, target.port, ctx, initial.byteLength > 0 ? initial : undefined, {
      onConnected: () => ESTABLISHED,
      sniCheck: { host: verdict.host, request: req },
    });
    io.opts.onTunnel?.(tunnel);
    return "handed-off";
  } catch (err) {
    if (!(err instanceof DialError)) return "close"; // the client left during the dial
    ctx.log.info("CONNECT upstream connect failed", { host: verdict.host, port: t.port, client: io.client, code: err.code });
    io.text(502, "upstream failure", true);
    return "close";
  }
}
