/**
 * SOCKS5 CONNECT (RFC 1928 §4 CMD 0x01) under the network policy (SPEC-network §3, §5):
 * judge the destination with protocol `socks5_tcp` and no method; deny → REP 0x02, DNS
 * failure → REP 0x04; full mode: dial only the verdict's addresses and answer REP 0x00 with
 * the outbound socket's local address once connected (dial errors → 0x03/0x04/0x05/0x06/0x01);
 * limited mode: REP 0x00 at once (BND 0.0.0.0:0: nothing is dialed yet) and peek at the
 * client's first bytes (peek.ts). In limited mode the host verdict is provisional: the
 * decision line is written by the judgement of what the client sends (one line, §3).
 */
import { DialError } from "../dial-error.ts";
import type { CheckedTarget, PolicyRequest } from "../types.ts";
import { ATYP, type SocksAddress } from "./handshake.ts";
import { REP, replyBytes, repForDialError } from "./reply.ts";
import type { SessionIo } from "./types.ts";
import { spliceTunnel } from "../tunnel.ts";
import { createPeekHandler } from "./peek.ts";

/** Handle a parsed CONNECT request; the session has paused the client socket. Never throws for policy or dial failures. */
export async function runConnect(io: SessionIo, address: SocksAddress): Promise<void> {
  const { ctx, client } = io;
  const req: PolicyRequest = { protocol: "socks5_tcp", host: address.host, port: address.port, method: null, client };
  const limited = ctx.config().mode === "limited";
  const verdict = await ctx.evaluate(req, { provisional: limited });
  if (io.aborted()) return;
  if (verdict.action === "deny") {
    io.replyAndClose(REP.NOT_ALLOWED);
    return;
  }
  if (verdict.action === "error") {
    io.replyAndClose(REP.HOST_UNREACHABLE);
    return;
  }
  const target: CheckedTarget = { host: verdict.host, port: address.port, addresses: verdict.addresses };
  if (limited) {
    startPeeking(io, target);
    return;
  }
  // The method-selection bytes must reach the client before the tunnel's own queue writes.
  await new Promise<void>((resolve) => io.whenFlushed(resolve));
  if (io.aborted()) return;
  try {
    await spliceTunnel(io.socket, target.addresses, target.port, ctx, io.takeBuffered() ?? undefined, {
      onConnected: (up) => replyBytes(REP.SUCCEEDED, { address: up.localAddress, port: up.localPort }),
      // A name given by the client must also be the TLS server name (beyond, like HTTP
      // CONNECT). Not for IP literals: clients that resolve locally (curl --socks5) send an
      // IP and a ClientHello naming the host.
      sniCheck: address.atyp === ATYP.DOMAIN ? { host: target.host, request: req } : undefined,
    });
  } catch (err) {
    if (!(err instanceof DialError)) {
      // The client left during the dial (spliceTunnel owned its events then): nothing to answer.
      ctx.log.debug("socks5 tunnel not started", { client, error: err instanceof Error ? err.message : "error" });
      io.socket.end();
      return;
    }
    ctx.log.info("socks5 upstream connect failed", { host: target.host, port: target.port, client, code: err.code });
    if (!io.aborted()) io.replyAndClose(repForDialError(err.code));
  }
}

/** Limited mode: answer REP 0x00, then let the peek handler judge the first bytes. */
function startPeeking(io: SessionIo, target: CheckedTarget): void {
  io.write(replyBytes(REP.SUCCEEDED, null));
  io.whenFlushed(() => {
    if (io.aborted()) return;
    const handler = createPeekHandler(io.ctx, io.socket, target, io.opts);
    io.socket.data.handler = handler;
    const held = io.takeBuffered();
    io.socket.resume();
    if (!held) return;
    try {
      handler.data(io.socket, held);
    } catch (err) {
      // REP 0x00 is already out: no SOCKS reply fits any more; drop the connection.
      io.ctx.log.error("socks5 peek hand-off failed", { client: io.client, error: err instanceof Error ? err.message : "error" });
      io.socket.terminate();
    }
  });
}
