import { describe, expect, test } from "bun:test";
import { createNetworkContext } from "../../src/network/context.ts";
import { createRecorder } from "../../src/network/recorder.ts";
import { createMetrics } from "../../src/network/metrics.ts";
import { logDecision } from "../../src/network/decision-log.ts";
import type { BlockedEntry } from "../../src/network/types.ts";
import { captureLogger, createTestContext, mapResolver, parseProm, testConfig } from "../helpers/network.ts";

describe("recorder", () => {
  const entry = (i: number): BlockedEntry => ({
    host: `h${i}.test`,
    reason: "not_allowed",
    decision: "deny",
    source: "baseline_policy",
    client: null,
    method: null,
    mode: "full",
    protocol: "http",
    port: 80,
    timestamp: i,
  });

  test("keeps the last 200, oldest first, and drains", () => {
    const r = createRecorder();
    for (let i = 0; i < 205; i++) r.push(entry(i));
    expect(r.size).toBe(200);
    const got = r.drain();
    expect(got.length).toBe(200);
    expect(got[0]!.host).toBe("h5.test");
    expect(got[199]!.host).toBe("h204.test");
    expect(r.size).toBe(0);
    expect(r.drain()).toEqual([]);
    r.push(entry(1));
    expect(r.drain()).toEqual([entry(1)]);
  });

  test("rejects a bad capacity", () => {
    expect(() => createRecorder(0)).toThrow(RangeError);
  });
});

describe("metrics", () => {
  test("renders every family in Prometheus text format", () => {
    const m = createMetrics();
    m.request("http", "deny", "not_allowed");
    m.request("http", "deny", "not_allowed");
    m.request("socks5", "allow", null);
    m.tunnelOpened();
    m.tunnelOpened();
    m.tunnelClosed();
    m.bytes(10, 20);
    m.bytes(1, 2);
    m.certIssued();
    m.reload(true);
    m.reload(false);
    m.reload(false);
    m.connectionRefused();
    m.hook("github-read", 1);
    m.hook("github-read", 1);
    m.hook("hooks[1]", 0);
    const p = parseProm(m.render());
    expect(Object.fromEntries(p)).toEqual({
      'codex_network_proxy_requests_total{protocol="http",decision="deny",reason="not_allowed"}': 2,
      'codex_network_proxy_requests_total{protocol="socks5",decision="allow",reason=""}': 1,
      codex_network_proxy_open_tunnels: 1,
      codex_network_proxy_bytes_up_total: 11,
      codex_network_proxy_bytes_down_total: 22,
      codex_network_proxy_mitm_certs_issued_total: 1,
      'codex_network_proxy_config_reloads_total{result="ok"}': 1,
      'codex_network_proxy_config_reloads_total{result="error"}': 2,
      codex_network_proxy_connections_refused_total: 1,
      'codex_network_proxy_hook_requests_total{hook="github-read"}': 2,
      'codex_network_proxy_hook_requests_total{hook="hooks[1]"}': 1,
      'codex_network_proxy_hook_injected_headers_total{hook="github-read"}': 2,
      'codex_network_proxy_hook_injected_headers_total{hook="hooks[1]"}': 0,
    });
  });

  test("escapes label values", () => {
    const m = createMetrics();
    m.request('a"b\\c\nd', "deny", null);
    expect(m.render()).toContain('protocol="a\\"b\\\\c\\nd"');
  });
});

describe("decision log", () => {
  test("JSON line carries the §9 field names and nothing else", () => {
    const { log, lines } = captureLogger("json", false);
    logDecision(log, {
      decision: "deny",
      reason: "not_allowed",
      source: "baseline_policy",
      protocol: "http",
      host: "example.com",
      port: 80,
      method: "GET",
      client: "127.0.0.1:5000",
    });
    expect(JSON.parse(lines[0]!)).toEqual({
      level: "info",
      msg: "policy decision",
      "event.name": "codex.network_proxy.policy_decision",
      "network.policy.decision": "deny",
      "network.policy.reason": "not_allowed",
      "network.policy.source": "baseline_policy",
      "network.transport.protocol": "http",
      "server.address": "example.com",
      "server.port": 80,
      "http.request.method": "GET",
      "client.address": "127.0.0.1:5000",
    });
  });

  test("text line cannot be split by a hostile host", () => {
    const { log, lines } = captureLogger("text", false);
    logDecision(log, { decision: "deny", reason: "denied", source: "baseline_policy", protocol: "http", host: "a\nb c", port: 1, method: null, client: null });
    expect(lines).toEqual([
      "policy decision event.name=codex.network_proxy.policy_decision network.policy.decision=deny network.policy.reason=denied network.policy.source=baseline_policy network.transport.protocol=http server.address=a?b?c server.port=1",
    ]);
  });
});

