/**
 * SOCKS5 listener protocol edges on real sockets with raw bytes (RFC 1928, SPEC-network §5):
 * method negotiation, commands, address types, reply codes, byte-at-a-time and truncated
 * handshakes, the handshake timeout, and blocks recorded with protocol `socks5`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTestContext, startTcpEcho } from "../../helpers/network.ts";
import { startSocks5Listener, type Socks5ListenerHandle } from "../../../src/network/socks5/listener.ts";
import { domainRequest, GREETING, ipv4Request, RawClient, readReply, spyContext } from "./helpers.ts";

const CONNECT = 0x01;
const BIND = 0x02;
const UDP_ASSOCIATE = 0x03;

/** Whether ::1 can be bound here (some containers have no IPv6 loopback). */
const hasIpv6 = (() => {
  try {
    const l = Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } });
    l.stop(true);
    return true;
  } catch {
    return false;
  }
})();

/** A port nothing listens on: bind port 0, note it, close it (connects are then refused). */
function closedPort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

const echo = startTcpEcho();
const base = createTestContext(
  { policy: { allowedDomains: ["allowed.test", "127.0.0.1", "::1", "nodns.test"], allowLocalBinding: true } },
  { "allowed.test": ["127.0.0.1"] },
);
const { ctx, spy } = spyContext(base.ctx);
let proxy: Socks5ListenerHandle;

beforeAll(() => {
  proxy = startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 }, { handshakeTimeoutMs: 300 });
});

afterAll(async () => {
  await proxy.stop();
  echo.stop();
});

async function negotiated(): Promise<RawClient> {
  const c = await RawClient.connect(proxy.port);
  c.write(GREETING);
  expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
  return c;
}

async function expectEcho(c: RawClient, text: string): Promise<void> {
  c.write(text);
  expect(new TextDecoder().decode(await c.read(text.length, "echo"))).toBe(text);
}

describe("method negotiation", () => {
  test("a greeting without no-auth gets 05 FF and close", async () => {
    const c = await RawClient.connect(proxy.port);
    c.write([0x05, 0x02, 0x01, 0x02]); // GSSAPI, username/password
    expect(Array.from(await c.readToClose())).toEqual([0x05, 0xff]);
  });

  test("a non-SOCKS5 greeting is closed without an answer", async () => {
    const c = await RawClient.connect(proxy.port);
    c.write([0x04, 0x01, 0x00, 0x50, 127, 0, 0, 1, 0]);
    expect(Array.from(await c.readToClose())).toEqual([]);
  });
});

