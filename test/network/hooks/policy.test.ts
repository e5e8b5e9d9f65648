import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../../src/network/config.ts";
import { compilePolicy, evaluatePolicy, explainDeny, type PolicyState } from "../../../src/network/policy.ts";
import type { PolicyRequest } from "../../../src/network/types.ts";

const cfg = parseConfig(
  `
[network_proxy.policy]
allowed_domains = ["api.github.com", "github.com", "example.org", "denied-too.test"]
denied_domains = ["denied-too.test"]
[network_proxy.mitm]
enabled = true
[[network_proxy.mitm.hooks]]
name = "gh"
host = "api.github.com:443"
match = { methods = ["GET", "POST"], path_prefixes = ["/repos/acme/"] }
[[network_proxy.mitm.hooks]]
host = "denied-too.test"
match = { methods = ["GET"], path_prefixes = ["/"] }
`,
  "/c.toml",
);
const p = compilePolicy(cfg);
const resolver = async () => ["140.82.112.6"];
const FULL: PolicyState = { enabled: true, mode: "full", mitmEnabled: true };
const LIMITED: PolicyState = { enabled: true, mode: "limited", mitmEnabled: true };

function req(protocol: PolicyRequest["protocol"], host: string, port: number, method: string | null, target?: string): PolicyRequest {
  return { protocol, host, port, method, client: null, ...(target === undefined ? {} : { target, headers: [] }) };
}

/** The verdict as [action, reason or hook label or intercept, source]. */
async function judge(state: PolicyState, r: PolicyRequest): Promise<string> {
  const v = await evaluatePolicy(p, state, r, resolver);
  if (v.action === "deny") return `deny ${v.reason} ${v.source}`;
  if (v.action === "error") return "error";
  return `allow${v.intercept ? " intercept" : ""}${v.hook ? ` hook=${v.hook.label}` : ""}`;
}

describe("the MITM hook step of the policy (SPEC-network §10)", () => {
  const table: Array<[PolicyState, PolicyRequest, string]> = [
    // hooked tunnels are intercepted in both modes
    [FULL, req("https_connect", "api.github.com", 443, "CONNECT"), "allow intercept"],
    [LIMITED, req("https_connect", "api.github.com", 443, "CONNECT"), "allow intercept"],
    [FULL, req("socks5_tcp", "api.github.com", 443, null), "allow intercept"],
    // not hooked: full mode splices, limited mode looks inside
    [FULL, req("https_connect", "github.com", 443, "CONNECT"), "allow"],
    [LIMITED, req("https_connect", "github.com", 443, "CONNECT"), "allow intercept"],
    [FULL, req("https_connect", "api.github.com", 8443, "CONNECT"), "allow"],
    // no running MITM: a hooked tunnel cannot be judged
    [{ ...FULL, mitmEnabled: false }, req("https_connect", "api.github.com", 443, "CONNECT"), "deny mitm_required proxy_state"],
    // plaintext to a hooked host
    [FULL, req("http", "api.github.com", 443, "GET", "/repos/acme/x"), "deny mitm_required mitm_hook"],
    [FULL, req("socks5_tcp", "api.github.com", 443, "GET", "/repos/acme/x"), "deny mitm_required mitm_hook"],
    [FULL, req("socks5_udp", "api.github.com", 443, null), "deny mitm_required mitm_hook"],
    // decrypted requests
    [FULL, req("https", "api.github.com", 443, "GET", "/repos/acme/x"), "allow hook=gh"],
    [FULL, req("https", "api.github.com", 443, "POST", "/repos/acme/x"), "allow hook=gh"],
    [FULL, req("https", "api.github.com", 443, "DELETE", "/repos/acme/x"), "deny mitm_hook_denied mitm_hook"],
    [FULL, req("https", "api.github.com", 443, "GET", "/repos/acme/../x"), "deny mitm_hook_denied mitm_hook"],
    // hooks only narrow: the mode's method rule still applies after a match
    [LIMITED, req("https", "api.github.com", 443, "POST", "/repos/acme/x"), "deny method_not_allowed mode_guard"],
    // limited mode's git-fetch read rule still applies after a match
    [LIMITED, { ...req("https", "api.github.com", 443, "POST", "/repos/acme/x.git/git-upload-pack"), gitFetch: true }, "allow hook=gh"],
    // ... and the host policy runs first
    [FULL, req("https", "denied-too.test", 443, "GET", "/"), "deny denied baseline_policy"],
    [FULL, req("https_connect", "unlisted.test", 443, "CONNECT"), "deny not_allowed baseline_policy"],
  ];
  test.each(table)("%p %p → %p", async (state, r, want) => {
    expect(await judge(state, r)).toBe(want);
  });

  test("hints name the closest hook, or how to reach a hooked host", async () => {
    const denied = req("https", "api.github.com", 443, "DELETE", "/repos/acme/x?token=abc");
    const v = await evaluatePolicy(p, FULL, denied, resolver);
    expect(explainDeny(p, v, denied)).toBe(
      'no MITM hook matched; closest is "gh" (network_proxy.mitm.hooks[0]), which allows methods GET, POST; this is a policy decision: do not retry through another route',
    );
    const plain = req("http", "api.github.com", 443, "GET", "/repos/acme/x");
    expect(explainDeny(p, await evaluatePolicy(p, FULL, plain, resolver), plain)).toBe(
      '"api.github.com" has MITM hooks (network_proxy.mitm.hooks): reach it over HTTPS through the proxy (CONNECT, or SOCKS5 with TLS) so each request can be checked; this is a policy decision: do not retry through another route',
    );
  });
});
