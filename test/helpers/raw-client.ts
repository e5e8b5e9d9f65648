/**
 * The one raw-socket test client: a TCP connection to 127.0.0.1 that sends exact bytes and
 * keeps every byte it receives, for protocol edges (HTTP heads, CONNECT lines, SOCKS5 frames).
 * Every wait is on a socket event (data, FIN, close, drain) and bounded by `within`
 * (test/helpers/within.ts), so a regression fails with a message instead of hanging.
 *
 * Two ways to read: `text()`/`bytes()`/`until()` see everything received so far (HTTP
 * tests); `read(n)`/`readToClose()` consume from a cursor (SOCKS5 frames, one reply after the
 * other). Strings are written as latin1 (one byte per character).
 */
import type { Socket } from "bun";
import { WAIT_MS, within } from "./within.ts";

export class RawClient {
  socket!: Socket<undefined>;
  /** Whether the connection has closed. */
  isClosed = false;
  private chunks: Uint8Array[] = [];
  private size = 0;
  private joined: Uint8Array | null = new Uint8Array(0);
  /** Bytes already taken by read(). */
  private cursor = 0;
  private waiters: Array<() => void> = [];
  private drained: (() => void) | null = null;
  private readonly closedP = Promise.withResolvers<void>();
  private readonly endedP = Promise.withResolvers<void>();

  private constructor() {}

  /**
   * Connect to `host`:`port` (default 127.0.0.1). With `allowHalfOpen` the client stays
   * writable after the peer's FIN (`ended()` resolves) until it calls `socket.shutdown()`/`end()`.
   * TCP_NODELAY is set: each write leaves as its own segment (byte-at-a-time tests).
   */
  static async connect(port: number, opts: { host?: string; allowHalfOpen?: boolean } = {}): Promise<RawClient> {
    const c = new RawClient();
    c.socket = await Bun.connect({
      hostname: opts.host ?? "127.0.0.1",
      port,
      allowHalfOpen: opts.allowHalfOpen ?? false,
      socket: {
        data(_s, d) {
          c.chunks.push(new Uint8Array(d));
          c.size += d.byteLength;
          c.joined = null;
          c.wake();
        },
        drain() {
          c.drained?.();
        },
        end() {
          c.endedP.resolve();
        },
        close() {
          c.isClosed = true;
          c.endedP.resolve();
          c.closedP.resolve();
          c.drained?.();
          c.wake();
        },
        error() {},
      },
    });
    c.socket.setNoDelay(true);
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `cond()` holds, checked now and on every data/close event; bounded by `ms`. */
  async waitFor(cond: () => boolean, ms = WAIT_MS, what = "data"): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (this.isClosed || left <= 0) {
        if (cond()) return;
        throw new Error(`${this.isClosed ? "connection closed" : `timed out after ${ms} ms`} waiting for ${what}; received: ${JSON.stringify(this.text().slice(0, 500))}`);
      }
      await within(new Promise<void>((r) => this.waiters.push(r)), left, what);
    }
  }

  /** Everything received so far. */
  bytes(): Uint8Array {
    if (this.joined === null) this.joined = Buffer.concat(this.chunks, this.size);
    return this.joined;
  }

  /** Everything received so far, latin1. */
  text(): string {
    return Buffer.from(this.bytes()).toString("latin1");
  }

  /** Received bytes not yet taken by read(). */
  get received(): Uint8Array {
    return this.bytes().subarray(this.cursor);
  }

  /** Resolve with everything received once `pred(text)` holds; rejects on close or after `ms`. */
  async until(pred: (received: string) => boolean, ms = WAIT_MS): Promise<string> {
    await this.waitFor(() => pred(this.text()), ms, "the expected bytes");
    return this.text();
  }

  /** Resolves with everything received once the peer closed the connection. */
  async closed(ms = WAIT_MS): Promise<string> {
    await within(this.closedP.promise, ms, "the peer to close the connection");
    return this.text();
  }

  /** Resolves with everything received once the peer's FIN arrived (or it closed). */
  async ended(ms = WAIT_MS): Promise<string> {
    await within(this.endedP.promise, ms, "the peer's FIN");
    return this.text();
  }

  /** Take exactly `n` more bytes (after earlier reads); rejects on close or after `ms`. */
  async read(n: number, what = `${n} bytes`, ms = WAIT_MS): Promise<Uint8Array> {
    await this.waitFor(() => this.size - this.cursor >= n, ms, what);
    const out = this.bytes().slice(this.cursor, this.cursor + n);
    this.cursor += n;
    return out;
  }

  /** Take every byte not yet read, once the peer closed the connection. */
  async readToClose(ms = WAIT_MS): Promise<Uint8Array> {
    await this.closed(ms);
    const out = this.bytes().slice(this.cursor);
    this.cursor = this.size;
    return out;
  }

  /** Write `data` (strings as latin1); throws if the socket did not take all of it (small test writes). */
  write(data: string | Uint8Array | number[]): void {
    const buf = typeof data === "string" ? Buffer.from(data, "latin1") : Array.isArray(data) ? Uint8Array.from(data) : data;
    const n = this.socket.write(buf);
    if (n !== buf.byteLength) throw new Error(`test write was partial: ${n} of ${buf.byteLength} bytes`);
  }

  /** Write `data` whole, waiting for `drain` when the socket takes only part of it; bounded by `ms` in all. */
  async writeAll(data: Uint8Array, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    let off = 0;
    try {
      while (off < data.byteLength) {
        if (this.isClosed) throw new Error(`closed after ${off} of ${data.byteLength} bytes`);
        const wait = new Promise<void>((r) => (this.drained = r));
        off += Math.max(0, this.socket.write(data.subarray(off)));
        if (off < data.byteLength) await within(wait, Math.max(1, deadline - Date.now()), "the socket to drain");
      }
    } finally {
      this.drained = null;
    }
  }

  /** Send FIN (and close once the peer does). */
  end(): void {
    this.socket.end();
  }
}

/** Connect a {@link RawClient} to 127.0.0.1:`port`. */
export function rawClient(port: number, opts: { host?: string; allowHalfOpen?: boolean } = {}): Promise<RawClient> {
  return RawClient.connect(port, opts);
}

/**
 * Send `bytes` and collect the reply until the server closes the connection or `until(received)`
 * holds. `closed` tells which. Bounded by `ms` (default 10 s); the client then ends.
 */
export async function rawExchange(
  port: number,
  bytes: string | Uint8Array,
  until?: (received: string) => boolean,
  ms = 10_000,
): Promise<{ text: string; closed: boolean }> {
  const c = await rawClient(port);
  try {
    if (typeof bytes === "string") c.write(bytes);
    else await c.writeAll(bytes, ms);
    await c.waitFor(() => c.isClosed || (until?.(c.text()) ?? false), ms, "the server's answer");
    return { text: c.text(), closed: c.isClosed && !(until?.(c.text()) ?? false) };
  } finally {
    c.end();
  }
}
