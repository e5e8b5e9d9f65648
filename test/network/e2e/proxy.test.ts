/**
 * End to end: the whole proxy started in-process (`startTestProxy`, injected resolver mapping
 * `allowed.test` → 127.0.0.1) driven by curl through its HTTP and SOCKS5 listeners, with the
 * admin API watching; and the real executable entry (`src/network/main.ts`) as a child
 * process: --server-info, decisions on stderr, SIGHUP reload, SIGTERM exit 0.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/network/config.ts";
import { startNetworkProxy } from "../../../src/network/server.ts";
import {
  captureLogger,
  curl,
  mapResolver,
  parseProm,
  spawnNetworkProxy,
  startFakeHttpUpstream,
  startTestProxy,
} from "../../helpers/network.ts";

const upstream = startFakeHttpUpstream();
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "cnp-e2e-"));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await upstream.stop();
  for (const d of dirs) Bun.spawnSync(["rm", "-rf", d]);
});

const admin = (port: number, path: string, init?: RequestInit) =>
  fetch(`http://127.0.0.1:${port}${path}`, { ...init, proxy: false });

describe("in-process proxy", () => {
  let proxy: Awaited<ReturnType<typeof startTestProxy>>;
  let file: string;
  const toml = (allowed: string[]) =>
    `[network_proxy]\n[network_proxy.policy]\nallowed_domains = ${JSON.stringify(allowed)}\nallow_local_binding = true\n`;

  beforeAll(async () => {
    file = join(tempDir(), "config.toml");
    writeFileSync(file, "");
    proxy = await startTestProxy({
      config: { policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } },
      configFile: file,
    });
  });
  afterAll(async () => {
    await proxy.stop();
  });

  test("startup lines name every listener", () => {
    expect(proxy.lines).toContain(`HTTP proxy listening on 127.0.0.1:${proxy.ports.http}`);
    expect(proxy.lines).toContain(`SOCKS5 proxy listening on 127.0.0.1:${proxy.ports.socks}`);
    expect(proxy.lines).toContain(`admin API listening on 127.0.0.1:${proxy.ports.admin}`);
  });

  test("allowed plain HTTP flows; a blocked host gets 403 + x-proxy-error and shows in /blocked", async () => {
    const ok = await curl(["-x", `http://127.0.0.1:${proxy.ports.http}`, `http://allowed.test:${upstream.port}/hello?q=secret`]);
    expect({ status: ok.status, body: ok.body }).toEqual({ status: 200, body: "hello from upstream" });

    const blocked = await curl(["-x", `http://127.0.0.1:${proxy.ports.http}`, "http://blocked.test/x?token=secret"]);
    expect(blocked.status).toBe(403);
    expect(blocked.headers["x-proxy-error"]).toBe("blocked-by-allowlist");
    expect(JSON.parse(blocked.body)).toMatchObject({ status: "blocked", host: "blocked.test", reason: "not_allowed" });
    // The denied name was never resolved; query strings never reach the log.
    expect(proxy.resolver.lookups).not.toContain("blocked.test");
    expect(proxy.lines.join("\n")).not.toContain("secret");

    const b = (await (await admin(proxy.ports.admin, "/blocked")).json()) as { blocked: any[] };
    expect(b.blocked.map((e) => [e.host, e.reason, e.protocol, e.method])).toEqual([["blocked.test", "not_allowed", "http", "GET"]]);
  });

  test("CONNECT and SOCKS5 tunnels reach the allowed upstream", async () => {
    const viaConnect = await curl(["-p", "-x", `http://127.0.0.1:${proxy.ports.http}`, `http://allowed.test:${upstream.port}/t`]);
    expect({ status: viaConnect.status, body: viaConnect.body }).toEqual({ status: 200, body: "hello from upstream" });
    const viaSocks = await curl(["--socks5-hostname", `127.0.0.1:${proxy.ports.socks}`, `http://allowed.test:${upstream.port}/s`]);
    expect({ status: viaSocks.status, body: viaSocks.body }).toEqual({ status: 200, body: "hello from upstream" });
    const m = parseProm(await (await admin(proxy.ports.admin, "/metrics")).text());
    expect(m.get('codex_network_proxy_requests_total{protocol="http-connect",decision="allow",reason=""}')).toBeGreaterThanOrEqual(1);
    expect(m.get('codex_network_proxy_requests_total{protocol="socks5",decision="allow",reason=""}')).toBeGreaterThanOrEqual(1);
  });

  test("/mode limited blocks writes until a reload; the reload applies the file", async () => {
    const r = await admin(proxy.ports.admin, "/mode", { method: "POST", body: '{"mode":"limited"}' });
    expect(r.status).toBe(200);
    const post = await curl(["-x", `http://127.0.0.1:${proxy.ports.http}`, "-d", "x=1", `http://allowed.test:${upstream.port}/w`]);
    expect(post.status).toBe(403);
    expect(post.headers["x-proxy-error"]).toBe("blocked-by-method-policy");

    writeFileSync(file, toml(["allowed.test", "other.test"]));
    const rr = await admin(proxy.ports.admin, "/reload", { method: "POST" });
    expect(await rr.json()).toEqual({
      status: "reloaded",
      allowed: { added: ["other.test"], removed: [] },
      denied: { added: [], removed: [] },
    });
    const again = await curl(["-x", `http://127.0.0.1:${proxy.ports.http}`, "-d", "x=1", `http://other.test:${upstream.port}/w`]);
    expect(again.status).toBe(200);
  });
});

/** Start main.ts; resolve once the server-info file exists (watched, not polled). */
async function startChild(args: string[], dir: string) {
  const info = join(dir, "run/info.json");
  Bun.spawnSync(["mkdir", "-p", join(dir, "run")]);
  const appeared = Promise.withResolvers<void>();
  const watcher = watch(join(dir, "run"), () => existsSync(info) && appeared.resolve());
  const { proc, stderr, waitFor } = spawnNetworkProxy([...args, "--server-info", info], dir, "pipe");
  // An exit before the server-info file appeared fails the start; a later exit is the test's
  // to check (its exit code and stderr are asserted), never swallowed (issue 14, row 8).
  let started = false;
  const exitedEarly = proc.exited.then((c) => {
    if (!started) throw new Error(`exited early (${c}): ${stderr()}`);
  });
  const timer = setTimeout(() => appeared.reject(new Error(`no server-info within 15 s: ${stderr()}`)), 15_000);
  if (existsSync(info)) appeared.resolve();
  try {
    await Promise.race([appeared.promise, exitedEarly]);
    started = true;
  } finally {
    clearTimeout(timer);
    watcher.close();
  }
  return { proc, info: JSON.parse(readFileSync(info, "utf8")), raw: readFileSync(info, "utf8"), stderr, waitFor };
}

