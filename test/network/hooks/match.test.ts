import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../../src/network/config.ts";
import { compileHooks, hookHint, type HookRequest } from "../../../src/network/hooks/match.ts";
import { formDecode, isAmbiguousPath, parseQuery } from "../../../src/network/hooks/values.ts";

const hooks = compileHooks(
  parseConfig(
    `
[network_proxy.mitm]
enabled = true
[[network_proxy.mitm.hooks]]
name = "github-read"
host = "api.github.com"
match = { methods = ["GET", "HEAD"], path_prefixes = ["/repos/acme/"], query = { per_page = ["100", "pattern:[0-9]"] }, headers = { "x-api" = ["v1", "pattern:v2-*"] } }
[[network_proxy.mitm.hooks]]
name = "git-upload"
host = "github.com:443"
match = { methods = ["GET", "POST"], path_prefixes = ["/acme/"] }
[[network_proxy.mitm.hooks]]
name = "anything-else"
host = "**.example.org"
match = { methods = ["GET"], path_prefixes = ["/a/", "/b/"] }
[[network_proxy.mitm.hooks]]
name = "second-on-example"
host = "x.example.org"
match = { methods = ["PUT"], path_prefixes = ["/"] }
`,
    "/c.toml",
  ).mitm.hooks,
);

function req(target: string, over: Partial<HookRequest> = {}): HookRequest {
  return { host: "api.github.com", port: 443, method: "GET", target, headers: [["X-Api", "v1"]], ...over };
}

/** The label of the hook that applies, or "none:<miss>". */
function outcome(r: HookRequest): string {
  const m = hooks.match(r);
  return m.kind === "match" ? m.hook.label : `none:${m.miss ?? "no-hook"}`;
}