describe("createNetworkContext", () => {
  test("a deny is logged once, counted and recorded with the §7 entry fields", async () => {
    const { ctx, resolver, lines } = createTestContext({ policy: { allowedDomains: ["allowed.test"] } });
    const v = await ctx.evaluate({ protocol: "https_connect", host: "Blocked.TEST.", port: 443, method: "CONNECT", client: "127.0.0.1:4000" });
    expect(v).toEqual({ action: "deny", reason: "not_allowed", source: "baseline_policy", host: "blocked.test" });
    // A name that is not allowed is never resolved (§3.3 step 5).
    expect(resolver.lookups).toEqual([]);
    const decisions = lines.filter((l) => l.startsWith("policy decision"));
    expect(decisions.length).toBe(1);
    expect(decisions[0]).toContain("network.policy.decision=deny");
    expect(decisions[0]).toContain("network.transport.protocol=http-connect");
    const blocked = ctx.recorder.drain();
    expect(blocked.length).toBe(1);
    const { timestamp, ...rest } = blocked[0]!;
    expect(rest).toEqual({
      host: "blocked.test",
      reason: "not_allowed",
      decision: "deny",
      source: "baseline_policy",
      client: "127.0.0.1:4000",
      method: "CONNECT",
      mode: "full",
      protocol: "http-connect",
      port: 443,
    });
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(60);
    expect(parseProm(ctx.metrics.render()).get('codex_network_proxy_requests_total{protocol="http-connect",decision="deny",reason="not_allowed"}')).toBe(1);
  });

  test("an allow returns the resolved addresses and records nothing", async () => {
    const { ctx, resolver } = createTestContext({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
    const v = await ctx.evaluate({ protocol: "http", host: "allowed.test", port: 80, method: "POST", client: null });
    expect(v).toEqual({ action: "allow", host: "allowed.test", addresses: ["127.0.0.1"] });
    expect(resolver.lookups).toEqual(["allowed.test"]);
    expect(ctx.recorder.size).toBe(0);
    expect(parseProm(ctx.metrics.render()).get('codex_network_proxy_requests_total{protocol="http",decision="allow",reason=""}')).toBe(1);
  });

  test("a DNS failure is an error verdict, counted but not recorded", async () => {
    const { ctx } = createTestContext({ policy: { allowedDomains: ["*.test"] } });
    const v = await ctx.evaluate({ protocol: "socks5_tcp", host: "nxdomain.test", port: 80, method: null, client: null });
    expect(v.action).toBe("error");
    expect(ctx.recorder.size).toBe(0);
    expect(parseProm(ctx.metrics.render()).get('codex_network_proxy_requests_total{protocol="socks5",decision="error",reason="dns"}')).toBe(1);
  });

  test("setMode lasts until setConfig; limited mode blocks writes", async () => {
    const { ctx } = createTestContext({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
    const post = { protocol: "http" as const, host: "allowed.test", port: 80, method: "POST", client: null };
    ctx.setMode("limited");
    expect(ctx.config().mode).toBe("limited");
    expect(ctx.loadedConfig().mode).toBe("full");
    expect(await ctx.evaluate(post)).toEqual({ action: "deny", reason: "method_not_allowed", source: "mode_guard", host: "allowed.test" });
    expect(ctx.recorder.drain()[0]!.mode).toBe("limited");
    ctx.setConfig(ctx.loadedConfig());
    expect(ctx.mode()).toBe("full");
    expect((await ctx.evaluate(post)).action).toBe("allow");
  });

  test("setConfig with a bad pattern throws and keeps the old policy", async () => {
    const { ctx } = createTestContext({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
    const bad = testConfig({ policy: { allowedDomains: ["["] } });
    expect(() => ctx.setConfig(bad)).toThrow("invalid glob pattern");
    expect(ctx.config().policy.allowedDomains).toEqual(["allowed.test"]);
    expect((await ctx.evaluate({ protocol: "http", host: "allowed.test", port: 80, method: "GET", client: null })).action).toBe("allow");
  });

  test("recordBlock normalises the host and records the transport's reason", () => {
    const { ctx, lines } = createTestContext();
    ctx.recordBlock({ protocol: "https_connect", host: "[::1]", port: 443, method: null, client: "127.0.0.1:1" }, "sni_mismatch");
    const [e] = ctx.recorder.drain();
    expect(e).toMatchObject({ host: "::1", reason: "sni_mismatch", protocol: "http-connect", method: null });
    expect(lines.filter((l) => l.includes("network.policy.reason=sni_mismatch")).length).toBe(1);
  });

  test("explain: the hint names the deny pattern of the current compiled policy (follows reloads)", () => {
    const { ctx } = createTestContext({ policy: { deniedDomains: ["*.evil.test"] } });
    const req = { protocol: "http" as const, host: "A.evil.test", port: 80, method: "GET", client: null };
    const tail = "; this is a policy decision: do not retry through another route";
    expect(ctx.explain("denied", req, "a.evil.test")).toBe(`"a.evil.test" matches denied_domains entry "*.evil.test"${tail}`);
    ctx.setConfig(testConfig({ policy: { deniedDomains: ["**.evil.test"] } }));
    expect(ctx.explain("denied", req, "a.evil.test")).toBe(`"a.evil.test" matches denied_domains entry "**.evil.test"${tail}`);
    expect(ctx.explain("not_allowed", req, "a.evil.test")).toBe(`add "a.evil.test" to network_proxy.policy.allowed_domains${tail}`);
    expect(ctx.explain("proxy_disabled", req, "a.evil.test")).toBe(`the proxy is disabled (network_proxy.enabled = false)${tail}`);
  });

  test("a disabled proxy denies with proxy_disabled", async () => {
    const { ctx } = createTestContext({ enabled: false, policy: { allowedDomains: ["*"] } });
    const v = await ctx.evaluate({ protocol: "http", host: "allowed.test", port: 80, method: "GET", client: null });
    expect(v).toMatchObject({ action: "deny", reason: "proxy_disabled" });
  });

  test("recorder and metrics can be shared with a new context", async () => {
    const { ctx } = createTestContext();
    await ctx.evaluate({ protocol: "http", host: "x.test", port: 80, method: "GET", client: null });
    const ctx2 = createNetworkContext({
      config: testConfig(),
      resolver: mapResolver(),
      log: captureLogger().log,
      recorder: ctx.recorder,
      metrics: ctx.metrics,
    });
    expect(ctx2.recorder.size).toBe(1);
  });
});
