/**
 * The SOCKS5 proxy listener (RFC 1928, SPEC-network §5) on `Bun.listen`. Every socket event
 * is delegated to `socket.data.handler`, so the connection can change owner: the handshake
 * (session.ts) → a tunnel (tunnel.ts), the HTTP proxy handler or the MITM (limited-mode
 * peeking, peek.ts), or a UDP association's control connection (udp.ts).
 */
import type { Socket, TCPSocketListener } from "bun";
import type { ConnState, NetworkContext } from "../types.ts";
import { blockResponseBytes } from "../http/block-response.ts";
import { createHttpConnectionHandler } from "../http/connection.ts";
import { drainSignal, type StopOptions } from "../http/listener.ts";
import type { PeekDeps } from "./connect.ts";
import { createSocks5Session, type Socks5Options } from "./session.ts";

/** Production defaults (SPEC-network §5: "a handshake that stalls past a few seconds is closed"). */
export const SOCKS5_DEFAULTS = {
  handshakeTimeoutMs: 5_000,
  peekTimeoutMs: 5_000,
  peekMaxBytes: 8 * 1024,
} as const;

/** The real hand-offs: the HTTP listener's connection handler and block response bytes. */
export const DEFAULT_PEEK_DEPS: PeekDeps = {
  // Requests are judged (and recorded) as `socks5_tcp`, the transport the client used.
  httpHandler: (ctx, target) => createHttpConnectionHandler(ctx, { protocol: "socks5_tcp", fixedTarget: target }),
  blockResponse: (ctx, reason, req, host) =>
    blockResponseBytes(reason, {
      host,
      port: req.port,
      method: req.method,
      protocol: "socks5",
      hint: ctx.explain(reason, req, host),
      json: true,
      close: true,
    }),
};

/** A running listener. */
export interface Socks5ListenerHandle {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /**
   * Stop accepting at once; connections already accepted (tunnels, UDP associations
   * included) may finish for up to `graceMs` (default 0), then the rest are closed.
   * Resolves once none is left or the grace ended (SPEC-network §1). Idempotent.
   */
  stop(opts?: StopOptions): Promise<void>;
}

/**
 * Listen for SOCKS5 clients on `addr` (already parsed and clamped by the caller).
 * `opts` overrides timeouts and hand-offs (tests).
 * @throws the bind error of `Bun.listen` (address in use, permission)
 */
export function startSocks5Listener(
  ctx: NetworkContext,
  addr: { host: string; port: number },
  opts: Partial<Socks5Options> = {},
): Socks5ListenerHandle {
  const options: Socks5Options = {
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? SOCKS5_DEFAULTS.handshakeTimeoutMs,
    peekTimeoutMs: opts.peekTimeoutMs ?? SOCKS5_DEFAULTS.peekTimeoutMs,
    peekMaxBytes: opts.peekMaxBytes ?? SOCKS5_DEFAULTS.peekMaxBytes,
    deps: opts.deps ?? DEFAULT_PEEK_DEPS,
  };
  const open = new Set<Socket<ConnState>>();
  const drained = drainSignal(open);
  let stopping: Promise<void> | null = null;
  // A bug in a connection owner must cost that connection only, never the listener.
  const fault = (socket: Socket<ConnState>, err: unknown) => {
    ctx.log.error("socks5 connection handler failed", {
      client: socket.data.client,
      error: err instanceof Error ? err.message : String(err),
    });
    socket.data.handler = null;
    socket.terminate();
  };
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: addr.host,
    port: addr.port,
    // Half-close: a tunnel client may send its request, FIN, and still read the answer; the
    // default would close both directions. The current owner gets `end` (a tunnel passes the
    // FIN on upstream); owners without `end` (handshake, peeking) get the old full close.
    allowHalfOpen: true,
    socket: {
      open(socket) {
        socket.data = { handler: null, client: `${socket.remoteAddress}:${socket.remotePort}` };
        socket.setNoDelay(true);
        open.add(socket);
        socket.data.handler = createSocks5Session(ctx, socket, options);
      },
      data(socket, chunk) {
        try {
          socket.data.handler?.data(socket, chunk);
        } catch (err) {
          fault(socket, err);
        }
      },
      drain(socket) {
        try {
          socket.data.handler?.drain(socket);
        } catch (err) {
          fault(socket, err);
        }
      },
      end(socket) {
        try {
          const h = socket.data.handler;
          if (h?.end) h.end(socket);
          else socket.end();
        } catch (err) {
          fault(socket, err);
        }
      },
      close(socket) {
        drained.remove(socket);
        socket.data.handler?.close(socket);
      },
      error(socket, err) {
        ctx.log.debug("socks5 client socket error", { client: socket.data?.client, error: err.message });
      },
    },
  });
  return {
    port: listener.port,
    stop(stopOpts: StopOptions = {}) {
      return (stopping ??= (async () => {
        // stop(false): close the listening socket only; accepted sockets keep running.
        listener.stop(false);
        await drained.wait(stopOpts.graceMs ?? 0);
        for (const s of open) s.end();
        open.clear();
      })());
    },
  };
}
