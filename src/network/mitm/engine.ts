/**
 * The MITM engine (SPEC-network §6, types.ts `MitmEngine`): takes over an allowed tunnel,
 * terminates TLS with a leaf for the CONNECT host, and runs the HTTP/1.1 loop of
 * `inner-http.ts` on the decrypted bytes.
 *
 * TLS: `socket.upgradeTLS` on the accepted `Bun.listen` socket (server role; verified with
 * Bun 1.4.5). Two Bun quirks shape this file: after the upgrade the original socket's `data`
 * handler still receives the ciphertext, so `socket.data.handler` becomes a no-op guard; and
 * bytes read before the upgrade are lost to it, so the socket is paused while a leaf is
 * issued, and a connection whose ClientHello was already read (SOCKS5's `buffered`, or bytes
 * that arrived anyway) goes through the node:tls bridge instead.
 */
import type { Socket } from "bun";
import type { Http1DirectClient } from "../../http1/types.ts";
import { createUpstreamClients, type UpstreamClients } from "../http/upstream-clients.ts";
import { concatBytes } from "../bytes.ts";
import type { CheckedTarget, ConnHandler, ConnState, MitmEngine, NetworkContext } from "../types.ts";
import type { HttpSession } from "../http/conn-io.ts";
import type { Ca } from "./ca.ts";
import { createCertCache, type CertCache } from "./cert-cache.ts";
import { createInnerHttpSession } from "./inner-http.ts";
import { createLeafKey, issueLeaf, type LeafCert, type LeafKey } from "./leaf.ts";
import { logTrustFailure } from "./trust-failure.ts";
import { bridgeTls } from "./tls-bridge.ts";

