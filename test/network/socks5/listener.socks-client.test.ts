/**
 * The SOCKS5 listener driven by a real client library (the `socks` npm package): CONNECT by
 * name, IPv4 and IPv6, BIND refused with 0x07, UDP ASSOCIATE off (0x07) and on (relay to a
 * UDP echo upstream, a denied datagram dropped and recorded as `socks5-udp`, datagrams from
 * another IP or with FRAG ≠ 0 dropped, the association ending with its TCP connection).
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket as NetSocket } from "node:net";
import type { udp } from "bun";
import { SocksClient } from "socks";
import { createTestContext, startTcpEcho } from "../../helpers/network.ts";
import { startSocks5Listener } from "../../../src/network/socks5/listener.ts";
import { socksCommand, spyContext, startUdpEcho } from "../../helpers/socks5.ts";
import { WAIT_MS, within } from "../../helpers/within.ts";

const echo = startTcpEcho();
const udpEcho = await startUdpEcho();

function makeProxy(udpEnabled: boolean) {
  const base = createTestContext({
    enableSocks5Udp: udpEnabled,
    policy: { allowedDomains: ["allowed.test", "127.0.0.1"], allowLocalBinding: true },
  });
  const { ctx, spy } = spyContext(base.ctx);
  const listener = startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 });
  return { base, spy, listener };
}

const plain = makeProxy(false);
const withUdp = makeProxy(true);

afterAll(async () => {
  await plain.listener.stop();
  await withUdp.listener.stop();
  echo.stop();
  udpEcho.stop();
});

const proxyOf = (p: { listener: { port: number } }) => ({ host: "127.0.0.1", port: p.listener.port, type: 5 as const });

/** Send `text` on a connected node socket and wait for the same bytes back. */
async function roundTrip(sock: NetSocket, text: string): Promise<string> {
  const got = Promise.withResolvers<string>();
  let acc = "";
  sock.on("data", (d: Buffer) => {
    acc += d.toString();
    if (acc.length >= text.length) got.resolve(acc);
  });
  sock.write(text);
  return within(got.promise, WAIT_MS, "echo through the socks client");
}

describe("TCP through the socks client", () => {
  test("CONNECT by name and by IPv4 literal", async () => {
    for (const host of ["allowed.test", "127.0.0.1"]) {
      const { socket } = await SocksClient.createConnection({
        proxy: proxyOf(plain),
        command: "connect",
        destination: { host, port: echo.port },
        timeout: 5000,
      });
      expect(await roundTrip(socket, `via ${host}`)).toBe(`via ${host}`);
      socket.destroy();
    }
  });

  test("BIND is refused with CommandNotSupported (0x07)", async () => {
    const err = await socksCommand(plain.listener.port, "bind").catch((e: Error) => e);
    expect(String(err)).toContain("CommandNotSupported");
  });

  test("a denied name is refused with NotAllowed (0x02)", async () => {
    const err = await SocksClient.createConnection({
      proxy: proxyOf(plain),
      command: "connect",
      destination: { host: "denied.example", port: 80 },
      timeout: 5000,
    }).catch((e: Error) => e);
    expect(String(err)).toContain("NotAllowed");
  });
});

