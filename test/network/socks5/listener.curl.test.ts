/**
 * curl through the SOCKS5 listener to fake upstreams on 127.0.0.1: `--socks5-hostname` (the
 * proxy resolves through the injected resolver) and `--socks5` (curl sends an IPv4 literal,
 * allowed by an exact allowlist entry even without allow_local_binding), and a blocked name.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createTestContext, curl, startFakeHttpUpstream, startTcpEcho } from "../../helpers/network.ts";
import { startSocks5Listener } from "../../../src/network/socks5/listener.ts";

const upstream = startFakeHttpUpstream();
// allow_local_binding stays false: `127.0.0.1` is allowed only as an exact literal entry
// (SPEC-network §3.3 step 4); `allowed.test` resolves to loopback and is therefore refused.
const strict = createTestContext({ policy: { allowedDomains: ["127.0.0.1", "allowed.test"] } });
const loose = createTestContext({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
const strictProxy = startSocks5Listener(strict.ctx, { host: "127.0.0.1", port: 0 });
const looseProxy = startSocks5Listener(loose.ctx, { host: "127.0.0.1", port: 0 });

afterAll(async () => {
  await strictProxy.stop();
  await looseProxy.stop();
  await upstream.stop();
});

describe("curl through SOCKS5", () => {
  test("--socks5-hostname: the proxy resolves the name and forwards", async () => {
    const r = await curl(["--socks5-hostname", `127.0.0.1:${looseProxy.port}`, `http://allowed.test:${upstream.port}/hi`]);
    expect({ exit: r.exitCode, status: r.status, body: r.body }).toEqual({ exit: 0, status: 200, body: "hello from upstream" });
    expect(upstream.seen.at(-1)!.headers.host).toBe(`allowed.test:${upstream.port}`);
  });

  test("--socks5 with an IPv4 literal allowed exactly", async () => {
    const r = await curl(["--socks5", `127.0.0.1:${strictProxy.port}`, `http://127.0.0.1:${upstream.port}/ip`]);
    expect({ exit: r.exitCode, status: r.status, body: r.body }).toEqual({ exit: 0, status: 200, body: "hello from upstream" });
  });

  test("a name resolving to loopback without allow_local_binding is refused and recorded", async () => {
    strict.ctx.recorder.drain();
    const r = await curl(["--socks5-hostname", `127.0.0.1:${strictProxy.port}`, `http://allowed.test:${upstream.port}/`]);
    expect(r.exitCode).toBe(97); // CURLE_PROXY: the SOCKS5 server refused the request
    expect(r.stderr).toContain("Can't complete SOCKS5 connection to allowed.test. (2)"); // REP 0x02
    expect(strict.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol, e.port])).toEqual([
      ["allowed.test", "not_allowed_local", "socks5", upstream.port],
    ]);
  });

  test("a name outside the allowlist is refused, recorded, and never resolved", async () => {
    loose.ctx.recorder.drain();
    const lookups = loose.resolver.lookups.length;
    const r = await curl(["--socks5-hostname", `127.0.0.1:${looseProxy.port}`, "http://blocked.test/"]);
    expect(r.exitCode).toBe(97);
    expect(loose.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol, e.port])).toEqual([
      ["blocked.test", "not_allowed", "socks5", 80],
    ]);
    expect(loose.resolver.lookups.length).toBe(lookups);
  });
});

describe("TLS server name through a tunnel opened by name", () => {
  test("a ClientHello naming another host than the SOCKS5 target is closed and recorded (sni_mismatch)", async () => {
    const echo = startTcpEcho();
    try {
      loose.ctx.recorder.drain();
      // --connect-to: curl asks the proxy for allowed.test but sends SNI evil.test.
      const r = await curl([
        "--socks5-hostname",
        `127.0.0.1:${looseProxy.port}`,
        "--connect-to",
        `evil.test:443:allowed.test:${echo.port}`,
        "https://evil.test/",
      ]);
      expect(r.exitCode).not.toBe(0);
      expect(echo.connections()).toBe(1);
      expect(loose.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol, e.port])).toEqual([
        ["allowed.test", "sni_mismatch", "socks5", echo.port],
      ]);
    } finally {
      echo.stop();
    }
  });
});
