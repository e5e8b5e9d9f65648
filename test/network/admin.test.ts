/**
 * Admin API (SPEC-network §7) and reload contract (§8) over real HTTP on 127.0.0.1:0, with a
 * real config file in a temp folder, the real loader and the real reloader.
 */
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/network/config.ts";
import { createNetworkContext, type NetworkContextHandle } from "../../src/network/context.ts";
import { readAdminToken, startAdminServer, type AdminServer } from "../../src/network/admin.ts";
import { createReloader, type ReloadResult, type Reloader } from "../../src/network/reload.ts";
import { captureLogger, mapResolver, parseProm } from "../helpers/network.ts";
import { within } from "../helpers/within.ts";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "cnp-admin-"));
  dirs.push(d);
  return d;
}

function toml(allowed: string[], extra = ""): string {
  return `[network_proxy]\nmode = "full"\n${extra}\n[network_proxy.policy]\nallowed_domains = ${JSON.stringify(allowed)}\ndenied_domains = ["evil.test"]\nallow_local_binding = true\n`;
}

/** Write a file the way editors do: a temp file renamed over the old one. */
function replaceFile(file: string, text: string): void {
  writeFileSync(file + ".tmp", text);
  renameSync(file + ".tmp", file);
}

interface Rig {
  file: string;
  ctx: NetworkContextHandle;
  reloader: Reloader;
  admin: AdminServer;
  lines: string[];
  url(path: string): string;
  stop(): Promise<void>;
}

async function startRig(opts: { token?: Uint8Array; watch?: boolean; text?: string } = {}): Promise<Rig> {
  const dir = tempDir();
  const file = join(dir, "config.toml");
  writeFileSync(file, opts.text ?? toml(["allowed.test"]));
  const { log, lines } = captureLogger();
  const ctx = createNetworkContext({ config: await loadConfig(file), resolver: mapResolver(), log });
  const reloader = createReloader({
    file,
    watch: opts.watch ?? false,
    pollMs: 0,
    log,
    metrics: ctx.metrics,
    load: () => loadConfig(file),
    current: () => ctx.loadedConfig(),
    apply: (cfg) => ctx.setConfig(cfg),
  });
  const admin = startAdminServer(ctx, { host: "127.0.0.1", port: 0 }, {
    reload: () => reloader.reload("admin"),
    lastReloadError: () => reloader.lastError(),
    token: () => opts.token ?? null,
  });
  return {
    file,
    ctx,
    reloader,
    admin,
    lines,
    url: (p) => `http://127.0.0.1:${admin.port}${p}`,
    async stop() {
      reloader.stop();
      await admin.stop();
    },
  };
}

// proxy: false — the admin API is on loopback; an HTTP(S)_PROXY in the environment must not matter.
const get = (url: string, headers?: Record<string, string>) => fetch(url, { proxy: false, headers });
const post = (url: string, body?: RequestInit["body"], headers?: Record<string, string>) =>
  fetch(url, { method: "POST", body, headers, proxy: false });

async function expectText(r: Response, status: number, body: string) {
  expect({ status: r.status, body: await r.text(), type: r.headers.get("content-type") }).toEqual({
    status,
    body,
    type: "text/plain; charset=utf-8",
  });
}

let rig: Rig;
beforeEach(async () => {
  rig = await startRig();
});
afterEach(async () => {
  await rig.stop();
});
afterAll(() => {
  for (const d of dirs) Bun.spawnSync(["rm", "-rf", d]);
});

const allowedReq = { protocol: "http" as const, host: "allowed.test", port: 80, method: "POST", client: null };

