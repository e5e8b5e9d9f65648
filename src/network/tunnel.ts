/**
 * The raw byte tunnel used by HTTP CONNECT and SOCKS5 CONNECT (SPEC-network §4, §5): dial one
 * of the addresses the policy checked (§3.4, never re-resolving), then splice the client and
 * upstream sockets both ways with backpressure.
 *
 * Half-close (RFC 9293 §3.6): a FIN from either side is passed on as a FIN to the other
 * (`shutdown()` once every byte before it was written) while the other direction keeps
 * flowing; the client sockets come from listeners with `allowHalfOpen`, the upstream is dialed
 * with it. A socket that has both sent and received a FIN closes.
 *
 * Backpressure: each direction has a WriteQueue; when the destination socket does not take a
 * whole chunk the source socket is paused, and resumed from the destination's `drain`. So
 * at most about one chunk per direction is ever held in memory, however slow a reader is.
 *
 * Beyond (full-mode CONNECT): with `sniCheck`, the client's first bytes are held until they
 * are known not to be TLS, or until the whole ClientHello is in; a ClientHello whose SNI names
 * another host than the CONNECT target closes the tunnel and is recorded as `sni_mismatch`.
 */
import type { Socket, SocketHandler } from "bun";
import { WriteQueue } from "../net/write-queue.ts";
import { concatBytes } from "./bytes.ts";
import { parseClientHello } from "./tls-sni.ts";
import type { ConnHandler, ConnState, NetworkContext, PolicyRequest } from "./types.ts";

/** Options of {@link spliceTunnel}. */
export interface TunnelOptions {
  /**
   * Called once the upstream connection is up, before any byte moves; the bytes it returns
   * are written to the client first (`HTTP/1.1 200 Connection established`, a SOCKS5 reply
   * carrying `upstream.localAddress`/`localPort`).
   */
  onConnected?: (upstream: Socket<UpstreamState>) => Uint8Array | null;
  /**
   * Compare the SNI of a leading ClientHello with `host` (the normalised CONNECT target).
   * On mismatch (or a malformed / oversized ClientHello) the tunnel closes and
   * `ctx.recordBlock(request, "sni_mismatch")` is called.
   */
  sniCheck?: { host: string; request: PolicyRequest };
  /** The previous owner paused reading the client: the tunnel resumes it once the upstream is up. */
  clientPaused?: boolean;
  /** The previous owner already read the client's FIN: half-close the upstream once started. */
  clientEnded?: boolean;
}

/** A running tunnel (for callers that want to stop it, and for tests). */
export interface TunnelHandle {
  readonly upstream: Socket<UpstreamState>;
  /** Bytes waiting to be written to the client / to the upstream. */
  queued(): { toClient: number; toUpstream: number };
  /** Whether reading from the client / the upstream is paused by backpressure. */
  paused(): { client: boolean; upstream: boolean };
  /** Call `fn` whenever reading from either side is paused or resumed (observability, tests). */
  watch(fn: (paused: { client: boolean; upstream: boolean }) => void): void;
  /** Resolves once both sides are closed. */
  readonly closed: Promise<void>;
  /** Close both sides now. */
  close(): void;
  /** Bytes carried so far: client → upstream (`up`) and upstream → client (`down`). */
  bytes(): { up: number; down: number };
}

/** `data` of the upstream socket. */
export interface UpstreamState {
  tunnel: Tunnel;
}

const SNI_HOLD_LIMIT = 20 * 1024;

/**
 * Dial `upstreamAddresses` on `port` through `ctx.dialer`, then splice it with `client`.
 * `initial`: client bytes already read (sent upstream first). Takes over
 * `client.data.handler` at once: client bytes arriving during the dial are held, and reading
 * pauses only once they pass 20 KiB (a pause/resume pair costs Bun two epoll changes and two
 * event-loop turns, on every fresh connection, for clients that send nothing before the reply).
 * @returns the tunnel once the upstream is connected and `onConnected`'s bytes are written.
 * @throws DialError (from the dialer) when no address accepts; the client's previous
 *   handler is then restored (bytes held meanwhile are dropped): the caller answers (502,
 *   SOCKS REP) and closes it. Throws `Error("client closed")` if the client left during the dial.
 */
export async function spliceTunnel(
  client: Socket<ConnState>,
  upstreamAddresses: string[],
  port: number,
  ctx: NetworkContext,
  initial?: Uint8Array,
  opts: TunnelOptions = {},
): Promise<TunnelHandle> {
  const tunnel = new Tunnel(client, ctx, opts, initial);
  const previous = client.data.handler;
  client.data.handler = tunnel.clientHandler;
  let upstream: Socket<UpstreamState>;
  try {
    upstream = await ctx.dialer.connect(upstreamAddresses, port, UPSTREAM_HANDLERS, { tunnel }, { allowHalfOpen: true });
  } catch (err) {
    if (client.data.handler === tunnel.clientHandler) client.data.handler = previous;
    throw err;
  }
  if (tunnel.clientClosed) {
    upstream.end();
    throw new Error("client closed");
  }
  tunnel.start(upstream);
  return tunnel;
}

