/**
 * SOCKS5 UDP ASSOCIATE (RFC 1928 §4 CMD 0x03, §7), enabled by `enable_socks5_udp`.
 *
 * The relay socket is bound on the address the client reached the TCP listener on; the
 * reply carries its address and port. Each client datagram: only from the control
 * connection's IP (and the port named in the request, when not 0) — RFC 1928 §7 MUST;
 * FRAG ≠ 0 dropped (fragmentation is optional, §7); the destination judged per datagram
 * with protocol `socks5_udp` (denies dropped and recorded as `socks5-udp` by the context;
 * in limited mode the policy denies every datagram `method_not_allowed`, SPEC-network §5); allowed datagrams
 * go to the first pinned address. Replies are relayed back with the §7 header only from
 * peers this association sent to. The association ends when the TCP connection closes.
 */
import type { udp } from "bun";
import type { NetworkContext, PolicyRequest } from "../types.ts";
import { parseUdpHeader, type SocksAddress } from "./handshake.ts";
import { encodeAddress, REP, replyBytes } from "./reply.ts";
import type { SessionIo } from "./types.ts";

/** Datagrams being judged at once per association; more are dropped (UDP may drop). */
const MAX_INFLIGHT = 256;
/** Remembered reply peers per association (oldest forgotten first). */
const MAX_PEERS = 1024;
/** Flush byte counters into the metrics at least every this many bytes. */
const METRICS_FLUSH_BYTES = 1 << 20;

/** Options of {@link startUdpRelay}. */
export interface UdpRelayOptions {
  ctx: NetworkContext;
  /** Local address to bind the relay socket on (the TCP connection's local address). */
  bindHost: string;
  /** The client's IP (the TCP connection's remote address). */
  clientIp: string;
  /** Only accept datagrams from this source port (the request's DST.PORT when not 0), else any. */
  clientPort: number | null;
  /** Client `ip:port` of the control connection, for policy requests and logs. */
  client: string;
}

/** A running association: where the client sends datagrams, and `stop()`. */
export interface UdpRelay {
  address: string;
  port: number;
  /** Close the relay and outbound sockets. Idempotent. */
  stop(): void;
}

/** `::ffff:a.b.c.d` → `a.b.c.d`, lowercase, zone id kept: comparable address text. */
function canonicalIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith("::ffff:") && lower.includes(".") ? lower.slice(7) : lower;
}

/**
 * Bind the relay socket and start relaying.
 * @throws the bind error of `Bun.udpSocket` (the caller answers REP 0x01)
 */