describe("admin endpoints", () => {
  test("GET /health → 200 ok", async () => {
    await expectText(await get(rig.url("/health")), 200, "ok");
  });

  test("GET /config → the effective config with absolute CA paths and the current mode", async () => {
    rig.ctx.setMode("limited");
    const r = await get(rig.url("/config"));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    const body = (await r.json()) as { network_proxy: Record<string, any> };
    expect(Object.keys(body)).toEqual(["network_proxy"]);
    const np = body.network_proxy;
    expect(np.mode).toBe("limited");
    expect(np.policy.allowed_domains).toEqual(["allowed.test"]);
    expect(np.mitm.ca_cert_path).toBe(join(rig.file, "..", "network_proxy/mitm/ca.pem"));
    expect(np.mitm.ca_key_path).toBe(join(rig.file, "..", "network_proxy/mitm/ca.key"));
  });

  test("GET /patterns → configured strings", async () => {
    const r = await get(rig.url("/patterns"));
    expect(await r.json()).toEqual({ allowed: ["allowed.test"], denied: ["evil.test"] });
  });

  test("GET /blocked → oldest first, then drained", async () => {
    await rig.ctx.evaluate({ protocol: "http", host: "one.test", port: 80, method: "GET", client: "127.0.0.1:1" });
    await rig.ctx.evaluate({ protocol: "socks5_tcp", host: "evil.test", port: 443, method: null, client: null });
    const body = (await (await get(rig.url("/blocked"))).json()) as { blocked: any[] };
    expect(body.blocked.map(({ timestamp, ...e }) => (expect(typeof timestamp).toBe("number"), e))).toEqual([
      { host: "one.test", reason: "not_allowed", decision: "deny", source: "baseline_policy", client: "127.0.0.1:1", method: "GET", mode: "full", protocol: "http", port: 80 },
      { host: "evil.test", reason: "denied", decision: "deny", source: "baseline_policy", client: null, method: null, mode: "full", protocol: "socks5", port: 443 },
    ]);
    expect(await (await get(rig.url("/blocked"))).json()).toEqual({ blocked: [] });
  });

  test("POST /mode switches the mode", async () => {
    const r = await post(rig.url("/mode"), JSON.stringify({ mode: "limited" }));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok", mode: "limited" });
    expect(rig.ctx.config().mode).toBe("limited");
    expect(await rig.ctx.evaluate(allowedReq)).toMatchObject({ action: "deny", reason: "method_not_allowed" });
  });

  test("POST /mode errors: 413, 400 missing body, 400 invalid json, 400 naming the accepted modes", async () => {
    await expectText(await post(rig.url("/mode"), "x".repeat(8 * 1024 + 1)), 413, "body too large");
    // Without Content-Length (chunked): the limit still holds.
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 3; i++) c.enqueue(new Uint8Array(4096).fill(0x20));
        c.close();
      },
    });
    await expectText(await post(rig.url("/mode"), stream), 413, "body too large");
    await expectText(await post(rig.url("/mode")), 400, "missing body");
    await expectText(await post(rig.url("/mode"), ""), 400, "missing body");
    for (const bad of ["{", "\xff", "mode=full"]) {
      await expectText(await post(rig.url("/mode"), bad), 400, "invalid json");
    }
    for (const bad of ['{"mode":"FULL"}', '{"mode":"LIMITED"}', '{"mode":"readonly"}', '{"mode":1}', "{}", "null", "[]"]) {
      await expectText(await post(rig.url("/mode"), bad), 400, 'mode must be "limited" or "full"');
    }
    expect(rig.ctx.config().mode).toBe("full");
    // Exactly 8 KiB is accepted (whitespace-padded JSON).
    const padded = JSON.stringify({ mode: "limited" }).padEnd(8 * 1024, " ");
    expect((await post(rig.url("/mode"), padded)).status).toBe(200);
  });

  test("anything else → 404 not found", async () => {
    await expectText(await get(rig.url("/nope")), 404, "not found");
    await expectText(await get(rig.url("/mode")), 404, "not found");
    await expectText(await post(rig.url("/health"), "x"), 404, "not found");
    await expectText(await fetch(rig.url("/config"), { method: "DELETE", proxy: false }), 404, "not found");
    await expectText(await get(rig.url("/health/")), 404, "not found");
  });

  test("routing ignores the query string", async () => {
    await expectText(await get(rig.url("/health?verbose=1")), 200, "ok");
  });

  test("GET /metrics → Prometheus text with decisions counted", async () => {
    await rig.ctx.evaluate({ protocol: "http", host: "one.test", port: 80, method: "GET", client: null });
    const r = await get(rig.url("/metrics"));
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const m = parseProm(await r.text());
    expect(m.get('codex_network_proxy_requests_total{protocol="http",decision="deny",reason="not_allowed"}')).toBe(1);
    expect(m.get("codex_network_proxy_open_tunnels")).toBe(0);
  });

  test("browser-driven requests are refused (Origin header, foreign Host)", async () => {
    await expectText(await post(rig.url("/mode"), '{"mode":"full"}', { origin: "https://evil.example" }), 403, "forbidden");
    await expectText(await get(rig.url("/config"), { host: "rebind.evil.example" }), 403, "forbidden");
    await expectText(await get(rig.url("/health"), { host: `localhost:${rig.admin.port}` }), 200, "ok");
  });

  test("a cross-site <img src=/blocked> (Sec-Fetch-Site, no Origin) cannot drain the block log (issue 8 row 9)", async () => {
    rig.ctx.recorder.drain();
    await rig.ctx.evaluate({ protocol: "http", host: "img.test", port: 80, method: "GET", client: null });
    const img = { "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image" };
    await expectText(await get(rig.url("/blocked"), img), 403, "forbidden");
    await expectText(await get(rig.url("/metrics"), { "sec-fetch-site": "same-site" }), 403, "forbidden");
    // The entry is still there for the operator; a typed URL (Sec-Fetch-Site: none) is no attack.
    const r = await get(rig.url("/blocked"), { "sec-fetch-site": "none" });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { blocked: Array<{ host: string }> }).blocked.map((b) => b.host)).toEqual(["img.test"]);
  });
});

