/**
 * Exactly one decision line (and one metric) per request, from one place (SPEC-network §3,
 * §9): the cases that logged two lines or none before the single pipeline — a limited-mode
 * GET with a body, a UDP datagram in limited mode, an allowed `x-unix-socket` request — and a
 * request on an open MITM connection after a reload set `enabled = false` (503
 * `proxy disabled`, §2). Blocked entries and JSON block bodies carry `decision` and `source`.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { SocksClient } from "socks";
import { startSocks5Listener } from "../../src/network/socks5/listener.ts";
import { createTestContext, curl, parseProm } from "../helpers/network.ts";
import { splitResponse, startProxy } from "../helpers/http-proxy.ts";
import { rawClient } from "../helpers/raw-client.ts";
import { selfSignedCert } from "../helpers/pki.ts";
import { startConnectFront, startMitmContext, tlsThroughProxy } from "../helpers/mitm.ts";
import { socksCommand, startUdpEcho } from "../helpers/socks5.ts";
import { removeTempDirs, tempDir } from "../helpers/temp.ts";

// startMitmContext writes the MITM CA into testConfig's temporary folder.
afterAll(removeTempDirs);

const decisions = (lines: string[]) => lines.filter((l) => l.startsWith("policy decision"));

/** Let every continuation already queued run (a barrier, not a timed wait). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("one decision line per request", () => {
  test("limited-mode GET with a body: one deny line (mode_guard), one metric, one /blocked entry", async () => {
    const up = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("origin") });
    const proxy = startProxy({ mode: "limited", policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
    try {
      const c = await rawClient(proxy.port);
      c.write(`GET http://allowed.test:${up.port}/x HTTP/1.1\r\nHost: allowed.test:${up.port}\r\nContent-Length: 4\r\n\r\nbody`);
      const res = splitResponse(await c.closed());
      expect([res.status, res.headers["x-proxy-error"]]).toEqual([403, "blocked-by-method-policy"]);
      expect(JSON.parse(res.body)).toMatchObject({ reason: "method_not_allowed", decision: "deny", source: "mode_guard" });
      await settle();
      const lines = decisions(proxy.lines);
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain("network.policy.decision=deny network.policy.reason=method_not_allowed network.policy.source=mode_guard");
      expect(proxy.ctx.recorder.drain().map(({ timestamp: _t, client: _c, ...e }) => e)).toEqual([
        {
          host: "allowed.test",
          reason: "method_not_allowed",
          decision: "deny",
          source: "mode_guard",
          method: "GET",
          mode: "limited",
          protocol: "http",
          port: up.port!,
        },
      ]);
      const m = parseProm(proxy.ctx.metrics.render());
      expect([...m].filter(([k]) => k.startsWith("codex_network_proxy_requests_total{")).map(([k, v]) => [k, v])).toEqual([
        ['codex_network_proxy_requests_total{protocol="http",decision="deny",reason="method_not_allowed"}', 1],
      ]);
    } finally {
      proxy.stop();
      up.stop(true);
    }
  });

  test("UDP datagrams in limited mode: one deny line per datagram", async () => {
    const t = createTestContext({
      mode: "limited",
      enableSocks5Udp: true,
      policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true },
    });
    const socks = startSocks5Listener(t.ctx, { host: "127.0.0.1", port: 0 });
    const echo = await startUdpEcho();
    const { socket: control, remoteHost } = await socksCommand(socks.port, "associate");
    const client = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    try {
      const frame = SocksClient.createUDPFrame({ remoteHost: { host: "allowed.test", port: echo.port }, data: Buffer.from("q") });
      // Wait on the recorder (fed in the same step as the line): two datagrams, one entry each.
      const recorded: unknown[] = [];
      for (let i = 0; i < 2; i++) {
        client.send(frame, remoteHost!.port, "127.0.0.1");
        for (let spins = 0; recorded.length <= i && spins < 2000; spins++) {
          recorded.push(...t.ctx.recorder.drain());
          if (recorded.length <= i) await settle();
        }
      }
      await settle();
      const lines = decisions(t.lines);
      expect(lines.length).toBe(2);
      for (const l of lines) {
        expect(l).toContain("network.policy.decision=deny network.policy.reason=method_not_allowed network.policy.source=mode_guard");
        expect(l).toContain("network.transport.protocol=socks5-udp");
      }
      expect(echo.received).toBe(0);
    } finally {
      client.close();
      control.destroy();
      echo.stop();
      await socks.stop();
    }
  });

  describe.skipIf(process.platform === "win32")("x-unix-socket", () => {
    const dir = tempDir("cnp-decision-");
    const sock = join(dir, "api.sock");
    const server = Bun.serve({ unix: sock, fetch: () => new Response("over unix") });
    afterAll(() => {
      server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    });

    test("an allowed request: one allow line (protocol unix-socket), one metric", async () => {
      const proxy = startProxy({ policy: { allowUnixSockets: [sock] } });
      try {
        const r = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${sock}`, "http://localhost/info"]);
        expect([r.status, r.body]).toEqual([200, "over unix"]);
        await settle();
        const lines = decisions(proxy.lines);
        expect(lines.length).toBe(1);
        expect(lines[0]).toContain("network.policy.decision=allow network.transport.protocol=unix-socket server.address=unix-socket");
        expect(parseProm(proxy.ctx.metrics.render()).get('codex_network_proxy_requests_total{protocol="unix-socket",decision="allow",reason=""}')).toBe(1);
      } finally {
        proxy.stop();
      }
    });

    test("disabled and not-listed sockets are policy denies with their source", async () => {
      const proxy = startProxy({ mode: "limited", policy: { allowUnixSockets: [sock] } });
      try {
        const post = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${sock}`, "--data-binary", "x", "http://localhost/w"]);
        expect([post.status, JSON.parse(post.body).source]).toEqual([403, "mode_guard"]);
        const other = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${join(dir, "nope.sock")}`, "http://localhost/"]);
        expect([other.status, JSON.parse(other.body).reason, JSON.parse(other.body).source]).toEqual([403, "not_allowed", "baseline_policy"]);
        proxy.ctx.setConfig({ ...proxy.ctx.loadedConfig(), enabled: false });
        const off = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${sock}`, "http://localhost/"]);
        expect([off.status, off.body]).toEqual([503, "proxy disabled"]);
        await settle();
        expect(decisions(proxy.lines).length).toBe(3);
      } finally {
        proxy.stop();
      }
    });
  });

  test("MITM: a request on an open connection after enabled = false gets 503 proxy disabled, one deny line", async () => {
    const cert = selfSignedCert(["allowed.test"]);
    const origin = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { key: cert.key, cert: cert.cert },
      fetch: () => new Response("secure origin"),
    });
    const { t, ca, engine } = await startMitmContext(cert.cert);
    const front = startConnectFront(engine);
    try {
      const conn = await tlsThroughProxy(front.port, "allowed.test", origin.port!, ca.certPem);
      const req = `GET /x HTTP/1.1\r\nHost: allowed.test:${origin.port}\r\n\r\n`;
      const ok = splitResponse(await conn.exchange(req));
      expect([ok.status, ok.body]).toEqual([200, "secure origin"]);
      t.ctx.setConfig({ ...t.ctx.loadedConfig(), enabled: false });
      const before = decisions(t.lines).length;
      const off = splitResponse(await conn.exchange(req));
      expect([off.status, off.headers["content-type"], off.headers["x-proxy-error"] ?? "(none)", off.body]).toEqual([
        503,
        "text/plain",
        "(none)",
        "proxy disabled",
      ]);
      await settle();
      const lines = decisions(t.lines).slice(before);
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain("network.policy.decision=deny network.policy.reason=proxy_disabled network.policy.source=proxy_state");
      expect(lines[0]).toContain("network.transport.protocol=https");
      conn.close();
    } finally {
      front.stop();
      engine.stop();
      origin.stop(true);
    }
  });
});