describe("commands and address types", () => {
  test("BIND and unknown commands get REP 0x07", async () => {
    for (const cmd of [BIND, 0x09]) {
      const c = await negotiated();
      c.write(ipv4Request(cmd, "127.0.0.1", echo.port));
      expect((await readReply(c)).rep).toBe(0x07);
      await c.readToClose();
    }
  });

  test("UDP ASSOCIATE while enable_socks5_udp is off gets REP 0x07", async () => {
    const c = await negotiated();
    c.write(ipv4Request(UDP_ASSOCIATE, "0.0.0.0", 0));
    expect((await readReply(c)).rep).toBe(0x07);
    await c.readToClose();
  });

  test("unknown ATYP gets REP 0x08", async () => {
    const c = await negotiated();
    c.write([0x05, CONNECT, 0x00, 0x05, 1, 2, 3, 4]);
    expect((await readReply(c)).rep).toBe(0x08);
    await c.readToClose();
  });

  test("zero-length domain gets REP 0x01 (general failure)", async () => {
    const c = await negotiated();
    c.write([0x05, CONNECT, 0x00, 0x03, 0x00, 0x00, 0x50]);
    expect((await readReply(c)).rep).toBe(0x01);
    await c.readToClose();
  });

  test("ATYP 1 (IPv4) connects; BND is the outbound socket's local address", async () => {
    const c = await negotiated();
    c.write(ipv4Request(CONNECT, "127.0.0.1", echo.port));
    const r = await readReply(c);
    expect({ rep: r.rep, atyp: r.atyp, addr: r.addr }).toEqual({ rep: 0, atyp: 1, addr: [127, 0, 0, 1] });
    expect(r.port).toBeGreaterThan(0);
    expect(r.port).not.toBe(echo.port);
    await expectEcho(c, "hello over ipv4");
    c.end();
  });

  test("ATYP 3 (domain) connects to the resolved, pinned address", async () => {
    const c = await negotiated();
    c.write(domainRequest(CONNECT, "Allowed.Test", echo.port));
    expect((await readReply(c)).rep).toBe(0);
    await expectEcho(c, "hello over a name");
    c.end();
  });

  test.skipIf(!hasIpv6)("ATYP 4 (IPv6 ::1) connects", async () => {
    const echo6 = Bun.listen({ hostname: "::1", port: 0, socket: { data: (s, d) => void s.write(d) } });
    try {
      const c = await negotiated();
      c.write([0x05, CONNECT, 0x00, 0x04, ...new Array(15).fill(0), 1, echo6.port >> 8, echo6.port & 0xff]);
      const r = await readReply(c);
      expect({ rep: r.rep, atyp: r.atyp, addr: r.addr }).toEqual({ rep: 0, atyp: 4, addr: [...new Array(15).fill(0), 1] });
      await expectEcho(c, "hello over ipv6");
      c.end();
    } finally {
      echo6.stop(true);
    }
  });

  test("a 255-byte domain is parsed and judged (not allowed → REP 0x02)", async () => {
    const name = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}.x`;
    expect(name.length).toBe(255);
    const c = await negotiated();
    const before = spy.verdicts.length;
    c.write(domainRequest(CONNECT, name, 443));
    expect((await readReply(c)).rep).toBe(0x02);
    await c.readToClose();
    expect(spy.verdicts[before]!.verdict).toEqual({ action: "deny", reason: "not_allowed", source: "baseline_policy", host: name });
  });
});

describe("policy and dial outcomes", () => {
  test("a blocked destination gets REP 0x02 and is recorded with protocol socks5", async () => {
    base.ctx.recorder.drain();
    const c = await negotiated();
    c.write(domainRequest(CONNECT, "blocked.example", 443));
    expect((await readReply(c)).rep).toBe(0x02);
    await c.readToClose();
    const entries = base.ctx.recorder.drain();
    expect(entries.map(({ timestamp: _t, client, ...rest }) => ({ ...rest, clientOk: client?.startsWith("127.0.0.1:") }))).toEqual([
      { host: "blocked.example", reason: "not_allowed", decision: "deny", source: "baseline_policy", method: null, mode: "full", protocol: "socks5", port: 443, clientOk: true },
    ]);
  });

  test("a failed DNS lookup gets REP 0x04", async () => {
    const c = await negotiated();
    c.write(domainRequest(CONNECT, "nodns.test", 80));
    expect((await readReply(c)).rep).toBe(0x04);
    await c.readToClose();
  });

  test("a refused connection gets REP 0x05", async () => {
    const c = await negotiated();
    c.write(ipv4Request(CONNECT, "127.0.0.1", closedPort()));
    expect((await readReply(c)).rep).toBe(0x05);
    await c.readToClose();
  });
});

describe("framing", () => {
  test("greeting and request written one byte per write, awaiting each", async () => {
    const c = await RawClient.connect(proxy.port);
    const bytes = [...GREETING, ...domainRequest(CONNECT, "allowed.test", echo.port)];
    for (const b of bytes) {
      c.write([b]);
      // Give the proxy a chance to see each byte alone before the next one is sent.
      await new Promise<void>((r) => setImmediate(r));
    }
    expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
    expect((await readReply(c)).rep).toBe(0);
    await expectEcho(c, "byte by byte");
    c.end();
  });

  test("greeting, request and payload in a single write (pipelined)", async () => {
    const c = await RawClient.connect(proxy.port);
    c.write([...GREETING, ...ipv4Request(CONNECT, "127.0.0.1", echo.port), ...new TextEncoder().encode("early")]);
    expect(Array.from(await c.read(2, "method selection"))).toEqual([0x05, 0x00]);
    expect((await readReply(c)).rep).toBe(0);
    expect(new TextDecoder().decode(await c.read(5, "early echo"))).toBe("early");
    c.end();
  });

  test("a truncated request then EOF closes cleanly and the listener keeps serving", async () => {
    const c = await negotiated();
    c.write([0x05, CONNECT, 0x00, 0x03, 0x20, 0x61, 0x62]);
    c.end();
    await c.readToClose();
    const d = await negotiated();
    d.write(ipv4Request(CONNECT, "127.0.0.1", echo.port));
    expect((await readReply(d)).rep).toBe(0);
    d.end();
  });

  test("a handshake that stalls is closed after the handshake timeout", async () => {
    const c = await RawClient.connect(proxy.port);
    c.write([0x05, 0x01]); // greeting missing its method byte
    expect(Array.from(await c.readToClose())).toEqual([]);
    const d = await negotiated();
    d.write([0x05, CONNECT]); // request stalls after two bytes
    expect(Array.from(await d.readToClose())).toEqual([]);
  });
});

describe("stop()", () => {
  test("closes the listener and every connection it accepted, tunnels included", async () => {
    const own = startSocks5Listener(ctx, { host: "127.0.0.1", port: 0 });
    const tunnel = await RawClient.connect(own.port);
    tunnel.write([...GREETING, ...ipv4Request(CONNECT, "127.0.0.1", echo.port)]);
    await tunnel.read(2, "method selection");
    expect((await readReply(tunnel)).rep).toBe(0);
    const idle = await RawClient.connect(own.port);
    idle.write([0x05]); // mid-handshake
    await own.stop();
    await tunnel.readToClose();
    await idle.readToClose();
    const refused = await RawClient.connect(own.port).then(
      () => "connected",
      () => "refused",
    );
    expect(refused).toBe("refused");
  });
});