describe("reload", () => {
  test("POST /reload applies the file, answers the diff and reverts /mode", async () => {
    expect((await post(rig.url("/mode"), '{"mode":"limited"}')).status).toBe(200);
    replaceFile(rig.file, toml(["other.test", "new.test"]));
    const r = await post(rig.url("/reload"));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      status: "reloaded",
      allowed: { added: ["other.test", "new.test"], removed: ["allowed.test"] },
      denied: { added: [], removed: [] },
    });
    expect(rig.ctx.config().mode).toBe("full");
    expect(await (await get(rig.url("/patterns"))).json()).toEqual({ allowed: ["other.test", "new.test"], denied: ["evil.test"] });
    expect(await rig.ctx.evaluate(allowedReq)).toMatchObject({ action: "deny", reason: "not_allowed" });
  });

  test("a broken edit keeps the old policy; the error shows in /health and /config until fixed", async () => {
    await rig.ctx.evaluate({ protocol: "http", host: "kept.test", port: 80, method: "GET", client: null });
    replaceFile(rig.file, toml(["allowed.test"]) + "typo_key = true\n");
    await expectText(await post(rig.url("/reload")), 500, "reload failed");
    expect((await rig.ctx.evaluate(allowedReq)).action).toBe("allow");
    const health = await (await get(rig.url("/health"))).text();
    expect(health).toStartWith("ok\nlast reload failed: ");
    expect(health).toContain("typo_key");
    const cfg = (await (await get(rig.url("/config"))).json()) as Record<string, any>;
    expect(cfg.last_reload_error).toContain("typo_key");
    expect(cfg.network_proxy.policy.allowed_domains).toEqual(["allowed.test"]);
    expect(rig.lines.some((l) => l.startsWith("ERROR: config reload failed; keeping the last good config:"))).toBe(true);
    // The recorder survives reloads, failed or not.
    replaceFile(rig.file, toml(["allowed.test", "x.test"]));
    expect((await post(rig.url("/reload"))).status).toBe(200);
    await expectText(await get(rig.url("/health")), 200, "ok");
    expect(((await (await get(rig.url("/blocked"))).json()) as any).blocked[0].host).toBe("kept.test");
    const m = parseProm(await (await get(rig.url("/metrics"))).text());
    expect(m.get('codex_network_proxy_config_reloads_total{result="error"}')).toBe(1);
    expect(m.get('codex_network_proxy_config_reloads_total{result="ok"}')).toBe(1);
  });

  test("an invalid glob fails the reload", async () => {
    replaceFile(rig.file, toml(["["]));
    await expectText(await post(rig.url("/reload")), 500, "reload failed");
    expect(rig.reloader.lastError()).toContain("invalid glob pattern");
  });

  test("a change of the file is picked up by the watch", async () => {
    const w = await startRig({ watch: true });
    try {
      const done = Promise.withResolvers<ReloadResult>();
      w.reloader.onReload((r) => done.resolve(r));
      replaceFile(w.file, toml(["watched.test"]));
      // Bounded: fail instead of hanging if the watch never fires.
      const r = await within(done.promise, 5000, "the file watch to reload");
      expect(r).toEqual({
        ok: true,
        trigger: "file",
        diff: { allowed: { added: ["watched.test"], removed: ["allowed.test"] }, denied: { added: [], removed: [] } },
      });
      expect(w.ctx.config().policy.allowedDomains).toEqual(["watched.test"]);
    } finally {
      await w.stop();
    }
  });

  test("concurrent reload triggers never overlap", async () => {
    let active = 0;
    let maxActive = 0;
    const { log } = captureLogger();
    const r = createReloader({
      file: rig.file,
      watch: false,
      log,
      current: () => rig.ctx.loadedConfig(),
      load: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        const cfg = await loadConfig(rig.file);
        active--;
        return cfg;
      },
      apply: (c) => rig.ctx.setConfig(c),
    });
    const results = await Promise.all([r.reload(), r.reload(), r.reload(), r.reload()]);
    expect(results.every((x) => x.ok)).toBe(true);
    expect(maxActive).toBe(1);
    r.stop();
  });
});

describe("admin token", () => {
  test("every request needs the bearer token", async () => {
    const dir = tempDir();
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "s3cret-token\n", { mode: 0o600 });
    const token = readAdminToken(tokenFile);
    expect(new TextDecoder().decode(token)).toBe("s3cret-token");
    const t = await startRig({ token });
    try {
      await expectText(await get(t.url("/health")), 401, "unauthorized");
      await expectText(await get(t.url("/health"), { authorization: "Bearer wrong" }), 401, "unauthorized");
      await expectText(await get(t.url("/health"), { authorization: "Basic s3cret-token" }), 401, "unauthorized");
      await expectText(await post(t.url("/mode"), '{"mode":"limited"}'), 401, "unauthorized");
      expect(t.ctx.config().mode).toBe("full");
      await expectText(await get(t.url("/health"), { authorization: "Bearer s3cret-token" }), 200, "ok");
      await expectText(await get(t.url("/nope"), { authorization: "bearer s3cret-token" }), 404, "not found");
      // The token never appears in the log.
      expect(t.lines.join("\n")).not.toContain("s3cret");
    } finally {
      await t.stop();
    }
  });

  test("an empty or missing token file is an error naming the file, not the content", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "empty"), "\n");
    expect(() => readAdminToken(join(dir, "empty"))).toThrow(`admin token file ${join(dir, "empty")} is empty`);
    expect(() => readAdminToken(join(dir, "missing"))).toThrow(`cannot read admin token file ${join(dir, "missing")}: ENOENT`);
  });
});
