/**
 * Limited mode through SOCKS5 (SPEC-network §5, beyond): the host is judged first (REP 0x02
 * when denied); for an allowed host the proxy answers REP 0x00 and peeks at the client's
 * first bytes: plain HTTP GET is forwarded by the HTTP handler, POST gets a 403 JSON block,
 * a TLS ClientHello goes to the MITM when enabled, anything else (or silence) is closed, and
 * blocks are recorded as `method_not_allowed` with protocol `socks5`. UDP datagrams are dropped.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { SocksClient } from "socks";
import { createTestContext, curl, startFakeHttpUpstream } from "../../helpers/network.ts";
import { startSocks5Listener } from "../../../src/network/socks5/listener.ts";
import type { ConnState, MitmEngine } from "../../../src/network/types.ts";
import { domainRequest, GREETING, RawClient, readReply, socksCommand, spyContext, startUdpEcho } from "./helpers.ts";

const upstream = startFakeHttpUpstream();
const udpEcho = await startUdpEcho();
const base = createTestContext({
  mode: "limited",
  enableSocks5Udp: true,
  policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true },
});
const { ctx, spy } = spyContext(base.ctx);
const proxy = startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 }, { peekTimeoutMs: 300 });

afterAll(async () => {
  await proxy.stop();
  await upstream.stop();
  udpEcho.stop();
});

const socksArgs = ["--socks5-hostname", `127.0.0.1:${proxy.port}`];

/** Drain the recorder and keep the fields a test pins. */
function recorded() {
  return base.ctx.recorder.drain().map((e) => ({ host: e.host, reason: e.reason, method: e.method, protocol: e.protocol, mode: e.mode }));
}

/** Negotiate and CONNECT to allowed.test:<upstream>, expecting REP 0x00. */
async function connected(): Promise<RawClient> {
  const c = await RawClient.connect(proxy.port);
  c.write([...GREETING, ...domainRequest(0x01, "allowed.test", upstream.port)]);
  expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
  const r = await readReply(c);
  // Nothing is dialed before the first bytes are judged: BND is 0.0.0.0:0.
  expect(r).toEqual({ rep: 0, atyp: 1, addr: [0, 0, 0, 0], port: 0 });
  return c;
}