describe("UDP ASSOCIATE", () => {
  test("refused with 0x07 when enable_socks5_udp is off", async () => {
    const err = await socksCommand(plain.listener.port, "associate").catch((e: Error) => e);
    expect(String(err)).toContain("CommandNotSupported");
  });

  test("relays allowed datagrams, drops denied / fragmented ones, ends with the TCP connection", async () => {
    const { socket: control, remoteHost } = await socksCommand(withUdp.listener.port, "associate");
    expect(remoteHost!.host).toBe("127.0.0.1");
    const relayPort = remoteHost!.port;
    expect(relayPort).toBeGreaterThan(0);

    const replies: Buffer[] = [];
    const waiters: Array<() => void> = [];
    const client: udp.Socket<"buffer"> = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(_s, data) {
          replies.push(data);
          for (const w of waiters.splice(0)) w();
        },
      },
    });
    const nextReply = async (n: number) => {
      while (replies.length < n) await within(new Promise<void>((r) => waiters.push(r)), WAIT_MS, "a relayed UDP reply");
      return SocksClient.parseUDPFrame(replies[n - 1]!);
    };
    const frame = (host: string, port: number, text: string, frameNumber = 0) =>
      SocksClient.createUDPFrame({ remoteHost: { host, port }, data: Buffer.from(text), frameNumber });
    try {
      withUdp.base.ctx.recorder.drain();
      const events = withUdp.spy.verdicts.length + withUdp.spy.blocks.length;

      // 1. Denied destination: dropped and recorded.
      client.send(frame("blocked.example", 53, "secret"), relayPort, "127.0.0.1");
      await withUdp.spy.events(events + 1);
      expect(withUdp.base.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol, e.port])).toEqual([
        ["blocked.example", "not_allowed", "socks5-udp", 53],
      ]);

      // 2. FRAG != 0: dropped before judging; then an allowed one goes through.
      client.send(frame("allowed.test", udpEcho.port, "fragment", 1), relayPort, "127.0.0.1");
      client.send(frame("allowed.test", udpEcho.port, "ping"), relayPort, "127.0.0.1");
      const reply = await nextReply(1);
      expect({ host: reply.remoteHost.host, port: reply.remoteHost.port, data: reply.data.toString() }).toEqual({
        host: "127.0.0.1",
        port: udpEcho.port,
        data: "echo:ping",
      });
      expect(udpEcho.received).toBe(1);
      expect(withUdp.spy.verdicts.slice(-1).map((v) => [v.req.protocol, v.req.host, v.verdict.action])).toEqual([
        ["socks5_udp", "allowed.test", "allow"],
      ]);
      expect(withUdp.spy.verdicts.length + withUdp.spy.blocks.length).toBe(events + 2);

      // 3. Closing the control connection ends the association: the relay port stops answering.
      const closed = Promise.withResolvers<void>();
      control.on("close", () => closed.resolve());
      control.destroy();
      await within(closed.promise, WAIT_MS, "control connection close");
      // The relay socket is closed synchronously when the proxy sees the TCP close; a new
      // association must get a fresh relay and still work.
      const again = await socksCommand(withUdp.listener.port, "associate");
      client.send(frame("127.0.0.1", udpEcho.port, "pong"), again.remoteHost!.port, "127.0.0.1");
      expect((await nextReply(2)).data.toString()).toBe("echo:pong");
      // The old relay port was released (the proxy handled the first close long before the
      // second association's handshake finished).
      const rebound = await Bun.udpSocket({ hostname: "127.0.0.1", port: relayPort });
      rebound.close();
      again.socket.destroy();
    } finally {
      client.close();
    }
  });

  // 127.0.0.0/8 is all loopback on Linux only: elsewhere 127.0.0.2 cannot be bound.
  test.skipIf(process.platform !== "linux")("a datagram from another IP than the control connection's (127.0.0.2) is dropped (RFC 1928 §7)", async () => {
    const { socket: control, remoteHost } = await socksCommand(withUdp.listener.port, "associate");
    const relayPort = remoteHost!.port;
    const got = Promise.withResolvers<Buffer>();
    const client = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, d) => got.resolve(d) } });
    const strangerGot: Buffer[] = [];
    const stranger = await Bun.udpSocket({ hostname: "127.0.0.2", port: 0, socket: { data: (_s, d) => void strangerGot.push(d) } });
    try {
      const frame = (text: string) => SocksClient.createUDPFrame({ remoteHost: { host: "allowed.test", port: udpEcho.port }, data: Buffer.from(text) });
      const before = udpEcho.received;
      // The stranger's datagram is sent first; the client's answer proves the relay has read both.
      stranger.send(frame("from a stranger"), relayPort, "127.0.0.1");
      client.send(frame("ping"), relayPort, "127.0.0.1");
      const reply = SocksClient.parseUDPFrame(await within(got.promise, WAIT_MS, "a relayed UDP reply"));
      expect({ data: reply.data.toString(), upstreamGot: udpEcho.received - before, strangerGot: strangerGot.length }).toEqual({
        data: "echo:ping",
        upstreamGot: 1,
        strangerGot: 0,
      });
    } finally {
      client.close();
      stranger.close();
      control.destroy();
    }
  });
});
