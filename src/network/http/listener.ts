/**
 * The HTTP proxy listener (SPEC-network §4) on `Bun.listen` with our own head parser:
 * `Bun.serve` cannot carry CONNECT and rewrites absolute-form targets. Every socket event is
 * delegated to `socket.data.handler`, so a connection can change owner (HTTP → tunnel,
 * HTTP → MITM). The per-connection logic is in connection.ts.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { ConnState, NetworkContext } from "../types.ts";
import { createHttpConnectionHandler, type HttpConnectionOptions } from "./connection.ts";
import { createUpstreamClients, type UpstreamClients } from "./upstream-clients.ts";

export { createHttpConnectionHandler, type HttpConnectionHandler, type HttpConnectionOptions } from "./connection.ts";

/** A running HTTP proxy listener. */
export interface HttpProxyListener {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /**
   * Stop accepting at once; connections already accepted (tunnels, MITM included) may finish
   * for up to `graceMs` (default 0); then close the rest and the pooled upstream connections.
   * Resolves once the open connections are gone or the grace ended (SPEC-network §1).
   * Calling it again returns the same promise.
   */
  stop(opts?: StopOptions): Promise<void>;
}

/** Options of a listener's `stop()`. */
export interface StopOptions {
  /** How long (ms) open connections may still run before they are closed; default 0. */
  graceMs?: number;
}

/** Options (tests): upstream clients, the tunnel hook, the head timeout. */
export interface HttpListenerOptions {
  clients?: UpstreamClients;
  onTunnel?: HttpConnectionOptions["onTunnel"];
  headTimeoutMs?: number;
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
  const open = new Set<Socket<ConnState>>();
  const drained = drainSignal(open);
  let stopping: Promise<void> | null = null;
  // A bug in a connection owner must cost that connection only, never the listener.
  const fault = (s: Socket<ConnState>, err: unknown) => {
    ctx.log.error("http proxy connection handler failed", { client: s.data.client, error: errorText(err) });
    const broken = s.data.handler;
    // Ignore further bytes, but still let the owner clean up (a tunnel closes its upstream).
    s.data.handler = { data() {}, drain() {}, close: (x) => broken?.close(x) };
    s.end();
  };
  const connOpts: HttpConnectionOptions = { clients, onTunnel: opts.onTunnel, headTimeoutMs: opts.headTimeoutMs };
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: addr.host,
    port: addr.port,
    data: { handler: null, client: "" },
    // Half-close: a client may send its request (or tunnel bytes) and then FIN while still
    // reading the answer; the default would close both directions and lose that answer.
    allowHalfOpen: true,
    socket: {
      open(s) {
        // The listener's `data` object is shared by default: give each socket its own.
        const handler = createHttpConnectionHandler(ctx, connOpts);
        s.data = { handler, client: `${s.remoteAddress}:${s.remotePort}` };
        s.setNoDelay(true);
        handler.attach(s);
        open.add(s);
      },
      data(s, chunk) {
        try {
          s.data.handler?.data(s, chunk);
        } catch (err) {
          fault(s, err);
        }
      },
      drain(s) {
        try {
          s.data.handler?.drain(s);
        } catch (err) {
          fault(s, err);
        }
      },
      end(s) {
        try {
          const h = s.data.handler;
          if (h?.end) h.end(s);
          else s.end();
        } catch (err) {
          fault(s, err);
        }
      },
      close(s) {
        drained.remove(s);
        try {
          s.data.handler?.close(s);
        } catch (err) {
          ctx.log.error("http proxy close handler failed", { client: s.data.client, error: errorText(err) });
        }
      },
      error(s, err) {
        ctx.log.debug("http proxy socket error", { client: s.data.client, error: err.message });
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
        clients.close();
      })());
    },
  };
}

/**
 * Tracks a listener's open sockets: `remove` on close, `wait(ms)` resolves once none is left
 * or after `ms` (whichever comes first). Shared with the SOCKS5 listener.
 */
export function drainSignal<S>(open: Set<S>): { remove(s: S): void; wait(ms: number): Promise<void> } {
  let empty: PromiseWithResolvers<void> | null = null;
  return {
    remove(s) {
      open.delete(s);
      if (open.size === 0) empty?.resolve();
    },
    async wait(ms) {
      if (open.size === 0 || ms <= 0) return;
      empty = Promise.withResolvers<void>();
      const timer = setTimeout(() => empty?.resolve(), ms);
      await empty.promise;
      clearTimeout(timer);
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