describe("limited mode over SOCKS5", () => {
  test("plain HTTP GET is forwarded", async () => {
    base.ctx.recorder.drain();
    const r = await curl([...socksArgs, `http://allowed.test:${upstream.port}/read`]);
    expect({ exit: r.exitCode, status: r.status, body: r.body }).toEqual({ exit: 0, status: 200, body: "hello from upstream" });
    expect(upstream.seen.at(-1)!.url).toEndWith("/read");
    expect(recorded()).toEqual([]);
  });

  test("plain HTTP POST is answered 403 method_not_allowed and recorded", async () => {
    base.ctx.recorder.drain();
    const seen = upstream.seen.length;
    const r = await curl([...socksArgs, "-d", "x=1", `http://allowed.test:${upstream.port}/write`]);
    expect(r.status).toBe(403);
    expect(r.headers["x-proxy-error"]).toBe("blocked-by-method-policy");
    expect(JSON.parse(r.body)).toMatchObject({
      status: "blocked",
      host: "allowed.test",
      reason: "method_not_allowed",
      port: upstream.port,
      method: "POST",
      protocol: "socks5",
      message: "Codex blocked this request: method not allowed in limited mode.",
      hint: 'limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got POST); full mode (network_proxy.mode = "full") permits it; this is a policy decision: do not retry through another route',
    });
    expect(upstream.seen.length).toBe(seen);
    expect(recorded()).toEqual([
      { host: "allowed.test", reason: "method_not_allowed", method: "POST", protocol: "socks5", mode: "limited" },
    ]);
  });

  test("after the hand-off every request is judged: a kept-alive POST is blocked", async () => {
    base.ctx.recorder.drain();
    const c = await connected();
    const host = `allowed.test:${upstream.port}`;
    c.write(`GET /first HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const first = new TextDecoder().decode(await c.read(17, "first response"));
    expect(first).toBe("HTTP/1.1 200 OK\r\n");
    c.write(`POST /second HTTP/1.1\r\nHost: ${host}\r\ncontent-length: 1\r\n\r\nx`);
    const rest = new TextDecoder().decode(await c.readToClose());
    expect(rest).toContain("HTTP/1.1 403 Forbidden\r\n");
    expect(recorded()).toEqual([
      { host: "allowed.test", reason: "method_not_allowed", method: "POST", protocol: "socks5", mode: "limited" },
    ]);
    expect(upstream.seen.map((r) => new URL(r.url).pathname)).not.toContain("/second");
  });

  test("a Host header naming another host than the SOCKS5 target is refused (400)", async () => {
    const c = await connected();
    c.write("GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
    const text = new TextDecoder().decode(await c.readToClose());
    expect(text).toStartWith("HTTP/1.1 400 ");
    expect(text).toEndWith("Host header does not match request target");
  });

  test("a denied host is refused before any peeking (REP 0x02)", async () => {
    base.ctx.recorder.drain();
    const c = await RawClient.connect(proxy.port);
    c.write([...GREETING, ...domainRequest(0x01, "elsewhere.example", 80)]);
    await c.read(2, "method selection");
    expect((await readReply(c)).rep).toBe(0x02);
    await c.readToClose();
    expect(recorded()).toEqual([
      { host: "elsewhere.example", reason: "not_allowed", method: null, protocol: "socks5", mode: "limited" },
    ]);
  });

  test("non-HTTP bytes are closed and recorded", async () => {
    base.ctx.recorder.drain();
    const c = await connected();
    c.write("SSH-2.0-OpenSSH_9.6\r\n");
    expect(Array.from(await c.readToClose())).toEqual([]);
    expect(recorded()).toEqual([
      { host: "allowed.test", reason: "method_not_allowed", method: null, protocol: "socks5", mode: "limited" },
    ]);
  });

  test("a client that stays silent is closed after the peek timeout and recorded", async () => {
    base.ctx.recorder.drain();
    const c = await connected();
    expect(Array.from(await c.readToClose())).toEqual([]);
    expect(recorded()).toEqual([
      { host: "allowed.test", reason: "method_not_allowed", method: null, protocol: "socks5", mode: "limited" },
    ]);
  });

  // A TLS record header + the start of a ClientHello: enough for the peek to call it TLS.
  const hello = [0x16, 0x03, 0x01, 0x00, 0x2a, 0x01, 0x00, 0x00, 0x26, 0x03, 0x03];

  test("a TLS ClientHello without MITM is closed and recorded", async () => {
    base.ctx.recorder.drain();
    const c = await connected();
    c.write(hello);
    expect(Array.from(await c.readToClose())).toEqual([]);
    expect(recorded()).toEqual([
      { host: "allowed.test", reason: "method_not_allowed", method: null, protocol: "socks5", mode: "limited" },
    ]);
  });

  test("a TLS ClientHello with MITM enabled is handed to the MITM engine with the peeked bytes", async () => {
    const calls: Array<{ target: unknown; client: string | null; initial: number[] }> = [];
    const fake: MitmEngine = {
      intercept(socket: Socket<ConnState>, target, client, initial) {
        calls.push({ target, client, initial: Array.from(initial ?? []) });
        socket.end(new TextEncoder().encode("mitm"));
      },
      stop() {},
    };
    base.ctx.setMitm(fake);
    try {
      const c = await connected();
      c.write(hello);
      expect(new TextDecoder().decode(await c.readToClose())).toBe("mitm");
      expect(calls).toHaveLength(1);
      expect(calls[0]!.target).toEqual({ host: "allowed.test", port: upstream.port, addresses: ["127.0.0.1"] });
      expect(calls[0]!.client).toStartWith("127.0.0.1:");
      expect(calls[0]!.initial).toEqual(hello);
    } finally {
      base.ctx.setMitm(null);
    }
  });

  test("UDP datagrams to an allowed host are dropped and recorded", async () => {
    base.ctx.recorder.drain();
    const { socket: control, remoteHost } = await socksCommand(proxy.port, "associate");
    const client = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    try {
      const events = spy.verdicts.length + spy.blocks.length;
      const frame = SocksClient.createUDPFrame({ remoteHost: { host: "allowed.test", port: udpEcho.port }, data: Buffer.from("q") });
      client.send(frame, remoteHost!.port, "127.0.0.1");
      await spy.events(events + 1); // one verdict: the policy drops datagrams in limited mode
      expect(udpEcho.received).toBe(0);
      expect(recorded()).toEqual([
        { host: "allowed.test", reason: "method_not_allowed", method: null, protocol: "socks5-udp", mode: "limited" },
      ]);
    } finally {
      client.close();
      control.destroy();
    }
  });
});