/** Options of `createMitmEngine`. */
export interface MitmEngineOptions {
  /**
   * HTTP/1.1 client for every upstream request (tests). Default: the listener's pair of
   * clients (`createUpstreamClients`: system roots + NODE_EXTRA_CA_CERTS / SSL_CERT_FILE; the
   * proxy environment only while `allow_upstream_proxy`). A client passed in is not closed by
   * `stop()`.
   */
  client?: Http1DirectClient;
  /** The process leaf key (default: EC P-256 generated asynchronously now). */
  leafKey?: LeafKey | Promise<LeafKey>;
  /** Cached leaves (LRU), default 1000. */
  cacheSize?: number;
  /**
   * SPEC-network §12: the client's TLS handshake must finish this long (ms) after the
   * interception starts (the `200` / `0x00` reply), else the connection is closed and
   * `tls handshake timeout` logged; default 10 000. Tests pass small values.
   */
  handshakeTimeoutMs?: number;
  /** Head and idle bounds of the decrypted request loop (HttpConnectionOptions); defaults 30 s / 120 s. */
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** SPEC-network §12. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The engine plus what tests and the server use. */
export interface MitmEngineHandle extends MitmEngine {
  /** Resolves once the leaf key exists (rejects if key generation failed). */
  readonly ready: Promise<void>;
  /** The leaf certificate served for `host` (cached, or issued now). */
  certFor(host: string): Promise<LeafCert>;
  readonly certs: CertCache;
  /** Intercepted connections currently open. */
  readonly openConnections: number;
}

/** Ignores the ciphertext copies Bun still delivers to the pre-upgrade handler. */
const AFTER_UPGRADE: ConnHandler = { data() {}, drain() {}, close() {} };

/**
 * Create the engine. `ctx` supplies config (read per request), the policy, the block
 * recorder, metrics (`certIssued`, body bytes) and the logger. `stop()` ends every
 * intercepted connection.
 */
export function createMitmEngine(ctx: NetworkContext, ca: Ca, opts: MitmEngineOptions = {}): MitmEngineHandle {
  const keyPromise = Promise.resolve(opts.leafKey ?? createLeafKey());
  let key: LeafKey | null = null;
  const ready = keyPromise.then((k) => {
    key = k;
  });
  ready.catch((e: Error) => ctx.log.error("MITM leaf key generation failed", { error: e.message }));
  const certs = createCertCache({
    issue: async (host) => issueLeaf(ca, key ?? (await keyPromise), host),
    max: opts.cacheSize,
    onIssued: () => ctx.metrics.certIssued(),
  });
  const injected = opts.client;
  const clients: UpstreamClients = injected ? { get: () => injected, close() {} } : createUpstreamClients();
  let stopped = false;
  /** Open intercepted connections (`stop()` ends them). The tunnels gauge counts raw splices only. */
  const live = new Set<LiveConn>();

  const track = (socket: Socket<ConnState>, host: string, clientAddr: string | null): LiveConn => {
    const conn: LiveConn = {
      end: () => socket.end(),
      kill: () => socket.terminate(),
      closed: false,
      handshake: null,
    };
    // No ClientHello, or a handshake that never finishes, must not hold the connection forever.
    conn.handshake = setTimeout(() => {
      conn.handshake = null;
      if (conn.closed) return;
      ctx.log.info("tls handshake timeout", { host, client: clientAddr });
      conn.kill();
    }, opts.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS);
    conn.handshake.unref?.();
    live.add(conn);
    return conn;
  };
  const handshakeDone = (conn: LiveConn) => {
    if (conn.handshake !== null) clearTimeout(conn.handshake);
    conn.handshake = null;
  };
  const untrack = (conn: LiveConn) => {
    if (conn.closed) return;
    conn.closed = true;
    handshakeDone(conn);
    live.delete(conn);
  };

  const serve = (
    conn: LiveConn,
    socket: Socket<ConnState>,
    target: CheckedTarget,
    clientAddr: string | null,
    leaf: LeafCert,
    buffered: Uint8Array | null,
  ) => {
    const deps = { ctx, clients, headTimeoutMs: opts.headTimeoutMs, idleTimeoutMs: opts.idleTimeoutMs };
    ctx.log.debug("mitm intercept", { host: target.host, port: target.port, tls: buffered === null ? "upgrade" : "bridge" });
    // A client that refuses our leaf (it does not trust the CA) aborts the handshake: say so
    // once, with the trust commands (trust-failure.ts). Not while the engine is stopping.
    let handshaken = false;
    let reported = false;
    const handshakeFailed = (detail: string | null) => {
      if (handshaken || reported || stopped) return;
      reported = true;
      logTrustFailure(ctx.log, { host: target.host, port: target.port, client: clientAddr, caCertPath: ca.certPath, detail });
    };
    if (buffered === null) {
      const holder: { session: HttpSession | null } = { session: null };
      const [, tls] = socket.upgradeTLS<{ session: HttpSession | null }>({
        data: holder,
        tls: { key: leaf.keyPem, cert: leaf.certPem },
        socket: {
          handshake: (_t, success, err) => {
            handshakeDone(conn);
            // Bun reports success=false when the client aborted (an alert, or it hung up).
            if (success) handshaken = true;
            else handshakeFailed(err?.message ?? null);
          },
          data: (t, chunk) => t.data.session?.data(chunk),
          drain: (t) => t.data.session?.drain(),
          close: (t) => {
            handshakeFailed(null);
            untrack(conn);
            // The raw socket's listener never sees a `close` after upgradeTLS: release its
            // max_connections slot here (else 8192 MITM connections lock the proxy out).
            socket.data.gone?.();
            t.data.session?.close();
          },
          error: (_t, e) => ctx.log.debug("mitm tls error", { host: target.host, error: e.message }),
        },
      });
      socket.data.handler = AFTER_UPGRADE;
      conn.end = () => tls.end();
      conn.kill = () => tls.terminate();
      holder.session = createInnerHttpSession(deps, target, clientAddr, {
        write: (d) => tls.write(d),
        end: () => tls.end(),
        pause: () => tls.pause(),
        resume: () => tls.resume(),
      });
      socket.resume();
      return;
    }
    let session: HttpSession | null = null;
    const transport = bridgeTls(socket, { key: leaf.keyPem, cert: leaf.certPem }, buffered, {
      secure: () => {
        handshaken = true;
        handshakeDone(conn);
      },
      data: (c) => session?.data(c),
      drain: () => session?.drain(),
      close: () => {
        handshakeFailed(null);
        untrack(conn);
        session?.close();
      },
      error: (e) => {
        handshakeFailed(e.message);
        ctx.log.debug("mitm tls error", { host: target.host, error: e.message });
      },
    });
    conn.end = () => transport.end();
    session = createInnerHttpSession(deps, target, clientAddr, transport);
  };

  return {
    ready,
    certs,
    certFor: (host) => certs.get(host),
    get openConnections() {
      return live.size;
    },
    intercept(socket, target, clientAddr, buffered) {
      if (stopped) {
        socket.end();
        return;
      }
      const conn = track(socket, target.host, clientAddr);
      try {
        const t: CheckedTarget = { host: target.host, port: target.port, addresses: target.addresses };
        const cached = certs.peek(t.host);
        if (cached && !buffered?.byteLength) return serve(conn, socket, t, clientAddr, cached, null);
        // Wait for the leaf with the socket paused; keep anything that arrives regardless.
        const held: Uint8Array[] = buffered?.byteLength ? [buffered] : [];
        socket.data.handler = {
          data: (_s, chunk) => void held.push(chunk),
          drain() {},
          close: () => untrack(conn),
        };
        socket.pause();
        certs.get(t.host).then(
          (leaf) => {
            if (conn.closed) return;
            try {
              serve(conn, socket, t, clientAddr, leaf, held.length === 0 ? null : concatBytes(held));
            } catch (e) {
              // E.g. the socket died while we waited: never let it become an unhandled rejection.
              ctx.log.error("MITM intercept failed", { host: t.host, error: (e as Error).message });
              socket.end();
            }
          },
          (e: Error) => {
            ctx.log.error("MITM certificate issuance failed", { host: t.host, error: e.message });
            if (!conn.closed) socket.end();
          },
        );
      } catch (e) {
        ctx.log.error("MITM intercept failed", { host: target.host, error: (e as Error).message });
        socket.end();
      }
    },
    stop() {
      stopped = true;
      for (const conn of live) conn.end();
      certs.clear();
      clients.close();
    },
  };
}

/** One intercepted connection, for `stop()` and `openConnections`. */
interface LiveConn {
  /** Close it (TLS close_notify once upgraded). */
  end(): void;
  /** Close it at once (a stalled handshake). */
  kill(): void;
  closed: boolean;
  /** The TLS handshake deadline, until the handshake completes. */
  handshake: ReturnType<typeof setTimeout> | null;
}

