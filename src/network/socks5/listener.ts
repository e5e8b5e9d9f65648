/**
 * The SOCKS5 proxy listener (RFC 1928, SPEC-network §5) on `Bun.listen`. Every socket event
 * is delegated to `socket.data.handler`, so the connection can change owner: the handshake
 * (session.ts) → a tunnel (tunnel.ts), the HTTP proxy handler or the MITM (limited-mode
 * peeking, peek.ts), or a UDP association's control connection (udp.ts).
 */
import type { Socket, TCPSocketListener } from "bun";
import type { ConnState, NetworkContext } from "../types.ts";
import { blockHint, blockResponseBytes } from "../http/block-response.ts";
import { createHttpConnectionHandler } from "../http/connection.ts";
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
  blockResponse: (reason, info) =>
    blockResponseBytes(reason, {
      host: info.host,
      port: info.port,
      method: info.method,
      protocol: "socks5",
      hint: blockHint(reason, info.host, info.method),
      json: true,
      close: true,
    }),
};

/** A running listener. */
export interface Socks5ListenerHandle {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Stop accepting and close every connection this listener accepted (tunnels included). */
  stop(): Promise<void>;
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
      close(socket) {
        open.delete(socket);
        socket.data.handler?.close(socket);
      },
      error(socket, err) {
        ctx.log.debug("socks5 client socket error", { client: socket.data?.client, error: err.message });
      },
    },
  });
  return {
    port: listener.port,
    async stop() {
      listener.stop(true);
      for (const s of open) s.end();
      open.clear();
    },
  };
}
