/**
 * SOCKS5 CONNECT (RFC 1928 §4 CMD 0x01) under the network policy (SPEC-network §3, §5):
 * judge the destination with protocol `socks5_tcp` and no method; deny → REP 0x02, DNS
 * failure → REP 0x04; full mode: dial only the verdict's addresses and answer REP 0x00 with
 * the outbound socket's local address once connected (dial errors → 0x03/0x04/0x05/0x06/0x01);
 * when the verdict says `intercept` (limited mode, or a host with MITM hooks, §10): REP 0x00
 * at once (BND 0.0.0.0:0: nothing is dialed yet) and peek at the client's first bytes
 * (peek.ts). Such a host verdict is provisional: the decision line is written by the
 * judgement of what the client sends (one line, §3).
 */
import { DialError } from "../dial-error.ts";
import type { CheckedTarget, PolicyRequest } from "../types.ts";
import { ATYP, type SocksAddress } from "./handshake.ts";
import { REP, replyBytes, repForDialError } from "./reply.ts";
import type { SessionIo } from "./types.ts";
import { spliceTunnel } from "../tunnel.ts";
import { createPeekHandler } from "./peek.ts";
import { noteVerdict, startAccess, writeAccess, type AccessNote } from "../access.ts";

/**
 * Handle a parsed CONNECT request; the session keeps reading the client meanwhile (holding what
 * arrives, pausing past 64 KiB). Never throws for policy or dial failures.
 */
export async function runConnect(io: SessionIo, address: SocksAddress): Promise<void> {
  const { ctx, client } = io;
  const req: PolicyRequest = { protocol: "socks5_tcp", host: address.host, port: address.port, method: null, client };
  // Provisional: an allow that must be looked inside (limited mode, a hooked host) is judged
  // and logged again from what the client sends.
  // The access line (docs/logs.md): a refusal now, a tunnel when it closes. Connections that
  // are looked inside (the peek hands them to the HTTP loop or the MITM) write one line per
  // request instead.
  const note = startAccess(client, null, "socks5");
  const verdict = await ctx.evaluate(req, { provisional: true });
  noteVerdict(note, req, verdict);
  if (io.aborted()) return;
  if (verdict.action === "deny") {
    refuse(io, note, REP.NOT_ALLOWED);
    return;
  }
  if (verdict.action === "error") {
    refuse(io, note, REP.HOST_UNREACHABLE);
    return;
  }
  const target: CheckedTarget = { host: verdict.host, port: address.port, addresses: verdict.addresses };
  if (verdict.intercept) {
    startPeeking(io, target);
    return;
  }
  // The method-selection bytes must reach the client before the tunnel's own queue writes.
  await new Promise<void>((resolve) => io.whenFlushed(resolve));
  if (io.aborted()) return;
  const initial = io.takeBuffered() ?? undefined;
  try {
    const tunnel = await spliceTunnel(io.socket, target.addresses, target.port, ctx, initial, {
      onConnected: (up) => replyBytes(REP.SUCCEEDED, { address: up.localAddress, port: up.localPort }),
      // A name given by the client must also be the TLS server name (beyond, like HTTP
      // CONNECT). Not for IP literals: clients that resolve locally (curl --socks5) send an
      // IP and a ClientHello naming the host.
      sniCheck: address.atyp === ATYP.DOMAIN ? { host: target.host, request: req } : undefined,
      clientPaused: io.readingPaused(),
      clientEnded: io.peerEnded(),
    });
    note.socksReply = REP.SUCCEEDED;
    void tunnel.closed.then(() => {
      const b = tunnel.bytes();
      writeAccess(ctx, note, (initial?.byteLength ?? 0) + b.up, b.down);
    });
  } catch (err) {
    if (!(err instanceof DialError)) {
      // The client left during the dial (spliceTunnel owned its events then): nothing to answer.
      ctx.log.debug("socks5 tunnel not started", { client, error: err instanceof Error ? err.message : "error" });
      io.socket.end();
      return;
    }
    ctx.log.info("socks5 upstream connect failed", { host: target.host, port: target.port, client, code: err.code });
    if (!io.aborted()) refuse(io, note, repForDialError(err.code));
  }
}

/** Answer REP `rep`, close, and write the access line. */
function refuse(io: SessionIo, note: AccessNote, rep: number): void {
  io.replyAndClose(rep);
  note.socksReply = rep;
  writeAccess(io.ctx, note, 0, 0);
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
    try {
      if (held) handler.data(io.socket, held);
      // A FIN read by the session goes to whoever owns the socket now (as the listener would).
      if (io.peerEnded() && !io.aborted()) {
        const owner = io.socket.data.handler;
        if (owner?.end) owner.end(io.socket);
        else io.socket.end();
      }
    } catch (err) {
      // REP 0x00 is already out: no SOCKS reply fits any more; drop the connection.
      io.ctx.log.error("socks5 peek hand-off failed", { client: io.client, error: err instanceof Error ? err.message : "error" });
      io.socket.terminate();
    }
  });
}
