/**
 * One client connection to an origin (or through a proxy): dialing (TCP, TLS, or a proxy
 * CONNECT tunnel upgraded to TLS), certificate checks, and the socket events, which it
 * forwards to whichever exchange currently owns it (see exchange.ts).
 *
 * Certificates: Bun verifies the chain and (with a server name) the host; the handshake
 * handler additionally runs node:tls `checkServerIdentity` against the expected name, which
 * covers IP literals (no SNI, IP SAN) and tunnels. No byte is written before the handshake
 * succeeded, so the secret header never reaches an unverified peer.
 */
import type { Socket, SocketHandler } from "bun";
import { WriteQueue } from "../net/write-queue.ts";
import type { AbortLike } from "./types.ts";
import { UpstreamError } from "./upstream-error.ts";
import { HeadAccumulator, parseResponseHead } from "./client-response-head.ts";
import { nodeTls } from "./tls-trust.ts";

/** Receiver of a connection's socket events (the active exchange, or the pool while idle). */
export interface ConnectionSink {
  onData(chunk: Uint8Array): void;
  /** The write queue emptied (resume a streaming request body). */
  onDrained(): void;
  onClose(error: Error | undefined): void;
}

/** Where and how to dial. */
export interface DialSpec {
  /** Addresses or names to try in order (connectTo, or the URL host). */
  hosts: string[];
  port: number;
  /** TLS to the origin, or null for plain TCP. */
  tls: { ca: string[]; servername: string } | null;
  /** Dial this proxy first and CONNECT to `connectAuthority` through it (https via proxy). */
  tunnel: { host: string; port: number; authority: string; authorization: string | null } | null;
  signal?: AbortSignal | AbortLike;
}

const IS_IP = (h: string) => /^[0-9.]+$/.test(h) || h.includes(":");

/** Live connection; `sink` receives events; `queue` writes with backpressure. */
export class Http1Connection {
  socket: Socket<Http1Connection> | null = null;
  queue: WriteQueue | null = null;
  sink: ConnectionSink | null = null;
  closed = false;
  /** Requests started on this connection (>0 means it came from the pool). */
  uses = 0;
  /** At least one byte arrived for the current exchange (no retry after that). */
  receivedAny = false;
  private paused = false;
  /** Test-only observation of flow control (ClientTestHooks). */
  onFlow: ((paused: boolean) => void) | null = null;
  private readonly ready = Promise.withResolvers<void>();
  private expectHandshake = false;
  private servername = "";

  constructor(readonly key: string) {
    // A failed dial rejects `ready`; nobody may be awaiting it yet.
    this.ready.promise.catch(() => {});
  }

  attach(socket: Socket<Http1Connection>): void {
    this.socket = socket;
    // Aborted while Bun.connect was still pending: the socket arrives after destroy().
    if (this.closed) socket.terminate();
    this.queue = new WriteQueue(socket, () => {}, () => this.sink?.onDrained());
  }

  /** Stop reading from the socket (response consumer is behind). */
  pause(): void {
    if (!this.paused && !this.closed) {
      this.paused = true;
      this.socket?.pause();
      this.onFlow?.(true);
    }
  }

  resume(): void {
    if (this.paused && !this.closed) {
      this.paused = false;
      this.socket?.resume();
      this.onFlow?.(false);
    }
  }

  /** Close abruptly (abort, protocol error): the peer sees the connection go away. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue?.discard();
    this.socket?.terminate();
  }

  /** Close gracefully (idle eviction, client close). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue?.discard();
    this.socket?.end();
  }

  /** @internal socket events */
  handleOpen(): void {
    if (!this.expectHandshake) this.ready.resolve();
  }

  handleHandshake(socket: Socket<Http1Connection>, ok: boolean, err: Error | null): void {
    // `ok` alone is not enough: with an authorizationError the chain did not verify.
    if (ok && !err) {
      const peer = socket.getPeerCertificate();
      const idErr = peer ? nodeTls().checkServerIdentity(this.servername, peer) : new Error("no peer certificate");
      if (!idErr) {
        this.ready.resolve();
        return;
      }
      err = idErr;
    }
    this.ready.reject(new UpstreamError("tls", `TLS certificate verification failed: ${err?.message ?? "unknown error"}`));
    this.destroy();
  }

