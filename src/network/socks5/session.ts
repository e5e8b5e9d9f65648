/**
 * One SOCKS5 client connection from accept to hand-off: method negotiation (RFC 1928 §3),
 * the request (§4) and dispatch to CONNECT (connect.ts) or UDP ASSOCIATE (udp.ts); every
 * other command gets REP 0x07 (SPEC-network §5).
 *
 * Bytes may arrive one at a time; nothing is buffered beyond one frame. A handshake that has
 * not produced a complete request within `handshakeTimeoutMs` is closed. Malformed input
 * closes this connection only (after the reply RFC 1928 prescribes, when there is one).
 */
import type { Socket } from "bun";
import { WriteQueue } from "../../net/write-queue.ts";
import { concatBytes } from "../bytes.ts";
import type { ConnHandler, ConnState, NetworkContext } from "../types.ts";
import { CMD, METHOD_NO_AUTH, METHOD_NONE_ACCEPTABLE, parseGreeting, parseRequest, type SocksAddress } from "./handshake.ts";
import { methodSelection, REP, replyBytes } from "./reply.ts";
import { runConnect } from "./connect.ts";
import type { SessionIo, Socks5Options } from "./types.ts";
import { runUdpAssociate } from "./udp.ts";

/** Most client bytes held while the request is being judged and dialed (clients that send early). */
const MAX_HELD_BYTES = 256 * 1024;
/** A CONNECT client that sent this much before the reply is paused (not read) until the tunnel runs. */
const PAUSE_HELD_BYTES = 64 * 1024;

const EMPTY = new Uint8Array(0);

/**
 * Create the handshake owner of a freshly accepted `socket` (install it as
 * `socket.data.handler`). It starts the handshake timer immediately.
 */
export function createSocks5Session(ctx: NetworkContext, socket: Socket<ConnState>, opts: Socks5Options): ConnHandler {
  let phase: "greeting" | "request" | "working" | "closed" = "greeting";
  let buf: Uint8Array = EMPTY;
  let held: Uint8Array = EMPTY;
  let endAfterFlush = false;
  /** Reading stopped while the command is worked on (UDP ASSOCIATE, or a CONNECT client sending a lot early). */
  let paused = false;
  /** The client's FIN arrived while the command was worked on (CONNECT: passed on to the new owner). */
  let peerEnded = false;
  const closeHooks: Array<() => void> = [];
  const flushWaiters: Array<() => void> = [];
  const queue = new WriteQueue(socket);
  const client = socket.data.client;

  const timer = setTimeout(() => {
    if (phase !== "greeting" && phase !== "request") return;
    ctx.log.debug("socks5 handshake timed out", { client });
    phase = "closed";
    socket.end();
  }, opts.handshakeTimeoutMs);

  const endNow = () => {
    endAfterFlush = true;
    if (queue.size === 0) socket.end();
  };

  const io: SessionIo = {
    ctx,
    socket,
    client,
    opts,
    write: (bytes) => {
      queue.write(bytes);
    },
    replyAndClose(rep) {
      queue.write(replyBytes(rep));
      endNow();
    },
    takeBuffered() {
      const h = held;
      held = EMPTY;
      return h.byteLength > 0 ? h : null;
    },
    aborted: () => phase === "closed",
    onClose: (fn) => {
      if (phase === "closed") fn();
      else closeHooks.push(fn);
    },
    whenFlushed: (fn) => {
      if (queue.size === 0) fn();
      else flushWaiters.push(fn);
    },
    readingPaused: () => paused,
    peerEnded: () => peerEnded,
  };

  const dispatch = (command: number, address: SocksAddress) => {
    if (command === CMD.CONNECT) {
      void runConnect(io, address).catch((err) => {
        ctx.log.error("socks5 connect failed", { client, error: err instanceof Error ? err.message : "error" });
        if (!io.aborted()) io.replyAndClose(REP.GENERAL_FAILURE);
      });
      return;
    }
    if (command === CMD.UDP_ASSOCIATE && ctx.config().enableSocks5Udp) {
      void runUdpAssociate(io, address).catch((err) => {
        ctx.log.error("socks5 udp associate failed", { client, error: err instanceof Error ? err.message : "error" });
        if (!io.aborted()) io.replyAndClose(REP.GENERAL_FAILURE);
      });
      return;
    }
    ctx.log.info("socks5 command not supported", { client, command });
    io.replyAndClose(REP.COMMAND_NOT_SUPPORTED);
  };

  const step = () => {
    for (let guard = 0; guard < 4; guard++) {
      if (phase === "greeting") {
        const g = parseGreeting(buf);
        if (g.kind === "incomplete") return;
        if (g.kind === "error") {
          ctx.log.info("socks5 bad greeting", { client, error: g.message });
          phase = "closed";
          socket.end();
          return;
        }
        buf = buf.subarray(g.length);
        if (!g.methods.includes(METHOD_NO_AUTH)) {
          ctx.log.info("socks5 no acceptable authentication method", { client });
          queue.write(methodSelection(METHOD_NONE_ACCEPTABLE));
          phase = "working";
          endNow();
          return;
        }
        queue.write(methodSelection(METHOD_NO_AUTH));
        phase = "request";
        continue;
      }
      if (phase === "request") {
        const r = parseRequest(buf);
        if (r.kind === "incomplete") return;
        clearTimeout(timer);
        phase = "working";
        if (r.kind === "error") {
          ctx.log.info("socks5 bad request", { client, error: r.message });
          if (r.rep === 0) endNow();
          else io.replyAndClose(r.rep);
          return;
        }
        held = buf.subarray(r.length);
        buf = EMPTY;
        // Judging and dialing take a while. A CONNECT client keeps being read (what arrives is
        // held, paused past PAUSE_HELD_BYTES): a pause/resume pair costs Bun two epoll changes
        // and two event-loop turns on every fresh connection. Other commands stop reading.
        if (r.command !== CMD.CONNECT) {
          paused = true;
          socket.pause();
        }
        dispatch(r.command, r.address);
        return;
      }
      return;
    }
  };

  return {
    data(_s, chunk) {
      if (phase === "working") {
        if (endAfterFlush) return;
        if (held.byteLength + chunk.byteLength > MAX_HELD_BYTES) {
          ctx.log.debug("socks5 client sent too much before the reply", { client });
          phase = "closed";
          socket.end();
          return;
        }
        held = concatBytes([held, chunk]);
        if (!paused && held.byteLength > PAUSE_HELD_BYTES) {
          paused = true;
          socket.pause();
        }
        return;
      }
      if (phase === "closed") return;
      buf = concatBytes([buf, chunk]);
      step();
    },
    end() {
      // A FIN while the command is worked on is remembered for the next owner; before that
      // the handshake can never complete: close (what the listener does without an `end`).
      if (phase === "working") peerEnded = true;
      else socket.end();
    },
    drain() {
      if (!queue.drain()) return;
      if (endAfterFlush) {
        socket.end();
        return;
      }
      for (const fn of flushWaiters.splice(0)) fn();
    },
    close() {
      clearTimeout(timer);
      phase = "closed";
      queue.discard();
      for (const fn of closeHooks.splice(0)) fn();
      // Waiters check aborted() themselves; running them here lets their promises settle.
      for (const fn of flushWaiters.splice(0)) fn();
    },
  };
}