describe("child process", () => {
  test("--server-info, JSON decisions on stderr, SIGHUP reload, SIGTERM → exit 0", async () => {
    const dir = tempDir();
    const cfg = join(dir, "config.toml");
    writeFileSync(cfg, '[network_proxy]\n[network_proxy.policy]\nallowed_domains = ["127.0.0.1"]\n');
    const child = await startChild(
      ["--config", cfg, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"],
      dir,
    );
    try {
      expect(child.raw).toMatch(/^\{"http":\d+,"socks":\d+,"admin":\d+,"pid":\d+\}\n$/);
      expect(child.info.pid).toBe(child.proc.pid);
      const { http, admin: adminPort } = child.info;
      const ok = await curl(["-x", `http://127.0.0.1:${http}`, `http://127.0.0.1:${upstream.port}/`]);
      expect(ok.status).toBe(200);
      const blocked = await curl(["-x", `http://127.0.0.1:${http}`, "http://blocked.test/"]);
      expect(blocked.status).toBe(403);
      expect(blocked.headers["x-proxy-error"]).toBe("blocked-by-allowlist");

      // SIGHUP reload: a mode set by /mode reverts to the file's mode.
      await admin(adminPort, "/mode", { method: "POST", body: '{"mode":"limited"}' });
      const reloaded = child.waitFor('"msg":"config reloaded"');
      child.proc.kill("SIGHUP");
      await reloaded;
      expect(child.stderr()).toContain('"trigger":"sighup"');
      const cfgNow = (await (await admin(adminPort, "/config")).json()) as any;
      expect(cfgNow.network_proxy.mode).toBe("full");
    } finally {
      child.proc.kill("SIGTERM");
    }
    const code = await child.proc.exited;
    expect({ code, stderr: code === 0 ? "" : child.stderr() }).toEqual({ code: 0, stderr: "" });
    const lines = child.stderr().trim().split("\n").map((l) => JSON.parse(l));
    const decisions = lines.filter((l) => l["event.name"] === "codex.network_proxy.policy_decision");
    expect(decisions.map((d) => [d["network.policy.decision"], d["server.address"]])).toEqual([
      ["allow", "127.0.0.1"],
      ["deny", "blocked.test"],
    ]);
    expect(decisions[1]).toMatchObject({
      "network.policy.reason": "not_allowed",
      "network.transport.protocol": "http",
      "server.port": 80,
      "http.request.method": "GET",
    });
  });
});

describe("reload switches MITM and the enabled flag", () => {
  test("limited mode: mitm_required → reload enabling MITM (CA created) → TLS with our CA → reload enabled=false → 503", async () => {
    const dir = tempDir();
    const file = join(dir, "config.toml");
    const base = `[network_proxy]\nmode = "limited"\n[network_proxy.policy]\nallowed_domains = ["allowed.test"]\nallow_local_binding = true\n`;
    writeFileSync(file, base);
    const proxy = await startTestProxy({
      config: { mode: "limited", policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } },
      configFile: file,
    });
    try {
      const x = `http://127.0.0.1:${proxy.ports.http}`;
      const target = `https://allowed.test:${upstream.port}/`;
      const before = await curl(["-x", x, target]);
      expect(before.status).toBe(403);
      expect(before.headers["x-proxy-error"]).toBe("blocked-by-mitm-required");
      expect(proxy.context.mitm()).toBeNull();

      writeFileSync(file, base + "[network_proxy.mitm]\nenabled = true\n");
      expect((await proxy.reload()).ok).toBe(true);
      const ca = join(dir, "network_proxy/mitm/ca.pem");
      expect(existsSync(ca)).toBe(true);
      expect(proxy.context.mitm()).not.toBeNull();
      // TLS to the proxy verifies against our CA; the upstream is plain HTTP, so the inner request fails upstream.
      const inner = await curl(["--cacert", ca, "-x", x, target]);
      expect(inner.stderr).toBe("");
      expect(inner.status).toBe(502);
      expect(inner.body).toContain("mitm upstream error");

      writeFileSync(file, "[network_proxy]\nenabled = false\n");
      expect((await proxy.reload()).ok).toBe(true);
      const off = await curl(["-x", x, `http://allowed.test:${upstream.port}/`]);
      expect({ status: off.status, body: off.body }).toEqual({ status: 503, body: "proxy disabled" });
    } finally {
      await proxy.stop();
    }
  });
});

