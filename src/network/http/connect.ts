/**
 * HTTP CONNECT (RFC 9110 §9.3.6, SPEC-network §4): judge `host:port` with protocol
 * `https_connect`; a verdict that says `intercept` (limited mode, or a host with MITM hooks in
 * any mode, §10) → the MITM (the policy answered 403 `mitm_required` when it does not run);
 * otherwise → dial the checked addresses, answer `200 Connection established` only once the
 * upstream is up (dial failure → 502 `upstream failure`), then splice (tunnel.ts) with the
 * SNI check (beyond). Block answers are `text/plain` and close the connection. A Host field
 * is never trusted over the CONNECT target.
 */
import type { RequestHead } from "../../http1/server-request-head.ts";
import { DialError } from "../dial-error.ts";
import type { CheckedTarget, PolicyRequest } from "../types.ts";
import { spliceTunnel } from "../tunnel.ts";
import type { ConnIO, Outcome } from "./conn-io.ts";
import { parseConnectTarget } from "./target.ts";
import { writeAccess } from "../access.ts";

const ESTABLISHED = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

/** Handle a CONNECT request; on success the socket belongs to the tunnel or the MITM. */
export async function handleConnect(io: ConnIO, head: RequestHead): Promise<Outcome> {
  const { ctx } = io;
  const socket = io.socket!; // connection.ts routes CONNECT here only for accepted sockets
  const t = parseConnectTarget(head.target);
  if (!t.ok) {
    io.answer(t.answer, { close: true });
    return "close";
  }
  const req: PolicyRequest = { protocol: "https_connect", host: t.host, port: t.port, method: "CONNECT", client: io.client };
  const verdict = await io.evaluate(req);
  if (io.signal.aborted) return "close";
  if (verdict.action === "deny") {
    io.block(verdict, req, { close: true, json: false });
    return "close";
  }
  if (verdict.action === "error") {
    ctx.log.info("upstream name lookup failed", { host: verdict.host, client: io.client });
    io.answer("upstream_failure", { close: true });
    return "close";
  }
  const target: CheckedTarget = { host: verdict.host, port: t.port, addresses: verdict.addresses };

  // The policy asks to look inside (limited mode, or a host with MITM hooks, §10) only because
  // the MITM runs (else `mitm_required`).
  const mitm = verdict.intercept ? ctx.mitm() : null;
  if (verdict.intercept && !mitm) {
    // The engine changed while the policy was asked: never splice such a tunnel raw.
    ctx.log.info("CONNECT state changed during the decision", { host: verdict.host, client: io.client });
    io.answer("internal_error", { close: true });
    return "close";
  }
  if (mitm) {
    // Each decrypted request writes its own access line (protocol https); the CONNECT does not.
    io.takeAccess();
    io.write(ESTABLISHED);
    await io.drained();
    if (io.signal.aborted) return "close";
    const buffered = io.takeBuffered();
    socket.data.handler = null;
    socket.resume(); // reading may have been paused for buffered early bytes; the MITM reads now
    mitm.intercept(socket, target, io.client, buffered.byteLength > 0 ? buffered : undefined);
    return "handed-off";
  }

  const buffered = io.takeBuffered();
  try {
    const tunnel = await spliceTunnel(socket, target.addresses, target.port, ctx, buffered.byteLength > 0 ? buffered : undefined, {
      onConnected: () => ESTABLISHED,
      sniCheck: { host: verdict.host, request: req },
    });
    io.opts.onTunnel?.(tunnel);
    // The access line of a tunnel is written when it closes, with every byte it carried.
    const note = io.takeAccess();
    if (note !== null) {
      note.status = 200;
      void tunnel.closed.then(() => {
        const b = tunnel.bytes();
        writeAccess(ctx, note, note.headBytes + buffered.byteLength + b.up, ESTABLISHED.byteLength + b.down);
      });
    }
    return "handed-off";
  } catch (err) {
    if (!(err instanceof DialError)) return "close"; // the client left during the dial
    ctx.log.info("CONNECT upstream connect failed", { host: verdict.host, port: t.port, client: io.client, code: err.code });
    io.answer("upstream_failure", { close: true });
    return "close";
  }
}
