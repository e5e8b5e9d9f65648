/**
 * Test helpers for the SOCKS5 listener (the raw client is in raw-client.ts): request
 * builders, a UDP echo upstream, and a context wrapper that announces each policy verdict and
 * block.
 */
import type { udp } from "bun";
import type { RawClient } from "./raw-client.ts";
import { WAIT_MS, within } from "./within.ts";
import { SocksClient } from "socks";
import type { BlockReason } from "../../src/network/reasons.ts";
import type { NetworkContext, PolicyRequest, Verdict } from "../../src/network/types.ts";

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
        WAIT_MS,
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
  return within(done.promise, WAIT_MS, `socks ${command}`);
}
