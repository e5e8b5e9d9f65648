import { describe, expect, test } from "bun:test";
import { defaultConfig } from "../../src/network/config.ts";
import {
  compilePolicy,
  createSystemResolver,
  evaluatePolicy,
  explainDeny,
  type CompiledPolicy,
  type PolicyState,
  type Resolver,
} from "../../src/network/policy.ts";
import type { PolicyRequest, RuntimeConfig, Verdict } from "../../src/network/types.ts";

const PUBLIC = "93.184.216.34";

/** A resolver stand-in: fixed answers per name, every call recorded (the spy of §3.3 step 5). */
function fakeResolver(answers: Record<string, string[] | Error> = {}): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const r = async (host: string) => {
    calls.push(host);
    const a = answers[host] ?? [PUBLIC];
    if (a instanceof Error) throw a;
    return a;
  };
  return Object.assign(r, { calls });
}

function policyOf(allowed: string[], denied: string[] = [], allowLocalBinding = false): CompiledPolicy {
  const base = defaultConfig("/tmp/codex-home-test");
  const cfg: RuntimeConfig = {
    ...base,
    policy: { ...base.policy, allowedDomains: allowed, deniedDomains: denied, allowLocalBinding },
  };
  return compilePolicy(cfg);
}

const FULL: PolicyState = { enabled: true, mode: "full", mitmEnabled: false };
const LIMITED: PolicyState = { enabled: true, mode: "limited", mitmEnabled: false };

function req(host: string, method: string | null = "GET", protocol: PolicyRequest["protocol"] = "http"): PolicyRequest {
  return { protocol, host, port: 80, method, client: "127.0.0.1:5555" };
}

const allow = (host: string, addresses = [PUBLIC]): Verdict => ({ action: "allow", host, addresses });
/** The source the policy names for each reason it decides itself (SPEC-network §3). */
const SOURCE: Record<string, string> = {
  method_not_allowed: "mode_guard",
  proxy_disabled: "proxy_state",
  mitm_required: "proxy_state",
};
const deny = (reason: string, host: string) => ({ action: "deny", reason, source: SOURCE[reason] ?? "baseline_policy", host });