  handleData(chunk: Uint8Array): void {
    if (this.closed) return;
    this.receivedAny = true;
    if (this.sink) this.sink.onData(chunk);
    else this.destroy(); // bytes nobody asked for
  }

  handleDrain(): void {
    this.queue?.drain();
  }

  handleClose(error: Error | undefined): void {
    this.closed = true;
    this.queue?.discard();
    this.ready.reject(new UpstreamError(this.expectHandshake ? "tls" : "closed", "connection closed during setup"));
    this.sink?.onClose(error);
  }

  /** @internal */
  prepareTls(servername: string): void {
    this.expectHandshake = true;
    this.servername = servername;
  }

  /** Resolves once the connection is usable (TCP open, or TLS verified). */
  whenReady(): Promise<void> {
    return this.ready.promise;
  }
}

const HANDLERS: SocketHandler<Http1Connection, "uint8array"> = {
  binaryType: "uint8array",
  open: (s) => s.data.handleOpen(),
  handshake: (s, ok, err) => s.data.handleHandshake(s, ok, err),
  data: (s, d) => s.data.handleData(d),
  drain: (s) => s.data.handleDrain(),
  close: (s, err) => s.data.handleClose(err),
  // An error event is always followed by close; close reports it.
  error: () => {},
  connectError: () => {},
};

function tlsOptions(spec: NonNullable<DialSpec["tls"]>) {
  return {
    ca: spec.ca,
    rejectUnauthorized: true,
    // IP literals get no SNI (RFC 6066 §3); identity is still checked in handleHandshake.
    ...(IS_IP(spec.servername) ? {} : { serverName: spec.servername }),
  };
}

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL", "EAI_NODATA", "ENODATA", "DNSException"]);

/** Map a Bun.connect failure to an UpstreamError naming the address (never headers). */
function classifyConnectError(e: unknown, host: string, port: number): UpstreamError {
  if (e instanceof UpstreamError) return e;
  const code = (e as { code?: string })?.code ?? "";
  if (DNS_CODES.has(code) || code.startsWith("EAI_") || code.startsWith("DNS_")) {
    return new UpstreamError("dns", `DNS lookup of ${host} failed (${code})`);
  }
  const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return new UpstreamError("connect", `connect to ${where} failed${code ? ` (${code})` : ""}`);
}

async function connectOne(conn: Http1Connection, host: string, port: number, tlsSpec: DialSpec["tls"]): Promise<void> {
  if (tlsSpec) conn.prepareTls(tlsSpec.servername);
  let socket: Socket<Http1Connection>;
  try {
    socket = (await Bun.connect({
      hostname: host,
      port,
      data: conn,
      socket: HANDLERS as unknown as SocketHandler<Http1Connection>,
      ...(tlsSpec ? { tls: tlsOptions(tlsSpec) } : {}),
    })) as Socket<Http1Connection>;
  } catch (e) {
    throw classifyConnectError(e, host, port);
  }
  conn.attach(socket);
  socket.setNoDelay(true);
  await conn.whenReady();
}

/** State of the raw socket to a proxy during CONNECT; ignores ciphertext after the upgrade. */
interface TunnelState {
  acc: HeadAccumulator;
  done: PromiseWithResolvers<Socket<TunnelState>>;
  upgraded: boolean;
}