export async function startUdpRelay(opts: UdpRelayOptions): Promise<UdpRelay> {
  const { ctx, client } = opts;
  const clientIp = canonicalIp(opts.clientIp);
  let clientAddr: string | null = null; // as the relay socket reports it, for sending back
  let clientUdpPort: number | null = null;
  let stopped = false;
  let inflight = 0;
  let up = 0;
  let down = 0;
  const peers = new Map<string, true>();
  const outbound: { v4: Promise<udp.Socket<"buffer">> | null; v6: Promise<udp.Socket<"buffer">> | null } = {
    v4: null,
    v6: null,
  };

  const flushMetrics = () => {
    if (up + down === 0) return;
    ctx.metrics.bytes(up, down);
    up = 0;
    down = 0;
  };

  const fromPeer = (data: Uint8Array, port: number, address: string) => {
    if (stopped || clientAddr === null || clientUdpPort === null) return;
    if (!peers.has(`${canonicalIp(address)}|${port}`)) return;
    const addr = encodeAddress(address, port);
    const packet = new Uint8Array(3 + addr.byteLength + data.byteLength);
    packet.set(addr, 3); // RSV 0x0000, FRAG 0x00
    packet.set(data, 3 + addr.byteLength);
    relay.send(packet, clientUdpPort, clientAddr);
    down += data.byteLength;
    if (up + down >= METRICS_FLUSH_BYTES) flushMetrics();
  };

  const outboundSocket = (v6: boolean): Promise<udp.Socket<"buffer">> => {
    const key = v6 ? "v6" : "v4";
    let p = outbound[key];
    if (!p) {
      p = Bun.udpSocket({
        hostname: v6 ? "::" : "0.0.0.0",
        port: 0,
        socket: { data: (_s, data, port, address) => fromPeer(data, port, address) },
      });
      outbound[key] = p;
    }
    return p;
  };

  const judgeAndSend = async (dst: SocksAddress, payload: Uint8Array) => {
    const req: PolicyRequest = { protocol: "socks5_udp", host: dst.host, port: dst.port, method: null, client };
    // The policy drops datagrams in limited mode (`method_not_allowed`); denies are logged and recorded by the context.
    const verdict = await ctx.evaluate(req);
    if (stopped || verdict.action !== "allow") return;
    const target = verdict.addresses[0];
    if (!target) return;
    const sock = await outboundSocket(target.includes(":"));
    if (stopped) return;
    const key = `${canonicalIp(target)}|${dst.port}`;
    if (!peers.has(key)) {
      if (peers.size >= MAX_PEERS) peers.delete(peers.keys().next().value!);
      peers.set(key, true);
    }
    sock.send(payload, dst.port, target);
    up += payload.byteLength;
    if (up + down >= METRICS_FLUSH_BYTES) flushMetrics();
  };

  const fromClient = (data: Uint8Array, port: number, address: string) => {
    if (stopped) return;
    if (canonicalIp(address) !== clientIp) return; // RFC 1928 §7: only the associated client's IP
    if (opts.clientPort !== null && port !== opts.clientPort) return;
    const h = parseUdpHeader(data);
    if (h.kind === "error") {
      ctx.log.debug("socks5 udp datagram dropped", { client, why: h.message });
      return;
    }
    if (h.frag !== 0) {
      ctx.log.debug("socks5 udp datagram dropped", { client, why: "fragmented (FRAG != 0)" });
      return;
    }
    if (h.address.port === 0 || inflight >= MAX_INFLIGHT) return;
    clientAddr = address;
    clientUdpPort = port;
    inflight++;
    judgeAndSend(h.address, data.subarray(h.headerLength))
      .catch((err) => ctx.log.debug("socks5 udp send failed", { client, error: err instanceof Error ? err.message : "error" }))
      .finally(() => inflight--);
  };

  const relay = await Bun.udpSocket({
    hostname: opts.bindHost,
    port: 0,
    socket: { data: (_s, data, port, address) => fromClient(data, port, address) },
  });

  return {
    address: relay.address.address,
    port: relay.port,
    stop() {
      if (stopped) return;
      stopped = true;
      relay.close();
      for (const p of [outbound.v4, outbound.v6]) void p?.then((s) => s.close()).catch(() => {});
      flushMetrics();
    },
  };
}

/**
 * Handle a parsed UDP ASSOCIATE request (the session checked `enable_socks5_udp`): start the
 * relay, answer REP 0x00 with its address, keep the TCP connection as the association's
 * lifetime (later bytes on it are ignored).
 */
export async function runUdpAssociate(io: SessionIo, request: SocksAddress): Promise<void> {
  const { ctx, socket } = io;
  const relay = await startUdpRelay({
    ctx,
    bindHost: socket.localAddress,
    clientIp: socket.remoteAddress,
    clientPort: request.port !== 0 ? request.port : null,
    client: io.client,
  });
  io.onClose(() => relay.stop());
  if (io.aborted()) return;
  ctx.log.debug("socks5 udp association started", { client: io.client, relay_port: relay.port });
  io.write(replyBytes(REP.SUCCEEDED, { address: relay.address, port: relay.port }));
  io.whenFlushed(() => {
    if (io.aborted()) return;
    socket.data.handler = {
      data() {},
      drain() {},
      close: () => relay.stop(),
    };
    io.takeBuffered();
    socket.resume();
  });
}
