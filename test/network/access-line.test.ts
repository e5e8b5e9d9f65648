/**
 * The network proxy's access line (issue 13, docs/logs.md): one line per request when it ends
 * (plain HTTP, blocked or forwarded), per tunnel when it closes (CONNECT, SOCKS5), with client,
 * method, target (never the query), protocol, decision and reason, status or SOCKS5 reply,
 * bytes each way and duration; and the byte counters of /metrics that add up the same bytes
 * (bytes up stayed 0 for plain HTTP requests before).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLogger } from "../../src/log.ts";
import { curl, mapResolver, parseProm, startFakeHttpUpstream, testConfig } from "../helpers/network.ts";

type Fields = Record<string, unknown>;

/** A JSON logger whose lines tests can wait for (bounded by the proxy's behaviour, not a timer). */
function waitableLog() {
  const lines: Fields[] = [];
  let waiters: Array<{ pred: (f: Fields) => boolean; resolve: (f: Fields) => void }> = [];
  const log = createLogger({
    format: "json",
    level: "debug",
    now: null,
    sink: (l) => {
      const f = JSON.parse(l) as Fields;
      lines.push(f);
      waiters = waiters.filter((w) => (w.pred(f) ? (w.resolve(f), false) : true));
    },
  });
  const wait = (pred: (f: Fields) => boolean): Promise<Fields> => {
    const hit = lines.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve) => waiters.push({ pred, resolve }));
  };
  return { log, lines, wait };
}

const ACCESS = "codex.network_proxy.access";
const isAccess = (f: Fields) => f["event.name"] === ACCESS;

describe("access line", () => {
  const upstream = startFakeHttpUpstream();
  const logs = waitableLog();
  let proxy: Awaited<ReturnType<typeof import("../../src/network/server.ts").startNetworkProxy>>;
  const http = () => `http://127.0.0.1:${proxy.ports.http}`;

  beforeAll(async () => {
    const { startNetworkProxy } = await import("../../src/network/server.ts");
    proxy = await startNetworkProxy({
      config: testConfig({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } }),
      configFile: null,
      resolver: mapResolver(),
      log: logs.log,
      handleSignals: false,
      watch: false,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream.stop();
  });

  const common = {
    msg: "access",
    level: "info",
    "event.name": ACCESS,
    "client.address": expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    "network.bytes_up": expect.any(Number),
    "network.bytes_down": expect.any(Number),
    "event.duration_ms": expect.any(Number),
  };

  test("plain HTTP, forwarded: status, decision, bytes, no query", async () => {
    const r = await curl(["-x", http(), `http://allowed.test:${upstream.port}/path?token=secret-query`]);
    expect(r.status).toBe(200);
    const f = await logs.wait((l) => isAccess(l) && l["network.transport.protocol"] === "http" && l["http.response.status_code"] === 200);
    expect(f).toEqual({
      ...common,
      "http.request.method": "GET",
      "server.address": "allowed.test",
      "server.port": upstream.port,
      "network.transport.protocol": "http",
      "network.policy.decision": "allow",
      "http.response.status_code": 200,
      "event.outcome": "complete",
    });
    expect(f["network.bytes_up"]).toBeGreaterThan(60); // the request head
    expect(f["network.bytes_down"]).toBeGreaterThan("hello from upstream".length);
    expect(JSON.stringify(logs.lines)).not.toContain("secret-query");
  });

  test("plain HTTP, blocked: 403 with the reason", async () => {
    const r = await curl(["-x", http(), "http://blocked.test/x"]);
    expect(r.status).toBe(403);
    const f = await logs.wait((l) => isAccess(l) && l["server.address"] === "blocked.test");
    expect(f).toEqual({
      ...common,
      "http.request.method": "GET",
      "server.address": "blocked.test",
      "server.port": 80,
      "network.transport.protocol": "http",
      "network.policy.decision": "deny",
      "network.policy.reason": "not_allowed",
      "http.response.status_code": 403,
      "event.outcome": "complete",
    });
  });

  test("CONNECT: one line when the tunnel closes, with the tunnel's bytes", async () => {
    const r = await curl(["-p", "-x", http(), `http://allowed.test:${upstream.port}/via-connect`]);
    expect(r.status).toBe(200);
    const f = await logs.wait((l) => isAccess(l) && l["network.transport.protocol"] === "http-connect");
    expect(f).toEqual({
      ...common,
      "http.request.method": "CONNECT",
      "server.address": "allowed.test",
      "server.port": upstream.port,
      "network.transport.protocol": "http-connect",
      "network.policy.decision": "allow",
      "http.response.status_code": 200,
      "event.outcome": "complete",
    });
    // The CONNECT head and the tunnelled request up; 200 Connection established and the answer down.
    expect(f["network.bytes_up"]).toBeGreaterThan(100);
    expect(f["network.bytes_down"]).toBeGreaterThan(39 + "hello from upstream".length);
  });

  test("SOCKS5: a tunnel line with REP 0, a refusal with REP 2", async () => {
    const ok = await curl(["--socks5-hostname", `127.0.0.1:${proxy.ports.socks}`, `http://allowed.test:${upstream.port}/s`]);
    expect(ok.status).toBe(200);
    const f = await logs.wait((l) => isAccess(l) && l["network.transport.protocol"] === "socks5" && l["socks5.reply"] === 0);
    expect(f).toEqual({
      ...common,
      "server.address": "allowed.test",
      "server.port": upstream.port,
      "network.transport.protocol": "socks5",
      "network.policy.decision": "allow",
      "socks5.reply": 0,
      "event.outcome": "complete",
    });
    expect(f["network.bytes_up"]).toBeGreaterThan(60);
    const denied = await curl(["--socks5-hostname", `127.0.0.1:${proxy.ports.socks}`, "http://blocked.test/s"]);
    expect(denied.exitCode).not.toBe(0);
    const d = await logs.wait((l) => isAccess(l) && l["network.transport.protocol"] === "socks5" && l["socks5.reply"] === 2);
    expect(d).toMatchObject({ "server.address": "blocked.test", "network.policy.decision": "deny", "network.policy.reason": "not_allowed" });
  });

  test("/metrics bytes: a plain GET counts its request head up", async () => {
    const bytes = async () => {
      const m = parseProm(await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/metrics`)).text());
      return { up: m.get("codex_network_proxy_bytes_up_total")!, down: m.get("codex_network_proxy_bytes_down_total")! };
    };
    const before = await bytes();
    const r = await curl(["-x", http(), `http://allowed.test:${upstream.port}/metrics-get`]);
    expect(r.status).toBe(200);
    const after = await bytes();
    expect(after.up - before.up).toBeGreaterThan(60);
    expect(after.down - before.down).toBeGreaterThan("hello from upstream".length);
  });
});
