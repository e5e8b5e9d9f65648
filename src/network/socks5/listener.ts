/**
 * The SOCKS5 proxy listener (RFC 1928, SPEC-network §5) on `Bun.listen` (listen-delegate.ts).
 * Every socket event is delegated to `socket.data.handler`, so the connection can change
 * owner: the handshake (session.ts) → a tunnel (tunnel.ts), the HTTP proxy handler or the MITM (limited-mode
 * peeking, peek.ts), or a UDP association's control connection (udp.ts).
 */
import type { ConnectionCap } from "../../net/connection-cap.ts";
import type { NetworkContext } from "../types.ts";
import { listenDelegating, type DelegatingListener } from "../listen-delegate.ts";
import { createSocks5Session } from "./session.ts";
import type { Socks5Options } from "./types.ts";

/** Production defaults (SPEC-network §5: "a handshake that stalls past a few seconds is closed"). */
export const SOCKS5_DEFAULTS = {
  handshakeTimeoutMs: 5_000,
  peekTimeoutMs: 5_000,
  peekMaxBytes: 8 * 1024,
} as const;

/**
 * A running listener. `stop()` stops accepting at once; connections already accepted
 * (tunnels, UDP associations included) may finish for up to `graceMs` (default 0), then the
 * rest are closed. Resolves once none is left or the grace ended (SPEC-network §1). Idempotent.
 */
export type Socks5ListenerHandle = DelegatingListener;

/**
 * Listen for SOCKS5 clients on `addr` (already parsed and clamped by the caller).
 * `opts` overrides the timeouts (tests).
 * @throws the bind error of `Bun.listen` (address in use, permission)
 */
export function startSocks5Listener(
  ctx: NetworkContext,
  addr: { host: string; port: number },
  opts: Partial<Socks5Options> & { cap?: ConnectionCap } = {},
): Socks5ListenerHandle {
  const options: Socks5Options = {
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? SOCKS5_DEFAULTS.handshakeTimeoutMs,
    peekTimeoutMs: opts.peekTimeoutMs ?? SOCKS5_DEFAULTS.peekTimeoutMs,
    peekMaxBytes: opts.peekMaxBytes ?? SOCKS5_DEFAULTS.peekMaxBytes,
  };
  // Half-close (listen-delegate.ts): a tunnel passes the client's FIN on upstream; the
  // handshake and peeking owners have no `end` and get the full close.
  return listenDelegating({
    addr,
    log: ctx.log,
    name: "socks5",
    accept: (socket) => createSocks5Session(ctx, socket, options),
    cap: opts.cap,
  });
}
