import { describe, expect, test } from "bun:test";
import { configToJson, parseConfig } from "../../../src/network/config.ts";

const FILE = "/etc/codex/config.toml";

const GOOD = `
[network_proxy.mitm]
enabled = true

[[network_proxy.mitm.hooks]]
name = "github-read"
host = "api.github.com:443"
[network_proxy.mitm.hooks.match]
methods = ["get", "HEAD"]
path_prefixes = ["/repos/acme/"]
query = { per_page = ["100", "pattern:[0-9]*"], q = ["literal:pattern:x"] }
headers = { "X-GitHub-Api-Version" = ["2022-11-28"] }
[network_proxy.mitm.hooks.actions]
strip_request_headers = ["Cookie"]
inject_request_headers = [{ name = "authorization", secret_file = "/run/credentials/gh-token", prefix = "Bearer " }]

[[network_proxy.mitm.hooks]]
host = "registry.npmjs.org"
match = { methods = ["GET"], path_prefixes = ["/"] }
actions = { inject_request_headers = [{ name = "authorization", secret_env_var = "NPM_TOKEN" }] }
`;

/** The error text of a config, or null when it loads. */
function problem(text: string): string | null {
  try {
    parseConfig(text, FILE);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** A config with one hook whose tables are given as TOML lines. */
function oneHook(body: string, mitmEnabled = true): string {
  return `[network_proxy.mitm]\nenabled = ${mitmEnabled}\n[[network_proxy.mitm.hooks]]\n${body}\n`;
}

const MATCH = `match = { methods = ["GET"], path_prefixes = ["/"] }`;

describe("hook config (SPEC-network §10)", () => {
  test("a valid config compiles into HookSpecs (methods upper-case, header names lower-case)", () => {
    const cfg = parseConfig(GOOD, FILE);
    expect(cfg.mitm.hooks).toEqual([
      {
        name: "github-read",
        host: "api.github.com:443",
        match: {
          methods: ["GET", "HEAD"],
          pathPrefixes: ["/repos/acme/"],
          query: [
            ["per_page", [{ kind: "literal", value: "100" }, { kind: "pattern", glob: "[0-9]*" }]],
            ["q", [{ kind: "literal", value: "pattern:x" }]],
          ],
          headers: [["x-github-api-version", [{ kind: "literal", value: "2022-11-28" }]]],
        },
        actions: {
          stripRequestHeaders: ["cookie"],
          injectRequestHeaders: [{ name: "authorization", prefix: "Bearer ", source: { kind: "file", path: "/run/credentials/gh-token" } }],
        },
      },
      {
        name: null,
        host: "registry.npmjs.org",
        match: { methods: ["GET"], pathPrefixes: ["/"], query: [], headers: [] },
        actions: {
          stripRequestHeaders: [],
          injectRequestHeaders: [{ name: "authorization", prefix: "", source: { kind: "env", name: "NPM_TOKEN" } }],
        },
      },
    ]);
  });

  test("/config and check-config show secret sources, never values", () => {
    const json = configToJson(parseConfig(GOOD, FILE)).network_proxy as { mitm: { hooks: unknown[] } };
    expect(json.mitm.hooks).toEqual([
      {
        name: "github-read",
        host: "api.github.com:443",
        match: {
          methods: ["GET", "HEAD"],
          path_prefixes: ["/repos/acme/"],
          query: { per_page: ["100", "pattern:[0-9]*"], q: ["literal:pattern:x"] },
          headers: { "x-github-api-version": ["2022-11-28"] },
        },
        actions: {
          strip_request_headers: ["cookie"],
          inject_request_headers: [{ name: "authorization", prefix: "Bearer ", secret_file: "/run/credentials/gh-token" }],
        },
      },
      {
        host: "registry.npmjs.org",
        match: { methods: ["GET"], path_prefixes: ["/"], query: {}, headers: {} },
        actions: { strip_request_headers: [], inject_request_headers: [{ name: "authorization", prefix: "", secret_env_var: "NPM_TOKEN" }] },
      },
    ]);
  });

  /** [hook TOML, exact error text]. */
  const errors: Array<[string, string, boolean?]> = [
    [`host = "a.com"\n${MATCH}`, `${FILE}: network_proxy.mitm.hooks: hooks require network_proxy.mitm.enabled = true`, false],
    [`host = "a.com"\nmatch = { methods = [], path_prefixes = ["/"] }`, `${FILE}: network_proxy.mitm.hooks[0].match.methods: must not be empty`],
    [`host = "a.com"\nmatch = { methods = ["GET"], path_prefixes = [] }`, `${FILE}: network_proxy.mitm.hooks[0].match.path_prefixes: must not be empty`],
    [`host = "a.com"\nmatch = { methods = ["GET"] }`, `${FILE}: network_proxy.mitm.hooks[0].match.path_prefixes: expected array, got undefined`],
    [`host = "a.com"\nmatch = { methods = ["GET"], path_prefixes = ["repos/"] }`, `${FILE}: network_proxy.mitm.hooks[0].match.path_prefixes[0]: must start with "/"`],
    [`host = "a.com"\nmatch = { methods = ["G ET"], path_prefixes = ["/"] }`, `${FILE}: network_proxy.mitm.hooks[0].match.methods[0]: must be an HTTP method (RFC 9110 token)`],
    [`host = "a.com"\nmatch = { methods = ["GET"], path_prefixes = ["/"], query = { a = ["pattern:["] } }`, `${FILE}: network_proxy.mitm.hooks[0].match.query.a[0]: invalid glob pattern: [`],
    [`host = "a.com"\nmatch = { methods = ["GET"], path_prefixes = ["/"], headers = { "x y" = ["1"] } }`, `${FILE}: network_proxy.mitm.hooks[0].match.headers."x y": must be an HTTP field name (RFC 9110 token)`],
    [`host = "a.com"\nmatch = { methods = ["GET"], path_prefixes = ["/"], method = "GET" }`, `${FILE}: network_proxy.mitm.hooks[0].match.method: unknown key`],
    [`host = "a.com:99999"\n${MATCH}`, `${FILE}: network_proxy.mitm.hooks[0].host: invalid port in pattern: a.com:99999`],
    [`host = "a[.com"\n${MATCH}`, `${FILE}: network_proxy.mitm.hooks[0].host: invalid glob pattern: a[.com`],
    [`host = "a.com"\n${MATCH}\nactions = { inject_request_headers = [{ name = "authorization" }] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject_request_headers[0]: exactly one of secret_file or secret_env_var is required`],
    [`host = "a.com"\n${MATCH}\nactions = { inject_request_headers = [{ name = "authorization", secret_file = "/a", secret_env_var = "B" }] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject_request_headers[0]: exactly one of secret_file or secret_env_var is required`],
    [`host = "a.com"\n${MATCH}\nactions = { inject_request_headers = [{ name = "authorization", secret_file = "tok" }] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject_request_headers[0].secret_file: must be an absolute path`],
    [`host = "a.com"\n${MATCH}\nactions = { inject_request_headers = [{ name = "Host", secret_file = "/a" }] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject_request_headers[0].name: cannot inject this field (the proxy owns it)`],
    [`host = "a.com"\n${MATCH}\nactions = { inject_request_headers = [{ name = "x", prefix = "a\\nb", secret_file = "/a" }] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject_request_headers[0].prefix: must be visible ASCII, spaces or tabs`],
    [`host = "a.com"\n${MATCH}\nactions = { inject_request_headers = [{ name = "x", secret_env_var = "1X" }] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject_request_headers[0].secret_env_var: must be an environment variable name`],
    [`host = "a.com"\n${MATCH}\nactions = { inject = [] }`, `${FILE}: network_proxy.mitm.hooks[0].actions.inject: unknown key`],
    [`name = ""\nhost = "a.com"\n${MATCH}`, `${FILE}: network_proxy.mitm.hooks[0].name: must not be empty`],
  ];
  test.each(errors)("%p → %p", (body, want, mitm = true) => {
    expect(problem(oneHook(body, mitm))).toBe(want);
  });

  test("allowed_domains and denied_domains take host:port too", () => {
    const cfg = parseConfig(`[network_proxy.policy]\nallowed_domains = ["a.com:443", "[::1]:8080"]\ndenied_domains = ["b.com:22"]\n`, FILE);
    expect([cfg.policy.allowedDomains, cfg.policy.deniedDomains]).toEqual([["a.com:443", "[::1]:8080"], ["b.com:22"]]);
    expect(problem(`[network_proxy.policy]\nallowed_domains = ["a.com:0"]\n`)).toBe(
      `${FILE}: network_proxy.policy.allowed_domains[0]: invalid port in pattern: a.com:0`,
    );
  });
});
