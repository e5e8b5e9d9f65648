/**
 * Codex's current config shapes (SPEC-network §11): a JSON file `{"network":{…}}` and
 * `[permissions.<profile>.network]` with `--profile`, validated strictly with file + key path
 * errors, giving the same RuntimeConfig (hence the same decisions) as the equivalent
 * `[network_proxy]` table, and shown by `check-config` in the normal form.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../src/network/config.ts";
import { compilePolicy, evaluatePolicy } from "../../src/network/policy.ts";
import { runCli } from "../../src/network/cli.ts";
import type { PolicyRequest, RuntimeConfig } from "../../src/network/types.ts";
import { tempDir } from "./clients/helpers.ts";

const TABLE = `
[network_proxy]
mode = "limited"
proxy_url = "127.0.0.1:3999"
enable_socks5 = false
[network_proxy.policy]
allowed_domains = ["*.example.com", "api.openai.com", "127.0.0.1"]
denied_domains = ["evil.example.com"]
allow_unix_sockets = ["/run/docker.sock"]
[network_proxy.mitm]
enabled = true
`;

const NETWORK = {
  mode: "limited",
  proxy_url: "127.0.0.1:3999",
  enable_socks5: false,
  domains: { "*.example.com": "allow", "api.openai.com": "allow", "evil.example.com": "deny", "127.0.0.1": "allow" },
  unix_sockets: { "/run/docker.sock": "allow" },
  mitm: true,
};

const PROFILE = `
model = "o3"
[permissions.dev.network]
mode = "limited"
proxy_url = "127.0.0.1:3999"
enable_socks5 = false
mitm = true
[permissions.dev.network.domains]
"*.example.com" = "allow"
"api.openai.com" = "allow"
"evil.example.com" = "deny"
"127.0.0.1" = "allow"
[permissions.dev.network.unix_sockets]
"/run/docker.sock" = "allow"
[permissions.other.network]
mode = "full"
`;

const byDomainOrder = (c: RuntimeConfig) => ({ ...c, policy: { ...c.policy, allowedDomains: [...c.policy.allowedDomains].sort() } });

describe("same config from every shape", () => {
  const base = parseConfig(TABLE, "/etc/codex/config.toml");
  const fromJson = parseConfig(JSON.stringify({ network: NETWORK, otel: {} }), "/etc/codex/network.json");
  const warnings: string[] = [];
  const fromProfile = parseConfig(PROFILE + TABLE.replace("limited", "full"), "/etc/codex/config.toml", { profile: "dev" }, (m) => warnings.push(m));

  test("RuntimeConfig equal (lists as sets)", () => {
    expect(byDomainOrder(fromJson)).toEqual(byDomainOrder(base));
    expect(byDomainOrder(fromProfile)).toEqual(byDomainOrder(base));
    expect(warnings).toEqual(["/etc/codex/config.toml: [network_proxy] is ignored: --profile dev selects [permissions.dev.network]"]);
  });

  test("same decisions", async () => {
    const resolver = async (h: string) => (h.endsWith(".example.com") || h === "api.openai.com" ? ["93.184.216.34"] : []);
    const reqs: PolicyRequest[] = [
      { protocol: "http", host: "a.example.com", port: 80, method: "GET", client: null },
      { protocol: "http", host: "evil.example.com", port: 80, method: "GET", client: null },
      { protocol: "http", host: "api.openai.com", port: 80, method: "POST", client: null },
      { protocol: "https_connect", host: "127.0.0.1", port: 443, method: "CONNECT", client: null },
      { protocol: "http", host: "other.test", port: 80, method: "GET", client: null },
    ];
    const decide = (cfg: RuntimeConfig) =>
      Promise.all(reqs.map((r) => evaluatePolicy(compilePolicy(cfg), { enabled: cfg.enabled, mode: cfg.mode, mitmEnabled: cfg.mitm.enabled }, r, resolver)));
    const want = await decide(base);
    expect(want.map((v) => (v.action === "deny" ? v.reason : v.action))).toEqual(["allow", "denied", "method_not_allowed", "allow", "not_allowed"]);
    expect(await decide(fromJson)).toEqual(want);
    expect(await decide(fromProfile)).toEqual(want);
  });

  test("mitm as a table, flat policy keys", () => {
    const c = parseConfig(JSON.stringify({ network: { allowed_domains: ["a.test"], allow_local_binding: true, mitm: { enabled: true, ca_mode: "ephemeral" } } }), "/x/n.json");
    expect(c.policy).toEqual({ allowedDomains: ["a.test"], deniedDomains: [], allowLocalBinding: true, allowUnixSockets: [] });
    expect(c.mitm).toMatchObject({ enabled: true, caMode: "ephemeral", caCertPath: "/x/network_proxy/mitm/ca.pem" });
  });
});

describe("errors name the file and the key as written", () => {
  const err = (text: string, file: string, profile?: string) => {
    try {
      parseConfig(text, file, profile ? { profile } : {});
    } catch (e) {
      return (e as Error).message;
    }
    return "no error";
  };
  test.each([
    [JSON.stringify({ network: { mode: "limted" } }), "/c/n.json", undefined, '/c/n.json: network.mode: expected one of "limited", "full", got "limted"'],
    [JSON.stringify({ network: { domains: { "a.test": "allowed" } } }), "/c/n.json", undefined, '/c/n.json: network.domains."a.test": expected "allow" or "deny", got "allowed"'],
    [JSON.stringify({ network: { domains: { "[": "allow" } } }), "/c/n.json", undefined, '/c/n.json: network.domains."[": invalid glob pattern: ['],
    [JSON.stringify({ network: { domains: { "*": "deny" } } }), "/c/n.json", undefined, "/c/n.json: network.domains.\"*\":"],
    [JSON.stringify({ network: { allowed_domain: [] } }), "/c/n.json", undefined, "/c/n.json: network.allowed_domain: unknown key"],
    [JSON.stringify({ network: { mitm: { enable: true } } }), "/c/n.json", undefined, "/c/n.json: network.mitm.enable: unknown key"],
    [JSON.stringify({ network: { unix_sockets: { "rel/x.sock": "allow" } } }), "/c/n.json", undefined, '/c/n.json: network.unix_sockets."rel/x.sock": must be an absolute path'],
    [JSON.stringify({ network: 3 }), "/c/n.json", undefined, "/c/n.json: network: expected a table"],
    ["{", "/c/n.json", undefined, "/c/n.json: invalid JSON:"],
    ["[permissions.dev.network]\nmode = 1\n", "/c/config.toml", "dev", "/c/config.toml: permissions.dev.network.mode: expected one of"],
    ["[permissions.dev.network.domains]\n\"x.test\" = true\n", "/c/config.toml", "dev", '/c/config.toml: permissions.dev.network.domains."x.test": expected "allow" or "deny", got true'],
    ["[permissions.dev.network]\nmode = \"full\"\n", "/c/config.toml", "prod", "/c/config.toml: permissions.prod.network: no [permissions.prod.network] table for --profile prod"],
  ])("%s (%s, profile %s)", (text, file, profile, want) => {
    expect(err(text, file, profile)).toStartWith(want);
  });
});

test("check-config prints a JSON config and a profile in the normal form", async () => {
  using dir = tempDir();
  const json = join(dir.path, "network.json");
  writeFileSync(json, JSON.stringify({ network: NETWORK }));
  const toml = join(dir.path, "config.toml");
  writeFileSync(toml, PROFILE);
  const outs: unknown[] = [];
  for (const argv of [["check-config", "--config", json], ["check-config", "--config", toml, "--profile", "dev"]]) {
    let out = "";
    let err = "";
    const code = await runCli(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {} });
    // stderr holds only check-config's summary line (issue 13).
    expect({ code, err: err.replace(/^\S+Z config: \S+ mode=limited allowed_domains=3 denied_domains=1 mitm=on\n$/, "") }).toEqual({ code: 0, err: "" });
    outs.push(JSON.parse(out));
  }
  expect(outs[0]).toEqual(outs[1]);
  expect((outs[0] as { network_proxy: { policy: unknown } }).network_proxy.policy).toEqual({
    allowed_domains: ["*.example.com", "api.openai.com", "127.0.0.1"],
    denied_domains: ["evil.example.com"],
    allow_local_binding: false,
    allow_unix_sockets: ["/run/docker.sock"],
  });
});
