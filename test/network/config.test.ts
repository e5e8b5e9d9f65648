import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/network/config-error.ts";
import {
  configToJson,
  defaultConfigPath,
  loadConfig,
  parseConfig,
} from "../../src/network/config.ts";
import type { RuntimeConfig } from "../../src/network/types.ts";

const dir = mkdtempSync(join(tmpdir(), "codex-netcfg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILE = "/etc/codex/config.toml";

/** The message `parseConfig` throws for `text`, or null. */
function errorOf(text: string, overrides = {}): string | null {
  try {
    parseConfig(text, FILE, overrides);
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
}

const DEFAULTS: RuntimeConfig = {
  enabled: true,
  mode: "full",
  proxyUrl: "http://127.0.0.1:3128",
  adminUrl: "http://127.0.0.1:8080",
  enableSocks5: true,
  socksUrl: "http://127.0.0.1:8081",
  enableSocks5Udp: false,
  allowUpstreamProxy: false,
  dangerouslyAllowNonLoopbackProxy: false,
  dangerouslyAllowNonLoopbackAdmin: false,
  maxConnections: 8192,
  policy: { allowedDomains: [], deniedDomains: [], allowLocalBinding: false, allowUnixSockets: [] },
  mitm: {
    enabled: false,
    inspect: false,
    maxBodyBytes: 4096,
    caCertPath: "/etc/codex/network_proxy/mitm/ca.pem",
    caKeyPath: "/etc/codex/network_proxy/mitm/ca.key",
    hooks: [],
    caMode: "file",
  },
  adminTokenFile: null,
};

describe("parseConfig", () => {
  test("empty text, other tables and an empty [network_proxy] all mean the defaults of §2", () => {
    expect(parseConfig("", FILE)).toEqual(DEFAULTS);
    expect(parseConfig('model = "o3"\n[profiles.x]\nfoo = 1\n', FILE)).toEqual(DEFAULTS);
    expect(parseConfig("[network_proxy]\n", FILE)).toEqual(DEFAULTS);
  });

  test("every key is read", () => {
    const text = `
[network_proxy]
enabled = false
proxy_url = "http://127.0.0.1:1"
admin_url = "127.0.0.1:2"
enable_socks5 = false
socks_url = "socks5://127.0.0.1:3"
enable_socks5_udp = true
allow_upstream_proxy = true
dangerously_allow_non_loopback_proxy = true
dangerously_allow_non_loopback_admin = true
mode = "limited"
admin_token_file = "secrets/admin.token"
max_connections = 100
[network_proxy.policy]
allowed_domains = ["*.openai.com", "**.github.com"]
denied_domains = ["evil.example"]
allow_local_binding = true
allow_unix_sockets = ["/tmp/example.sock"]
[network_proxy.mitm]
enabled = true
inspect = true
max_body_bytes = 10
ca_cert_path = "/abs/ca.pem"
ca_key_path = "rel/ca.key"
`;
    expect(parseConfig(text, FILE)).toEqual({
      enabled: false,
      mode: "limited",
      proxyUrl: "http://127.0.0.1:1",
      adminUrl: "127.0.0.1:2",
      enableSocks5: false,
      socksUrl: "socks5://127.0.0.1:3",
      enableSocks5Udp: true,
      allowUpstreamProxy: true,
      dangerouslyAllowNonLoopbackProxy: true,
      dangerouslyAllowNonLoopbackAdmin: true,
      maxConnections: 100,
      policy: {
        allowedDomains: ["*.openai.com", "**.github.com"],
        deniedDomains: ["evil.example"],
        allowLocalBinding: true,
        allowUnixSockets: ["/tmp/example.sock"],
      },
      mitm: { enabled: true, inspect: true, maxBodyBytes: 10, caCertPath: "/abs/ca.pem", caKeyPath: "/etc/codex/rel/ca.key", caMode: "file", hooks: [] },
      adminTokenFile: "/etc/codex/secrets/admin.token",
    });
  });

  test("CLI overrides: allow/deny append, mode and listener addresses replace", () => {
    const cfg = parseConfig(
      '[network_proxy]\nmode = "full"\n[network_proxy.policy]\nallowed_domains = ["a.test"]\ndenied_domains = ["b.test"]\n',
      FILE,
      { mode: "limited", allow: ["c.test"], deny: ["d.test"], http: "127.0.0.1:0", socks: "127.0.0.1:0", admin: "[::1]:0" },
    );
    expect(cfg).toEqual({
      ...DEFAULTS,
      mode: "limited",
      proxyUrl: "127.0.0.1:0",
      socksUrl: "127.0.0.1:0",
      adminUrl: "[::1]:0",
      policy: { ...DEFAULTS.policy, allowedDomains: ["a.test", "c.test"], deniedDomains: ["b.test", "d.test"] },
    });
  });

  /** [config text, exact error message]. */
  const errors: Array<[string, string]> = [
    ["[network_proxy]\nmode = \"Full\"\n", `${FILE}: network_proxy.mode: expected one of "limited", "full", got "Full"`],
    ["[network_proxy]\nmode = \"LIMITED\"\n", `${FILE}: network_proxy.mode: expected one of "limited", "full", got "LIMITED"`],
    ["[network_proxy]\nenabled = \"yes\"\n", `${FILE}: network_proxy.enabled: expected boolean, got string`],
    ["[network_proxy]\nallow_upstrem_proxy = true\n", `${FILE}: network_proxy.allow_upstrem_proxy: unknown key`],
    ["[network_proxy.policy]\nallowed_domain = []\n", `${FILE}: network_proxy.policy.allowed_domain: unknown key`],
    ["[network_proxy.mitm]\nca_path = \"x\"\n", `${FILE}: network_proxy.mitm.ca_path: unknown key`],
    [
      '[network_proxy.policy]\nallowed_domains = ["a.com", "b.com", "["]\n',
      `${FILE}: network_proxy.policy.allowed_domains[2]: invalid glob pattern: [`,
    ],
    [
      '[network_proxy.policy]\nallowed_domains = ["a.com", 3]\n',
      `${FILE}: network_proxy.policy.allowed_domains[1]: expected string, got integer`,
    ],
    [
      '[network_proxy.policy]\ndenied_domains = ["x.com", "*"]\n',
      `${FILE}: network_proxy.policy.denied_domains[1]: unsupported global wildcard domain pattern "*" in denied_domains; use exact hosts or scoped wildcards like *.example.com or **.example.com`,
    ],
    [
      '[network_proxy.policy]\nallow_unix_sockets = ["relative.sock"]\n',
      `${FILE}: network_proxy.policy.allow_unix_sockets[0]: must be an absolute path`,
    ],
    ["[network_proxy.policy]\nallow_local_binding = 1\n", `${FILE}: network_proxy.policy.allow_local_binding: expected boolean, got integer`],
    ["[network_proxy.mitm]\nmax_body_bytes = -1\n", `${FILE}: network_proxy.mitm.max_body_bytes: must be >= 0`],
    ["[network_proxy.mitm]\nmax_body_bytes = 1.5\n", `${FILE}: network_proxy.mitm.max_body_bytes: expected integer, got float`],
    ["[network_proxy]\nproxy_url = \"  \"\n", `${FILE}: network_proxy.proxy_url: missing host in network proxy address:   `],
    ["[network_proxy]\npolicy = 3\n", `${FILE}: network_proxy.policy: expected table, got integer`],
    ["network_proxy = 3\n", `${FILE}: network_proxy: expected a table`],
    [
      "[network_proxy]\nmode = \"full\"\nfoo = 1\n[network_proxy.policy]\nallowed_domains = [\"[\"]\n",
      `${FILE}: network_proxy.policy.allowed_domains[0]: invalid glob pattern: [\n${FILE}: network_proxy.foo: unknown key`,
    ],
    ["[network_proxy]\nmode = \n", `${FILE}:2:8: invalid TOML: invalid value`],
    ["[network_proxy]\nenabled = true\nenabled = false\n", `${FILE}:3:1: invalid TOML: trying to redefine an already defined table or value`],
  ];
  test.each(errors)("%p → %p", (text, message) => {
    expect(errorOf(text)).toBe(message);
  });

  test("issues are also available as data", () => {
    try {
      parseConfig('[network_proxy.policy]\nallowed_domains = ["ok", "["]\n', FILE);
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect((e as ConfigError).issues).toEqual([
        { path: "network_proxy.policy.allowed_domains[1]", message: "invalid glob pattern: [" },
      ]);
    }
  });

  test("bad CLI overrides are reported under the flag", () => {
    expect(errorOf("", { allow: ["ok.test", "a[b"], deny: ["*"], http: "", mode: "Full" })).toBe(
      [
        `${FILE}: --mode: expected "limited" or "full", got "Full"`,
        `${FILE}: --allow: invalid glob pattern: a[b`,
        `${FILE}: --deny: unsupported global wildcard domain pattern "*" in denied_domains; use exact hosts or scoped wildcards like *.example.com or **.example.com`,
        `${FILE}: --http: missing host in network proxy address: `,
      ].join("\n"),
    );
  });
});

describe("loadConfig", () => {
  test("a missing file means the defaults, CA paths relative to its folder", async () => {
    const file = join(dir, "missing", "config.toml");
    expect(await loadConfig(file)).toEqual({
      ...DEFAULTS,
      mitm: {
        ...DEFAULTS.mitm,
        caCertPath: join(dir, "missing", "network_proxy/mitm/ca.pem"),
        caKeyPath: join(dir, "missing", "network_proxy/mitm/ca.key"),
      },
    });
  });

  test("~/ paths start at the home folder", () => {
    const cfg = parseConfig('[network_proxy.mitm]\nca_cert_path = "~/ca/ca.pem"\n', FILE);
    expect(cfg.mitm.caCertPath).toBe(join(process.env.HOME || homedir(), "ca/ca.pem"));
  });

  test("reads the file and resolves relative CA paths against its folder", async () => {
    const file = join(dir, "config.toml");
    writeFileSync(file, '[network_proxy.mitm]\nca_cert_path = "certs/ca.pem"\n[network_proxy.policy]\nallowed_domains = ["x.test"]\n');
    const cfg = await loadConfig(file, { allow: ["y.test"] });
    expect([cfg.mitm.caCertPath, cfg.mitm.caKeyPath, cfg.policy.allowedDomains]).toEqual([
      join(dir, "certs/ca.pem"),
      join(dir, "network_proxy/mitm/ca.key"),
      ["x.test", "y.test"],
    ]);
  });

  test("an unreadable path is a ConfigError naming the file", async () => {
    const err = await loadConfig(dir).catch((e) => e);
    expect(err).toEqual(new ConfigError(`${dir}: cannot read config file (EISDIR)`));
  });
});

describe("defaultConfigPath", () => {
  test("CODEX_HOME, else ~/.codex", () => {
    expect(defaultConfigPath({ CODEX_HOME: "/srv/codex", HOME: "/home/u" })).toBe("/srv/codex/config.toml");
    expect(defaultConfigPath({ HOME: "/home/u" })).toBe("/home/u/.codex/config.toml");
    expect(defaultConfigPath({ CODEX_HOME: "", HOME: "/home/u" })).toBe("/home/u/.codex/config.toml");
  });
});

describe("configToJson", () => {
  test("the GET /config shape: snake_case, absolute CA paths", () => {
    expect(configToJson(parseConfig('[network_proxy]\nmode = "limited"\n', FILE))).toEqual({
      network_proxy: {
        enabled: true,
        proxy_url: "http://127.0.0.1:3128",
        admin_url: "http://127.0.0.1:8080",
        enable_socks5: true,
        socks_url: "http://127.0.0.1:8081",
        enable_socks5_udp: false,
        allow_upstream_proxy: false,
        dangerously_allow_non_loopback_proxy: false,
        dangerously_allow_non_loopback_admin: false,
        max_connections: 8192,
        mode: "limited",
        policy: { allowed_domains: [], denied_domains: [], allow_local_binding: false, allow_unix_sockets: [] },
        mitm: {
          enabled: false,
          inspect: false,
          max_body_bytes: 4096,
          ca_cert_path: "/etc/codex/network_proxy/mitm/ca.pem",
          ca_key_path: "/etc/codex/network_proxy/mitm/ca.key",
          hooks: [],
          ca_mode: "file",
        },
        admin_token_file: null,
      },
    });
  });

  test("round-trips through TOML-shaped input", () => {
    const cfg = parseConfig('[network_proxy.policy]\nallowed_domains = ["a.test"]\n', FILE);
    const json = configToJson(cfg).network_proxy as Record<string, unknown>;
    const { admin_token_file: _t, ...table } = json;
    expect(parseConfig(toToml(table), FILE)).toEqual(cfg);
  });
});

/** Minimal TOML writer for the flat-with-subtables shape of `configToJson`. */
function toToml(table: Record<string, unknown>): string {
  const scalars: string[] = [];
  const subs: string[] = [];
  for (const [k, v] of Object.entries(table)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      subs.push(`[network_proxy.${k}]`);
      for (const [k2, v2] of Object.entries(v)) subs.push(`${k2} = ${JSON.stringify(v2)}`);
    } else {
      scalars.push(`${k} = ${JSON.stringify(v)}`);
    }
  }
  return ["[network_proxy]", ...scalars, ...subs].join("\n") + "\n";
}

describe("required files and warnings (issue 13)", () => {
  test("required: a missing file is an error, not the defaults (--config, reloads)", async () => {
    const file = join(dir, "nope", "config.toml");
    expect(await loadConfig(file, {}, undefined, { required: true }).catch((e) => e)).toEqual(new ConfigError(`${file}: config file not found`));
  });

  test("warn: only for a file that was read and has no [network_proxy] table", async () => {
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    const file = join(dir, "other-tables.toml");
    writeFileSync(file, 'model = "o3"\n');
    await loadConfig(file, {}, warn);
    await loadConfig(join(dir, "absent.toml"), {}, warn);
    parseConfig("[network_proxy]\n", FILE, {}, warn);
    expect(warnings).toEqual([`${file} has no [network_proxy] table; the defaults apply`]);
  });

  test("a near-miss table is an error even next to [network_proxy]", () => {
    expect(errorOf('[network_proxy]\nmode = "full"\n[network_proxy_]\nx = 1\n')).toBe(
      `${FILE}: network_proxy_: table [network_proxy_] is not read: did you mean [network_proxy]?`,
    );
    expect(errorOf('[network]\nx = 1\n[proxy]\ny = 2\n[model_providers.proxy]\nbase_url = "x"\n')).toBeNull();
  });
});