describe("server wiring", () => {
  test("MITM at startup, engine kept across reloads; admin token read at start and re-read on reload", async () => {
    const dir = tempDir();
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "first-token\n", { mode: 0o600 });
    const file = join(dir, "config.toml");
    const text = (allowed: string) =>
      `[network_proxy]\nadmin_token_file = ${JSON.stringify(tokenFile)}\n[network_proxy.policy]\nallowed_domains = [${JSON.stringify(allowed)}]\n[network_proxy.mitm]\nenabled = true\n`;
    writeFileSync(file, text("a.test"));
    const cfg = await loadConfig(file, { http: "127.0.0.1:0", socks: "127.0.0.1:0", admin: "127.0.0.1:0" });
    const { log, lines } = captureLogger();
    await using proxy = await startNetworkProxy({
      config: cfg,
      configFile: file,
      overrides: { http: "127.0.0.1:0", socks: "127.0.0.1:0", admin: "127.0.0.1:0" },
      resolver: mapResolver(),
      log,
      handleSignals: false,
      watch: false,
    });
    expect(existsSync(join(dir, "network_proxy/mitm/ca.pem"))).toBe(true);
    expect(lines).toContain(`created MITM CA certificate ${join(dir, "network_proxy/mitm/ca.pem")}`);
    const engine = proxy.context.mitm();
    expect(engine).not.toBeNull();
    const auth = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
    expect((await admin(proxy.ports.admin, "/health")).status).toBe(401);
    expect((await admin(proxy.ports.admin, "/health", auth("first-token"))).status).toBe(200);

    writeFileSync(tokenFile, "second-token\n");
    writeFileSync(file, text("b.test"));
    const r = await admin(proxy.ports.admin, "/reload", { method: "POST", ...auth("first-token") });
    expect(r.status).toBe(200);
    expect(proxy.context.mitm()).toBe(engine);
    expect((await admin(proxy.ports.admin, "/health", auth("first-token"))).status).toBe(401);
    expect((await admin(proxy.ports.admin, "/patterns", auth("second-token"))).status).toBe(200);
    // A reload whose token file vanished fails and keeps the old token and policy.
    Bun.spawnSync(["rm", tokenFile]);
    expect((await proxy.reload()).ok).toBe(false);
    expect(await (await admin(proxy.ports.admin, "/patterns", auth("second-token"))).json()).toEqual({ allowed: ["b.test"], denied: [] });
  });
});
