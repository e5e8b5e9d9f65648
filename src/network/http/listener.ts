/**
 * The HTTP proxy listener (SPEC-network §4) on `Bun.listen` with our own head parser:
 * `Bun.serve` cannot carry CONNECT and rewrites absolute-form targets. Accepting, delegating
 * every socket event to `socket.data.handler` (so a connection can change owner: HTTP →
 * tunnel, HTTP → MITM) and stopping are in listen-delegate.ts; the per-connection logic is in
 * connection.ts.
 */
import type { NetworkContext } from "../types.ts";
import { listenDelegating, type DelegatingListener } from "../listen-delegate.ts";
import type { HttpConnectionOptions } from "./conn-io.ts";
import { createHttpConnectionHandler } from "./connection.ts";
import { createUpstreamClients, type UpstreamClients } from "./upstream-clients.ts";
import type { ConnectionCap } from "../../net/connection-cap.ts";


/**
 * A running HTTP proxy listener. `stop()` stops accepting at once; connections already
 * accepted (tunnels, MITM included) may finish for up to `graceMs` (default 0); then the rest
 * and the pooled upstream connections are closed (SPEC-network §1). Calling it again returns
 * the same promise.
 */
export type HttpProxyListener = DelegatingListener;

/** Options: the shared connection cap; for tests: upstream clients, the tunnel hook, the head and idle bounds. */
export interface HttpListenerOptions {
  cap?: ConnectionCap;
  clients?: UpstreamClients;
  onTunnel?: HttpConnectionOptions["onTunnel"];
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * Listen on `addr` (already parsed and clamped by the caller).
 * @throws the bind error of `Bun.listen` (address in use, permission)
 */
export function startHttpProxyListener(
  ctx: NetworkContext,
  addr: { host: string; port: number },
  opts: HttpListenerOptions = {},
): HttpProxyListener {
  const clients = opts.clients ?? createUpstreamClients();
  const connOpts: HttpConnectionOptions = {
    clients,
    onTunnel: opts.onTunnel,
    headTimeoutMs: opts.headTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
  };
  return listenDelegating({
    addr,
    log: ctx.log,
    name: "http proxy",
    accept(s) {
      const handler = createHttpConnectionHandler(ctx, connOpts);
      handler.attach(s);
      return handler;
    },
    onStopped: () => clients.close(),
    cap: opts.cap,
  });
}
