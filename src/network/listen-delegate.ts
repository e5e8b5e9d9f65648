/**
 * The accept / delegate / stop part shared by the HTTP and SOCKS5 proxy listeners
 * (SPEC-network §1, §4, §5): a `Bun.listen<ConnState>` whose every socket event goes to
 * `socket.data.handler` (the connection's current owner: a parser, a tunnel, the MITM), so a
 * connection can change owner; a fault in an owner costs that connection only; `stop()`
 * stops accepting at once and gives open connections a grace period.
 */
import type { Socket, TCPSocketListener } from "bun";
import type { Logger } from "../log.ts";
import type { ConnHandler, ConnState } from "./types.ts";
import type { ConnectionCap } from "../net/connection-cap.ts";

/** Options of a listener's `stop()`. */
export interface StopOptions {
  /** How long (ms) open connections may still run before they are closed; default 0. */
  graceMs?: number;
}

/** A running delegating listener. */
export interface DelegatingListener {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /**
   * Stop accepting at once; connections already accepted may finish for up to `graceMs`
   * (default 0), then the rest are ended and `onStopped` runs. Resolves once none is left or
   * the grace ended. Calling it again returns the same promise.
   */
  stop(opts?: StopOptions): Promise<void>;
}

/** What {@link listenDelegating} needs from its listener. */
export interface DelegatingListenerOptions {
  /** Already parsed and clamped by the caller (listen-addr.ts). */
  addr: { host: string; port: number };
  log: Logger;
  /** Log prefix: `http proxy`, `socks5`. */
  name: string;
  /** The first owner of a newly accepted socket (`socket.data.client` is already set). */
  accept(socket: Socket<ConnState>): ConnHandler;
  /** Runs once after `stop()` ended the remaining connections (pooled upstreams). */
  onStopped?(): void;
  /**
   * `max_connections` shared by the proxy listeners (SPEC-network §12): a connection past it is
   * closed at once, before any owner is made for it.
   */
  cap?: ConnectionCap;
}

/**
 * Listen on `opts.addr` with `allowHalfOpen` (a client may send its request or tunnel bytes,
 * FIN, and still read the answer; the current owner gets `end`, an owner without `end` gets
 * the old full close) and TCP_NODELAY on every accepted socket.
 * @throws the bind error of `Bun.listen` (address in use, permission)
 */
export function listenDelegating(opts: DelegatingListenerOptions): DelegatingListener {
  const { log, name } = opts;
  const open = new Set<Socket<ConnState>>();
  const drained = drainSignal(open);
  let stopping: Promise<void> | null = null;
  // A bug in a connection owner must cost that connection only, never the listener.
  const fault = (s: Socket<ConnState>, err: unknown) => {
    log.error(`${name} connection handler failed`, { client: s.data.client, error: errorText(err) });
    const broken = s.data.handler;
    // Ignore further bytes, but still let the owner clean up (a tunnel closes its upstream).
    s.data.handler = { data() {}, drain() {}, close: (x) => broken?.close(x) };
    s.end();
  };
  const admitted = new WeakSet<Socket<ConnState>>();
  /** Release the socket's slot and entry once (from `close`, or from an owner: ConnState.gone). */
  const gone = (s: Socket<ConnState>) => {
    drained.remove(s);
    if (admitted.delete(s)) opts.cap?.release();
  };
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: opts.addr.host,
    port: opts.addr.port,
    data: { handler: null, client: "" },
    allowHalfOpen: true,
    socket: {
      open(s) {
        // The listener's `data` object is shared by default: give each socket its own.
        s.data = { handler: null, client: `${s.remoteAddress}:${s.remotePort}`, gone: () => gone(s) };
        if (opts.cap) {
          if (!opts.cap.admit()) {
            s.terminate();
            return;
          }
          admitted.add(s);
        }
        s.setNoDelay(true);
        open.add(s);
        try {
          s.data.handler = opts.accept(s);
        } catch (err) {
          fault(s, err);
        }
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
        gone(s);
        try {
          s.data.handler?.close(s);
        } catch (err) {
          log.error(`${name} close handler failed`, { client: s.data.client, error: errorText(err) });
        }
      },
      error(s, err) {
        log.debug(`${name} socket error`, { client: s.data.client, error: err.message });
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
        opts.onStopped?.();
      })());
    },
  };
}

/**
 * Tracks a listener's open sockets: `remove` on close, `wait(ms)` resolves once none is left
 * or after `ms` (whichever comes first).
 */
function drainSignal<S>(open: Set<S>): { remove(s: S): void; wait(ms: number): Promise<void> } {
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