describe("evaluatePolicy host rules (SPEC-network §3.3 steps 2–6)", () => {
  /** [allowed, denied, host as sent, expected verdict]. */
  const table: Array<[string[], string[], string, object]> = [
    [["example.com"], [], "example.com", allow("example.com")],
    [["example.com"], [], "api.example.com", deny("not_allowed", "api.example.com")],
    [["*.example.com"], [], "api.example.com", allow("api.example.com")],
    [["*.example.com"], [], "example.com", deny("not_allowed", "example.com")],
    [["**.example.com"], [], "example.com", allow("example.com")],
    [["**.example.com"], [], "deep.api.example.com", allow("deep.api.example.com")],
    [["*"], [], "anything.test", allow("anything.test")],
    [["region*.v2.argotunnel.com"], [], "region1.v2.argotunnel.com", allow("region1.v2.argotunnel.com")],
    [["region*.v2.argotunnel.com"], [], "xregion1.v2.argotunnel.com", deny("not_allowed", "xregion1.v2.argotunnel.com")],
    [["Example.COM"], [], "EXAMPLE.com...", allow("example.com")],
    [["example.com"], [], "example.com:8443", allow("example.com")],
    [["bücher.de"], [], "xn--bcher-kva.de", allow("xn--bcher-kva.de")],
    [["xn--bcher-kva.de"], [], "BÜCHER.de", allow("xn--bcher-kva.de")],
    // deny beats allow, including the global allow
    [["*.example.com"], ["bad.example.com"], "bad.example.com", deny("denied", "bad.example.com")],
    [["*"], ["**.evil.test"], "evil.test", deny("denied", "evil.test")],
    [["localhost"], ["localhost"], "localhost", deny("denied", "localhost")],
    // empty allowlist denies everything
    [[], [], "example.com", deny("not_allowed", "example.com")],
    [[], [], "", deny("not_allowed", "")],
    [["*"], [], "   ", deny("not_allowed", "")],
    // local literals: `*` and wildcards never exempt, exact entries do
    [["*"], [], "127.0.0.1", deny("not_allowed_local", "127.0.0.1")],
    [["*"], [], "localhost", deny("not_allowed_local", "localhost")],
    [["*"], [], "[::1]:8080", deny("not_allowed_local", "::1")],
    [["*"], [], "10.0.0.1", deny("not_allowed_local", "10.0.0.1")],
    [["*"], [], "::ffff:127.0.0.1", deny("not_allowed_local", "127.0.0.1")],
    [["*"], [], "[::ffff:7f00:1]", deny("not_allowed_local", "127.0.0.1")],
    [["*"], ["8.8.8.8"], "[::ffff:8.8.8.8]", deny("denied", "8.8.8.8")],
    [["*"], [], "2130706433", deny("not_allowed_local", "127.0.0.1")],
    [["*"], [], "0x7f.1", deny("not_allowed_local", "127.0.0.1")],
    [["*"], [], "127.1", deny("not_allowed_local", "127.0.0.1")],
    [["*"], [], "169.254.169.254", deny("not_allowed_local", "169.254.169.254")],
    [["*"], [], "fe80::1%lo0", deny("not_allowed_local", "fe80::1%lo0")],
    [["127.0.0.*"], [], "127.0.0.1", deny("not_allowed_local", "127.0.0.1")],
    [["127.0.0.1"], [], "127.0.0.1", allow("127.0.0.1", ["127.0.0.1"])],
    [["127.0.0.1"], [], "2130706433", allow("127.0.0.1", ["127.0.0.1"])],
    [["[::1]"], [], "[::1]:443", allow("::1", ["::1"])],
    [["fe80::1%lo0"], [], "[fe80::1%25lo0]", allow("fe80::1%lo0", ["fe80::1%lo0"])],
    // a public literal is dialed as is, never resolved
    [["*"], [], "8.8.8.8", allow("8.8.8.8", ["8.8.8.8"])],
  ];
  test.each(table)("allow %p deny %p host %p", async (allowed, denied, host, want) => {
    const resolver = fakeResolver({ localhost: ["127.0.0.1", "::1"] });
    expect(await evaluatePolicy(policyOf(allowed, denied), FULL, req(host), resolver)).toEqual(want as Verdict);
  });

  test("an exact `localhost` entry exempts it and dials its resolved loopback addresses", async () => {
    const resolver = fakeResolver({ localhost: ["127.0.0.1", "::1"] });
    expect(await evaluatePolicy(policyOf(["localhost"]), FULL, req("LOCALHOST."), resolver)).toEqual(
      allow("localhost", ["127.0.0.1", "::1"]),
    );
  });

  test.each([["127.0.0.1"], ["10.0.0.1"], ["::1"], ["::ffff:10.0.0.1"], ["fd00::1"]])(
    "a name resolving to %p is not_allowed_local even when allowlisted (DNS rebinding)",
    async (ip) => {
      const resolver = fakeResolver({ "rebind.test": [PUBLIC, ip] });
      for (const allowed of [["rebind.test"], ["*"], ["**.rebind.test"]]) {
        expect(await evaluatePolicy(policyOf(allowed), FULL, req("rebind.test"), resolver)).toEqual(
          deny("not_allowed_local", "rebind.test") as Verdict,
        );
      }
    },
  );

  test("a name that is not allowed (or denied) is never resolved", async () => {
    const resolver = fakeResolver();
    const p = policyOf(["*.allowed.test"], ["bad.allowed.test"]);
    for (const host of ["secret-data.exfil.test", "allowed.test", "bad.allowed.test", "localhost", ""]) {
      const v = await evaluatePolicy(p, FULL, req(host), resolver);
      expect(v.action).toBe("deny");
    }
    expect(resolver.calls).toEqual([]);
    await evaluatePolicy(p, FULL, req("ok.allowed.test"), resolver);
    expect(resolver.calls).toEqual(["ok.allowed.test"]);
  });

  test("port-scoped patterns (beyond §3.2): :443 allowed, :8443 refused; a deny entry on one port only", async () => {
    const resolver = fakeResolver();
    const p = policyOf(["api.example.com:443", "[::1]:8080", "**.example.org"], ["x.example.org:22"]);
    const at = async (host: string, port: number): Promise<object> => evaluatePolicy(p, FULL, { ...req(host), port }, resolver);
    expect(await at("api.example.com", 443)).toEqual(allow("api.example.com"));
    expect(await at("api.example.com", 8443)).toEqual(deny("not_allowed", "api.example.com"));
    expect(await at("::1", 8080)).toEqual(allow("::1", ["::1"]));
    expect(await at("::1", 8081)).toEqual(deny("not_allowed_local", "::1"));
    expect(await at("x.example.org", 443)).toEqual(allow("x.example.org"));
    expect(await at("x.example.org", 22)).toEqual(deny("denied", "x.example.org"));
  });

  test("allow_local_binding = true allows local targets and still pins resolved addresses", async () => {
    const resolver = fakeResolver({ "dev.test": ["10.0.0.7"], localhost: ["127.0.0.1"] });
    const p = policyOf(["*"], [], true);
    expect(await evaluatePolicy(p, FULL, req("dev.test"), resolver)).toEqual(allow("dev.test", ["10.0.0.7"]));
    expect(await evaluatePolicy(p, FULL, req("localhost"), resolver)).toEqual(allow("localhost", ["127.0.0.1"]));
    expect(await evaluatePolicy(p, FULL, req("127.0.0.1"), resolver)).toEqual(allow("127.0.0.1", ["127.0.0.1"]));
    expect(resolver.calls).toEqual(["dev.test", "localhost"]);
  });

  test("DNS failure is an error verdict, not a policy decision", async () => {
    const resolver = fakeResolver({ "gone.test": new Error("DNS lookup of gone.test failed: ENOTFOUND"), "empty.test": [] });
    const p = policyOf(["*.test"]);
    expect(await evaluatePolicy(p, FULL, req("gone.test"), resolver)).toEqual({
      action: "error",
      kind: "dns",
      message: "DNS lookup of gone.test failed: ENOTFOUND",
      host: "gone.test",
    });
    const empty = await evaluatePolicy(p, FULL, req("empty.test"), resolver);
    expect(empty.action).toBe("error");
  });

  test("a resolver that throws synchronously is still an error verdict", async () => {
    const resolver: Resolver = () => {
      throw new Error("boom");
    };
    expect(await evaluatePolicy(policyOf(["*"]), FULL, req("x.test"), resolver)).toEqual({
      action: "error",
      kind: "dns",
      message: "boom",
      host: "x.test",
    });
  });
});