describe("hook matching (SPEC-network §10)", () => {
  test("hooked hosts: any hook host pattern, port-scoped where written", () => {
    expect([
      hooks.isHooked("api.github.com", 443),
      hooks.isHooked("api.github.com", 8443),
      hooks.isHooked("github.com", 443),
      hooks.isHooked("github.com", 8443),
      hooks.isHooked("deep.x.example.org", 80),
      hooks.isHooked("example.com", 443),
    ]).toEqual([true, true, true, false, true, false]);
    expect(compileHooks([]).isHooked("a.com", 443)).toBe(false);
  });

  /** [request, expected outcome]. */
  const table: Array<[HookRequest, string]> = [
    [req("/repos/acme/x?per_page=100"), "github-read"],
    [req("/repos/acme/x?per_page=7&other=zz"), "github-read"],
    [req("/repos/acme/x?per_page=100", { method: "head" }), "github-read"],
    [req("/repos/acme/x?per_page=100", { method: "POST" }), "none:method"],
    [req("/repos/other/x?per_page=100"), "none:path"],
    [req("/repos/acme?per_page=100"), "none:path"],
    [req("/repos/acme/x"), "none:query"],
    [req("/repos/acme/x?per_page=1000"), "none:query"],
    // every occurrence of a listed name must be accepted
    [req("/repos/acme/x?per_page=100&per_page=1000"), "none:query"],
    [req("/repos/acme/x?per_page=%31%30%30"), "github-read"],
    [req("/repos/acme/x?per+page=100"), "none:query"],
    [req("/repos/acme/x?per_page=%zz"), "none:query"],
    [req("/repos/acme/x?per_page=100", { headers: [] }), "none:header"],
    [req("/repos/acme/x?per_page=100", { headers: [["x-api", "v2-beta/1"]] }), "github-read"],
    [req("/repos/acme/x?per_page=100", { headers: [["x-api", "v1"], ["X-API", "v3"]] }), "none:header"],
    [req("/repos/acme/x?per_page=100", { headers: [["x-api", "V1"]] }), "none:header"],
    // ambiguous paths never match
    [req("/repos/acme/../other/x?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/%2e%2e/other?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/%2E./other?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/./x?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x/..?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/..;/other?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme%2fx?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x%2Fy?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x%5cy?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x%252fy?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x\\y?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x%?per_page=100"), "none:ambiguous_path"],
    [req("/repos/acme/x%g1?per_page=100"), "none:ambiguous_path"],
    [req("*?per_page=100"), "none:ambiguous_path"],
    // dots inside names are fine; the query is not part of the path
    [req("/repos/acme/x.y/...z/v1.2?per_page=100"), "github-read"],
    [req("/repos/acme/x?per_page=100&next=/../a"), "github-read"],
    [req("/repos/acme/x#/../?per_page=100"), "none:query"],
    // host and port
    [req("/acme/repo.git/info/refs", { host: "github.com", method: "GET" }), "git-upload"],
    [req("/acme/repo.git/info/refs", { host: "github.com", port: 8443 }), "none:no-hook"],
    [req("/other/repo.git", { host: "github.com" }), "none:path"],
    // first match in config order; the closest miss is reported
    [req("/b/x", { host: "x.example.org" }), "anything-else"],
    [req("/c/x", { host: "x.example.org", method: "PUT" }), "second-on-example"],
    [req("/c/x", { host: "x.example.org" }), "none:path"],
    [req("/c/x", { host: "y.example.org", method: "DELETE" }), "none:method"],
  ];
  test.each(table)("%p → %p", (r, want) => {
    expect(outcome(r)).toBe(want);
  });

  test("the hint names the closest hook and what it needs, never request values", () => {
    const m = hooks.match(req("/repos/acme/x?per_page=secret-value-123", { headers: [["x-api", "token-abc"]] }));
    if (m.kind !== "none") throw new Error("expected no match");
    expect(hookHint(m)).toBe(
      'no MITM hook matched; closest is "github-read" (network_proxy.mitm.hooks[0]), which requires query parameter "per_page" with an accepted value',
    );
    const m2 = hooks.match(req("/c/x", { host: "x.example.org", method: "DELETE" }));
    if (m2.kind !== "none") throw new Error("expected no match");
    expect(hookHint(m2)).toBe('no MITM hook matched; closest is "anything-else" (network_proxy.mitm.hooks[2]), which allows methods GET');
    const m3 = hooks.match(req("/c/x", { host: "x.example.org", method: "GET" }));
    if (m3.kind !== "none") throw new Error("expected no match");
    expect(hookHint(m3)).toBe('no MITM hook matched; closest is "anything-else" (network_proxy.mitm.hooks[2]), which allows paths starting with /a/, /b/');
    const m4 = hooks.match(req("/x", { host: "github.com", port: 1 }));
    if (m4.kind !== "none") throw new Error("expected no match");
    expect(hookHint(m4)).toBe("no MITM hook covers this host and port (network_proxy.mitm.hooks)");
  });

  test("form decoding and query parsing", () => {
    expect([formDecode("a+b%20c"), formDecode("%E2%9C%93"), formDecode("%ff"), formDecode("%4"), formDecode("plain")]).toEqual([
      "a b c",
      "✓",
      null,
      null,
      "plain",
    ]);
    expect(parseQuery("a=1&&b&c=%3D=")).toEqual([
      ["a", "1"],
      ["b", ""],
      ["c", "=="],
    ]);
    expect(parseQuery("a=%")).toBeNull();
  });

  test.each([
    ["/a/b", false],
    ["/a.b/c..d/...", false],
    ["/a/%41", false],
    ["/a/./b", true],
    ["/a/.", true],
    ["/..", true],
    ["/a/%2e", true],
    ["/a/.%2E/b", true],
    ["/a\\b", true],
    ["/a%2fb", true],
    ["/a%5Cb", true],
    ["/a%25b", true],
    ["/a%", true],
    ["/a%2", true],
    ["/a%zz", true],
  ] as const)("isAmbiguousPath(%p) = %p", (path, want) => {
    expect(isAmbiguousPath(path)).toBe(want);
  });
});
