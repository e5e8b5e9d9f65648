/**
 * Test helpers for the SOCKS5 listener: a raw byte client that waits on events (bytes
 * received, close), request builders, a UDP echo upstream, and a context wrapper that
 * announces each policy verdict and block.
 */
import type { Socket, udp } from "bun";
import { SocksClient } from "socks";
import type { BlockReason } from "../../src/network/reasons.ts";
import type { NetworkContext, PolicyRequest, Verdict } from "../../src/network/types.ts";

/** Bound on any single wait in these tests (a regression fails instead of hanging). */
export const WAIT_MS = 5_000;

/** Reject after `ms` with `what` in the message. */
export function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A raw TCP client that accumulates every byte received and exposes `closed`. */
export class RawClient {
  private buf = new Uint8Array(0);
  private waiters: Array<() => void> = [];
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  isClosed = false;
  socket!: Socket<undefined>;

  private constructor() {
    this.closed = new Promise((r) => (this.markClosed = r));
  }

  static async connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    const c = new RawClient();
    c.socket = await Bun.connect<undefined>({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => {
          const next = new Uint8Array(c.buf.byteLength + chunk.byteLength);
          next.set(c.buf, 0);
          next.set(chunk, c.buf.byteLength);
          c.buf = next;
          c.wake();
        },
        close: () => {
          c.isClosed = true;
          c.markClosed();
          c.wake();
        },
        error: () => {},
      },
    });
    // Each write must leave as its own segment (byte-at-a-time tests), not be coalesced by Nagle.
    c.socket.setNoDelay(true);
    return c;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Bytes received so far (not consumed). */
  get received(): Uint8Array {
    return this.buf;
  }

  write(bytes: Uint8Array | number[] | string): void {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : Uint8Array.from(bytes);
    const n = this.socket.write(data);
    if (n !== data.byteLength) throw new Error(`short test write ${n}/${data.byteLength}`);
  }

  /** Resolve with exactly `n` bytes (consumed), or reject on close/timeout. */
  async read(n: number, what = `${n} bytes`): Promise<Uint8Array> {
    const deadline = Date.now() + WAIT_MS;
    while (this.buf.byteLength < n) {
      if (this.isClosed) throw new Error(`closed before ${what} (got ${Array.from(this.buf)})`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await within(new Promise<void>((r) => this.waiters.push(r)), what);
    }
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return out;
  }

  /** Read until the peer closes; returns everything left. */
  async readToClose(): Promise<Uint8Array> {
    await within(this.closed, "the proxy to close the connection");
    const out = this.buf;
    this.buf = new Uint8Array(0);
    return out;
  }

  end(): void {
    this.socket.end();
  }
}

/** `05 01 00`: greeting offering no-auth only. */
export const GREETING = [0x05, 0x01, 0x00];

/** A request frame (RFC 1928 §4) with a domain address. */
export function domainRequest(cmd: number, host: string, port: number): number[] {
  const name = Array.from(new TextEncoder().encode(host));
  return [0x05, cmd, 0x00, 0x03, name.length, ...name, port >> 8, port & 0xff];
}

/** A request frame with an IPv4 address `a.b.c.d`. */
export function ipv4Request(cmd: number, ip: string, port: number): number[] {
  return [0x05, cmd, 0x00, 0x01, ...ip.split(".").map(Number), port >> 8, port & 0xff];
}

/** Read a complete reply (§6) with an IPv4/IPv6 BND address; returns REP and BND. */
export async function readReply(c: RawClient): Promise<{ rep: number; atyp: number; addr: number[]; port: number }> {
  const head = await c.read(4, "reply head");
  const addrLen = head[3] === 0x04 ? 16 : 4;
  const rest = await c.read(addrLen + 2, "reply address");
  return {
    rep: head[1]!,
    atyp: head[3]!,
    addr: Array.from(rest.subarray(0, addrLen)),
    port: (rest[addrLen]! << 8) | rest[addrLen + 1]!,
  };
}

/** What the spy saw: every verdict and every transport-recorded block, in order. */
export interface Spy {
  verdicts: Array<{ req: PolicyRequest; verdict: Verdict }>;
  blocks: Array<{ req: PolicyRequest; reason: BlockReason }>;
  /** Resolves when `count` verdicts + blocks have been seen in total. */
  events(count: number): Promise<void>;
}

/**
 * Wrap a context so tests can wait for decisions instead of sleeping. The wrapped context
 * keeps all behaviour (logging, recorder, metrics).
 */
export function spyContext<C extends NetworkContext>(ctx: C): { ctx: C; spy: Spy } {
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const spy: Spy = {
    verdicts: [],
    blocks: [],
    events(count) {
      return within(
        new Promise<void>((resolve) => {
          waiters.push({ count, resolve });
          check();
        }),
        `${count} policy events`,
      );
    },
  };
  const check = () => {
    const n = spy.verdicts.length + spy.blocks.length;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (n >= waiters[i]!.count) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  const wrapped = Object.assign(Object.create(null), ctx, {
    async evaluate(req: PolicyRequest) {
      const verdict = await ctx.evaluate(req);
      spy.verdicts.push({ req, verdict });
      check();
      return verdict;
    },
    recordBlock(req: PolicyRequest, reason: BlockReason) {
      ctx.recordBlock(req, reason);
      spy.blocks.push({ req, reason });
      check();
    },
  }) as C;
  return { ctx: wrapped, spy };
}

/** UDP echo server on 127.0.0.1:0: sends every datagram back prefixed with `echo:`. */
export async function startUdpEcho(): Promise<{ port: number; received: number; stop(): void }> {
  const state = { received: 0 };
  const sock: udp.Socket<"buffer"> = await Bun.udpSocket({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, data, port, address) {
        state.received++;
        s.send(Buffer.concat([Buffer.from("echo:"), data]), port, address);
      },
    },
  });
  return {
    port: sock.port,
    get received() {
      return state.received;
    },
    stop: () => sock.close(),
  };
}

/** What the socks client reports once a command succeeded (its type is not exported by name). */
export type SocksEstablished = Awaited<ReturnType<typeof SocksClient.createConnection>>;

/**
 * BIND / UDP ASSOCIATE through the `socks` client: `createConnection` only does CONNECT, so
 * drive a `SocksClient` instance and wait for its `established`/`bound` or `error` event.
 */
export function socksCommand(proxyPort: number, command: "bind" | "associate"): Promise<SocksEstablished> {
  const done = Promise.withResolvers<SocksEstablished>();
  const c = new SocksClient({
    proxy: { host: "127.0.0.1", port: proxyPort, type: 5 },
    command,
    destination: { host: "0.0.0.0", port: 0 },
    timeout: 5000,
  });
  c.on("established", (info) => done.resolve(info));
  c.on("bound", (info) => done.resolve(info));
  c.on("error", (err) => done.reject(err));
  c.connect();
  return within(done.promise, `socks ${command}`);
}