describe("evaluatePolicy switches and methods (steps 1 and 7)", () => {
  const p = policyOf(["*.test"]);

  test("proxy disabled wins over everything", async () => {
    const resolver = fakeResolver();
    const v = await evaluatePolicy(p, { ...FULL, enabled: false }, req("Ok.Test"), resolver);
    expect(v).toEqual(deny("proxy_disabled", "ok.test") as Verdict);
    expect(resolver.calls).toEqual([]);
  });

  /** [state, method, protocol, expected action or reason]. */
  const table: Array<[PolicyState, string | null, PolicyRequest["protocol"], string]> = [
    [LIMITED, "GET", "http", "allow"],
    [LIMITED, "HEAD", "http", "allow"],
    [LIMITED, "OPTIONS", "https", "allow"],
    [LIMITED, "POST", "http", "method_not_allowed"],
    [LIMITED, "PUT", "https", "method_not_allowed"],
    [LIMITED, "DELETE", "socks5_tcp", "method_not_allowed"],
    [LIMITED, "get", "http", "method_not_allowed"],
    [LIMITED, null, "socks5_tcp", "allow"],
    [LIMITED, "CONNECT", "https_connect", "mitm_required"],
    [{ ...LIMITED, mitmEnabled: true }, "CONNECT", "https_connect", "allow"],
    [{ ...LIMITED, mitmEnabled: true }, "POST", "https", "method_not_allowed"],
    [FULL, "POST", "http", "allow"],
    [FULL, "CONNECT", "https_connect", "allow"],
    [FULL, null, "socks5_udp", "allow"],
  ];
  test.each(table)("%o %p %p → %p", async (state, method, protocol, want) => {
    const v = await evaluatePolicy(p, state, req("ok.test", method, protocol), fakeResolver());
    expect<string>(v.action === "deny" ? v.reason : v.action).toBe(want);
  });

  test("the host is judged before the method", async () => {
    const resolver = fakeResolver({ "rebind.test": ["10.1.1.1"] });
    const post = (host: string) => evaluatePolicy(p, LIMITED, req(host, "POST"), resolver);
    expect(await post("nope.example")).toEqual(deny("not_allowed", "nope.example") as Verdict);
    expect(await post("rebind.test")).toEqual(deny("not_allowed_local", "rebind.test") as Verdict);
  });

  test("a DNS failure still gets the method verdict first", async () => {
    const resolver = fakeResolver({ "gone.test": new Error("ENOTFOUND") });
    const v = await evaluatePolicy(p, LIMITED, req("gone.test", "POST"), resolver);
    expect(v).toEqual(deny("method_not_allowed", "gone.test") as Verdict);
  });

  test("a faulty policy fails closed with policy_denied", async () => {
    const broken: CompiledPolicy = {
      ...p,
      denied: {
        patterns: [],
        exact: () => null,
        matches: () => {
          throw new Error("bug");
        },
      },
    };
    expect(await evaluatePolicy(broken, FULL, req("ok.test"), fakeResolver())).toEqual(
      deny("policy_denied", "ok.test") as Verdict,
    );
  });
});