const TUNNEL_HANDLERS: SocketHandler<TunnelState, "uint8array"> = {
  binaryType: "uint8array",
  data(s, d) {
    const st = s.data;
    // After upgradeTLS the old handler still sees the ciphertext: ignore it.
    if (st.upgraded) return;
    try {
      const got = st.acc.push(d);
      if (!got) return;
      const head = parseResponseHead(got.bytes, got.end);
      if (head.status < 200 || head.status > 299) {
        throw new UpstreamError("proxy", `proxy refused CONNECT with status ${head.status}`);
      }
      if (got.end !== got.bytes.length) throw new UpstreamError("proxy", "proxy sent bytes after its CONNECT response");
      st.upgraded = true;
      st.done.resolve(s);
    } catch (e) {
      st.upgraded = true;
      const err = e instanceof UpstreamError && e.kind === "protocol" ? new UpstreamError("proxy", e.message) : e;
      st.done.reject(err);
      s.terminate();
    }
  },
  close(s) {
    if (!s.data.upgraded) s.data.done.reject(new UpstreamError("proxy", "proxy closed the connection during CONNECT"));
  },
  error: () => {},
  connectError: () => {},
};

async function connectTunnel(conn: Http1Connection, spec: DialSpec): Promise<void> {
  const t = spec.tunnel!;
  const st: TunnelState = { acc: new HeadAccumulator(), done: Promise.withResolvers(), upgraded: false };
  st.done.promise.catch(() => {});
  let raw: Socket<TunnelState>;
  try {
    raw = (await Bun.connect({
      hostname: t.host,
      port: t.port,
      data: st,
      socket: TUNNEL_HANDLERS as unknown as SocketHandler<TunnelState>,
    })) as Socket<TunnelState>;
  } catch (e) {
    const c = classifyConnectError(e, t.host, t.port);
    throw new UpstreamError(c.kind === "dns" ? "dns" : "proxy", `proxy: ${c.message}`);
  }
  raw.setNoDelay(true);
  if (spec.signal?.aborted) {
    raw.terminate();
    throw new UpstreamError("aborted", "request aborted");
  }
  const onAbort = () => raw.terminate();
  spec.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    let head = `CONNECT ${t.authority} HTTP/1.1\r\nhost: ${t.authority}\r\n`;
    if (t.authorization) head += `proxy-authorization: ${t.authorization}\r\n`;
    raw.write(head + "\r\n");
    await st.done.promise;
  } finally {
    spec.signal?.removeEventListener("abort", onAbort);
  }
  if (spec.signal?.aborted) throw new UpstreamError("aborted", "request aborted");
  const tlsSpec = spec.tls!;
  conn.prepareTls(tlsSpec.servername);
  const [, tlsSocket] = raw.upgradeTLS({
    data: conn,
    tls: tlsOptions(tlsSpec),
    socket: HANDLERS as unknown as SocketHandler<Http1Connection>,
  });
  conn.attach(tlsSocket as unknown as Socket<Http1Connection>);
  await conn.whenReady();
}

/**
 * Dial a connection as described by `spec`.
 * @throws UpstreamError kind dns/connect/tls/proxy/aborted
 */
export async function dial(key: string, spec: DialSpec): Promise<Http1Connection> {
  if (spec.signal?.aborted) throw new UpstreamError("aborted", "request aborted");
  let lastErr: UpstreamError = new UpstreamError("connect", "no address to connect to");
  if (spec.tunnel) {
    const conn = new Http1Connection(key);
    await withAbort(conn, spec.signal, () => connectTunnel(conn, spec));
    return conn;
  }
  for (const host of spec.hosts) {
    const conn = new Http1Connection(key);
    try {
      await withAbort(conn, spec.signal, () => connectOne(conn, host, spec.port, spec.tls));
      return conn;
    } catch (e) {
      conn.destroy();
      lastErr = classifyConnectError(e, host, spec.port);
      // Only a failure to reach this address moves on to the next one.
      if (lastErr.kind !== "connect") throw lastErr;
    }
  }
  throw lastErr;
}

async function withAbort(conn: Http1Connection, signal: AbortSignal | AbortLike | undefined, fn: () => Promise<void>): Promise<void> {
  if (!signal) return fn();
  const aborted = Promise.withResolvers<never>();
  const onAbort = () => aborted.reject(new UpstreamError("aborted", "request aborted"));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race([fn(), aborted.promise]);
  } catch (e) {
    conn.destroy();
    throw e;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
