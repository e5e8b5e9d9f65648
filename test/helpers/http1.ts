/**
 * Test helpers for the HTTP/1.1 client: a raw TCP (or TLS) upstream whose bytes the test
 * controls exactly (the PKI comes from ./pki.ts).
 */
import type { Socket, TCPSocketListener } from "bun";

/** One accepted connection on the raw upstream. */
export class RawConn {
  readonly chunks: Uint8Array[] = [];
  private waiters: Array<{ pred: (all: Uint8Array) => boolean; resolve: (all: Uint8Array) => void }> = [];
  readonly closed = Promise.withResolvers<void>();
  isClosed = false;
  /** Called from the socket's drain event (for tests that write with backpressure). */
  onDrain: (() => void) | null = null;

  constructor(readonly socket: Socket<RawConn>) {}

  /** All bytes received so far. */
  all(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  text(): string {
    return Buffer.from(this.all()).toString("latin1");
  }

  /** Resolves once the received bytes satisfy `pred` (checked on every data event). */
  waitFor(pred: (all: Uint8Array) => boolean): Promise<Uint8Array> {
    const all = this.all();
    if (pred(all)) return Promise.resolve(all);
    const p = Promise.withResolvers<Uint8Array>();
    this.waiters.push({ pred, resolve: p.resolve });
    return p.promise;
  }

  /** Resolves once the received text contains `s` `count` times. */
  waitForText(s: string, count = 1): Promise<string> {
    return this.waitFor((a) => Buffer.from(a).toString("latin1").split(s).length - 1 >= count).then((a) =>
      Buffer.from(a).toString("latin1"),
    );
  }

  /** @internal */
  push(d: Uint8Array): void {
    this.chunks.push(new Uint8Array(d));
    if (this.waiters.length === 0) return;
    const all = this.all();
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(all)) return true;
      w.resolve(all);
      return false;
    });
  }

  write(s: string | Uint8Array): void {
    // Test payloads are small; a partial write would show up as a failing assertion.
    const n = this.socket.write(s);
    const len = typeof s === "string" ? Buffer.byteLength(s) : s.length;
    if (n !== len) throw new Error(`raw upstream wrote ${n} of ${len} bytes`);
  }
}

/** A raw upstream: every accepted connection is handed to `onConn` and recorded. */
export interface RawServer {
  port: number;
  conns: RawConn[];
  /** Resolves with the n-th accepted connection (0-based). */
  conn(n: number): Promise<RawConn>;
  stop(): void;
  [Symbol.dispose](): void;
}

export function startRawServer(
  onConn: (c: RawConn) => void = () => {},
  tls?: { cert: string; key: string },
): RawServer {
  const conns: RawConn[] = [];
  const waiting = new Map<number, PromiseWithResolvers<RawConn>>();
  const listener: TCPSocketListener<RawConn> = Bun.listen<RawConn>({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls ? { tls } : {}),
    socket: {
      open(s) {
        const c = new RawConn(s);
        s.data = c;
        conns.push(c);
        waiting.get(conns.length - 1)?.resolve(c);
        onConn(c);
      },
      data(s, d) {
        s.data.push(d);
      },
      // With a handshake handler, `open` runs at accept even for TLS (so a client that
      // rejects the certificate is still seen as a connection that closes).
      handshake() {},
      drain(s) {
        s.data.onDrain?.();
      },
      close(s) {
        s.data.isClosed = true;
        s.data.closed.resolve();
      },
      error() {},
    },
  });
  const stop = () => listener.stop(true);
  return {
    port: listener.port,
    conns,
    conn(n) {
      if (conns[n]) return Promise.resolve(conns[n]!);
      let p = waiting.get(n);
      if (!p) {
        p = Promise.withResolvers<RawConn>();
        waiting.set(n, p);
      }
      return p.promise;
    },
    stop,
    [Symbol.dispose]: stop,
  };
}

/** Read a whole body stream into a string. */
export async function bodyText(body: ReadableStream<Uint8Array>): Promise<string> {
  return Buffer.from(await new Response(body).arrayBuffer()).toString("latin1");
}