describe("explainDeny hints", () => {
  const p = policyOf(["*.allowed.test"], ["**.evil.test"]);
  const NO_RETRY = "; this is a policy decision: do not retry through another route";
  const hint = async (host: string, state = FULL, method = "GET", resolver = fakeResolver()) => {
    const r = req(host, method);
    return explainDeny(p, await evaluatePolicy(p, state, r, resolver), r);
  };

  test("texts", async () => {
    expect(await hint("example.org")).toBe(`add "example.org" to network_proxy.policy.allowed_domains${NO_RETRY}`);
    expect(await hint("x.evil.test")).toBe(`"x.evil.test" matches denied_domains entry "**.evil.test"${NO_RETRY}`);
    expect(await hint("10.0.0.1")).toBe(
      `local/private targets need an exact entry "10.0.0.1" in network_proxy.policy.allowed_domains or network_proxy.policy.allow_local_binding = true${NO_RETRY}`,
    );
    expect(await hint("r.allowed.test", FULL, "GET", fakeResolver({ "r.allowed.test": ["127.0.0.1"] }))).toBe(
      `"r.allowed.test" resolves to a local/private address; only network_proxy.policy.allow_local_binding = true permits that${NO_RETRY}`,
    );
    expect(await hint("a.allowed.test", LIMITED, "POST")).toBe(
      `limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got POST); full mode (network_proxy.mode = "full") permits it${NO_RETRY}`,
    );
    expect(await hint("a.allowed.test", FULL)).toBe("");
  });
});

describe("createSystemResolver", () => {
  test("resolves localhost through the system resolver (hosts file, loopback only)", async () => {
    const answers = await createSystemResolver()("localhost");
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((a) => a === "::1" || a.startsWith("127."))).toBe(true);
  });
});

describe("createSystemResolver with an injected lookup", () => {
  test("deduplicates answers and keeps A and AAAA", async () => {
    const r = createSystemResolver(2000, async () => [
      { address: "93.184.216.34" },
      { address: "2606:2800:220:1::1" },
      { address: "93.184.216.34" },
    ]);
    expect(await r("example.test")).toEqual(["93.184.216.34", "2606:2800:220:1::1"]);
  });

  test("errno failures, empty answers and timeouts reject with a message naming the host", async () => {
    const enotfound = createSystemResolver(2000, () =>
      Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" })),
    );
    expect(await enotfound("gone.test").catch((e) => e.message)).toBe("DNS lookup of gone.test failed: ENOTFOUND");
    const empty = createSystemResolver(2000, async () => []);
    expect(await empty("none.test").catch((e) => e.message)).toBe("DNS lookup of none.test returned no addresses");
    const never = createSystemResolver(20, () => new Promise(() => {}));
    expect(await never("slow.test").catch((e) => e.message)).toBe("DNS lookup of slow.test timed out after 20 ms");
  });
});