/** Handlers of every tunnel's upstream socket; the per-tunnel state is `socket.data.tunnel`. */
const UPSTREAM_HANDLERS: SocketHandler<UpstreamState> = {
  // No `open`: the dialer sets TCP_NODELAY on every socket it hands out.
  data(s, chunk) {
    s.data.tunnel.upstreamData(s, chunk);
  },
  drain(s) {
    s.data.tunnel.upstreamDrain(s);
  },
  end(s) {
    s.data.tunnel.upstreamEnd(s);
  },
  close(s) {
    s.data.tunnel.upstreamClose(s);
  },
  error(s) {
    s.data.tunnel.upstreamClose(s);
  },
};

/** One tunnel's state. Exported for the type of `UpstreamState` only. */
export class Tunnel implements TunnelHandle {
  upstream!: Socket<UpstreamState>;
  /** Owner of the client socket's events while the tunnel runs. */
  readonly clientHandler: ConnHandler = {
    data: (_s, chunk) => this.clientData(chunk),
    drain: () => this.clientDrain(),
    close: () => this.clientClose(),
    end: () => this.clientEnd(),
  };
  clientClosed = false;
  private upstreamClosed = false;
  private started = false;
  /** Client bytes held before start / while the SNI check waits. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private sniPending: boolean;
  private toUpstream!: WriteQueue;
  private toClient: WriteQueue;
  /** Whether reading from each side is paused. */
  private readonly pausedNow: { client: boolean; upstream: boolean };
  private endUpstreamAfterFlush = false;
  /** The client sent FIN: half-close the upstream once every client byte reached it. */
  private clientEnded = false;
  private shutdownUpstreamAfterFlush = false;
  private endClientAfterFlush = false;
  /** The upstream sent FIN: half-close the client once every upstream byte reached it. */
  private upstreamEnded = false;
  private shutdownClientAfterFlush = false;
  private watcher: ((paused: { client: boolean; upstream: boolean }) => void) | null = null;
  private readonly done = Promise.withResolvers<void>();
  readonly closed = this.done.promise;
  private bytesUp = 0;
  private bytesDown = 0;

  bytes(): { up: number; down: number } {
    return { up: this.bytesUp, down: this.bytesDown };
  }

  constructor(
    private readonly client: Socket<ConnState>,
    private readonly ctx: NetworkContext,
    private readonly opts: TunnelOptions,
    initial?: Uint8Array,
  ) {
    this.sniPending = !!opts.sniCheck;
    this.pausedNow = { client: opts.clientPaused ?? false, upstream: false };
    this.clientEnded = opts.clientEnded ?? false;
    if (initial && initial.byteLength > 0) this.hold(initial);
    this.toClient = new WriteQueue(
      client,
      () => this.flow("upstream", false),
      () => this.flow("upstream", true),
    );
  }

  /** Upstream connected: write the reply, flush held bytes, start reading the client. */
  start(upstream: Socket<UpstreamState>): void {
    if (this.started) return;
    this.started = true;
    this.upstream = upstream;
    this.toUpstream = new WriteQueue(
      upstream,
      () => this.flow("client", false),
      () => this.flow("client", true),
    );
    this.ctx.metrics.tunnelOpened();
    const reply = this.opts.onConnected?.(upstream);
    if (reply) this.toClient.write(reply);
    this.release();
    if (this.clientEnded) this.clientEnd(true);
    if (!this.clientClosed && this.toUpstream.size === 0) this.flow("client", true);
  }

  queued() {
    return { toClient: this.toClient.size, toUpstream: this.started ? this.toUpstream.size : this.heldBytes };
  }

  paused() {
    return { ...this.pausedNow };
  }

  watch(fn: (paused: { client: boolean; upstream: boolean }) => void): void {
    this.watcher = fn;
  }

  close(): void {
    if (!this.clientClosed) this.client.end();
    if (this.started && !this.upstreamClosed) this.upstream.end();
  }

  private clientData(chunk: Uint8Array): void {
    this.ctx.metrics.bytes(chunk.byteLength, 0);
    this.bytesUp += chunk.byteLength;
    if (!this.started || this.sniPending) {
      this.hold(chunk);
      if (this.started) this.release();
      return;
    }
    this.toUpstream.write(chunk);
  }

  /** Client FIN (listeners with allowHalfOpen): pass it on as a half-close of the upstream. */
  private clientEnd(again = false): void {
    if (this.clientEnded && !again) return;
    this.clientEnded = true;
    if (!this.started || this.clientClosed) return;
    if (this.sniPending) {
      this.close(); // an incomplete ClientHello can never be checked now: fail closed
      return;
    }
    if (this.toUpstream.size === 0) this.upstream.shutdown();
    else this.shutdownUpstreamAfterFlush = true;
  }

  private clientDrain(): void {
    if (!this.toClient.drain()) return;
    if (this.endClientAfterFlush) this.client.end();
    else if (this.shutdownClientAfterFlush) {
      this.shutdownClientAfterFlush = false;
      this.client.shutdown();
    }
  }

  private clientClose(): void {
    if (this.clientClosed) return;
    this.clientClosed = true;
    this.toClient.discard();
    if (!this.started) return;
    if (this.toUpstream.size === 0 || this.upstreamClosed) this.upstream.end();
    else this.endUpstreamAfterFlush = true;
    this.maybeDone();
  }

  upstreamData(s: Socket<UpstreamState>, chunk: Uint8Array): void {
    if (!this.started) this.start(s);
    if (s !== this.upstream) return;
    this.ctx.metrics.bytes(0, chunk.byteLength);
    this.bytesDown += chunk.byteLength;
    this.toClient.write(chunk);
  }

  upstreamDrain(s: Socket<UpstreamState>): void {
    if (s !== this.upstream || !this.started) return;
    if (this.toUpstream.drain()) {
      if (this.endUpstreamAfterFlush) this.upstream.end();
      else if (this.shutdownUpstreamAfterFlush) {
        this.shutdownUpstreamAfterFlush = false;
        this.upstream.shutdown();
      }
    }
  }

  /**
   * Upstream FIN (dialed with allowHalfOpen): pass it on as a half-close of the client once
   * every upstream byte reached it; client bytes keep flowing upstream.
   */
  upstreamEnd(s: Socket<UpstreamState>): void {
    if (!this.started) this.start(s);
    if (s !== this.upstream || this.upstreamClosed || this.upstreamEnded) return;
    this.upstreamEnded = true;
    if (this.clientClosed) return;
    if (this.toClient.size === 0) this.client.shutdown();
    else this.shutdownClientAfterFlush = true;
  }

  upstreamClose(s: Socket<UpstreamState>): void {
    if (!this.started || s !== this.upstream || this.upstreamClosed) return;
    this.upstreamClosed = true;
    this.toUpstream.discard();
    if (this.toClient.size === 0 || this.clientClosed) this.client.end();
    else this.endClientAfterFlush = true;
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.clientClosed && this.upstreamClosed) {
      this.ctx.metrics.tunnelClosed();
      this.done.resolve();
    }
  }

  private hold(chunk: Uint8Array): void {
    this.held.push(chunk);
    this.heldBytes += chunk.byteLength;
    // Bounds what a client sends before the upstream is up; once started, a pending SNI
    // check bounds it instead (release() rejects a ClientHello over the limit).
    if (this.heldBytes > SNI_HOLD_LIMIT && !(this.started && this.sniPending)) this.flow("client", false);
  }

  /** After start: run the SNI check if pending, then send held bytes upstream. */
  private release(): void {
    if (this.sniPending) {
      const buf = this.held.length === 1 ? this.held[0]! : concatBytes(this.held);
      this.held = [buf];
      const check = this.opts.sniCheck!;
      const hello = parseClientHello(buf, SNI_HOLD_LIMIT);
      if (hello.kind === "incomplete") return;
      if (
        hello.kind === "invalid" ||
        (hello.kind === "client_hello" && hello.sni !== null && hello.sni !== check.host)
      ) {
        const sni = hello.kind === "client_hello" ? hello.sni : null;
        this.ctx.log.warn("tunnel closed: TLS SNI does not match the CONNECT target", {
          host: check.host,
          sni: sni ?? undefined,
          problem: hello.kind === "invalid" ? hello.message : undefined,
        });
        this.ctx.recordBlock(check.request, "sni_mismatch");
        this.held = [];
        this.heldBytes = 0;
        this.sniPending = false;
        this.close();
        return;
      }
      this.sniPending = false;
    }
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const c of held) this.toUpstream.write(c);
  }

  /** Resume (`on`) or pause reading from one side; paused sides of closed sockets stay put. */
  private flow(side: "client" | "upstream", on: boolean): void {
    if (this.pausedNow[side] === !on) return;
    const socket = side === "client" ? this.client : this.upstream;
    if (on) {
      if (side === "client" ? this.clientClosed : this.upstreamClosed) return;
      socket.resume();
    } else {
      socket.pause();
    }
    this.pausedNow[side] = !on;
    this.watcher?.(this.paused());
  }
}
