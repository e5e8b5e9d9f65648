import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/network/config-error.ts";
import { normalizeHost } from "../../src/network/host.ts";
import { compilePatterns, patternProblem } from "../../src/network/patterns.ts";

/** [patterns, host as a client sends it, the pattern expected to match or null]. */
const table: Array<[string[], string, string | null]> = [
  // exact
  [["example.com"], "example.com", "example.com"],
  [["example.com"], "api.example.com", null],
  [["example.com"], "evilexample.com", null],
  [["Example.COM."], "EXAMPLE.com", "Example.COM."],
  [["example.com:443"], "example.com", "example.com:443"],
  // *.x: strict subdomains at any depth, not the apex
  [["*.example.com"], "api.example.com", "*.example.com"],
  [["*.example.com"], "a.b.c.example.com", "*.example.com"],
  [["*.example.com"], "example.com", null],
  [["*.example.com"], "evilexample.com", null],
  [["*.example.com"], "example.com.evil.org", null],
  [["*.Example.COM."], "API.example.com.", "*.Example.COM."],
  // **.x: apex and subdomains
  [["**.example.com"], "example.com", "**.example.com"],
  [["**.example.com"], "x.y.example.com", "**.example.com"],
  [["**.example.com"], "evilexample.com", null],
  // * matches every host
  [["*"], "anything.at.all", "*"],
  [["*"], "10.0.0.1", "*"],
  // other globs, * crossing dots
  [["region*.v2.argotunnel.com"], "region1.v2.argotunnel.com", "region*.v2.argotunnel.com"],
  [["region*.v2.argotunnel.com"], "region.v2.argotunnel.com", "region*.v2.argotunnel.com"],
  [["region*.v2.argotunnel.com"], "region.a.b.v2.argotunnel.com", "region*.v2.argotunnel.com"],
  [["region*.v2.argotunnel.com"], "xregion1.v2.argotunnel.com", null],
  [["region*.v2.argotunnel.com"], "foo.region1.v2.argotunnel.com", null],
  [["api-?.example.com"], "api-1.example.com", "api-?.example.com"],
  [["api-?.example.com"], "api-12.example.com", null],
  [["{a,b}.example.com"], "b.example.com", "{a,b}.example.com"],
  [["*.example.*"], "www.example.org", "*.example.*"],
  [["*.example.*"], "example.org", null],
  [["{a.x,b.y}.com"], "b.y.com", "{a.x,b.y}.com"],
  [["{a.x,b.y}.com"], "a.y.com", null],
  [["foo[0-9].example.com"], "foo7.example.com", "foo[0-9].example.com"],
  [["foo[0-9].example.com"], "foo.example.com", null],
  [["*.region*.x.com"], "a.region9.x.com", "*.region*.x.com"],
  [["api*"], "api.anything.test", "api*"],
  [["REGION*.Example.com"], "region7.example.COM", "REGION*.Example.com"],
  // IPv6 literals, brackets and zones
  [["[::1]"], "::1", "[::1]"],
  [["::1"], "[::1]:8080", "::1"],
  [["[0:0::1]"], "::1", "[0:0::1]"],
  [["[fe80::1%25lo0]"], "fe80::1%lo0", "[fe80::1%25lo0]"],
  [["[fe80::1%25lo0]"], "fe80::1%lo1", null],
  [["[fe80::1%25lo0]"], "fe80::1", null],
  // IPv4 spellings and punycode
  [["127.0.0.1"], "2130706433", "127.0.0.1"],
  [["127.1"], "127.0.0.1", "127.1"],
  [["bücher.de"], "xn--bcher-kva.de", "bücher.de"],
  [["*.bücher.de"], "www.BÜCHER.de", "*.bücher.de"],
  // several patterns: exact preferred, duplicates harmless
  [["*.example.com", "api.example.com", "api.example.com"], "api.example.com", "api.example.com"],
  [["a.org", "*.b.org", "**.c.org", "d*.e.org"], "x.c.org", "**.c.org"],
  [[], "example.com", null],
];

describe("compilePatterns (SPEC-network §3.2)", () => {
  test.each(table)("%p vs %p → %p", (patterns, host, want) => {
    expect(compilePatterns(patterns, "allowed").matches(normalizeHost(host), 443)).toBe(want);
  });

  /** [patterns, host, port, the pattern expected to match or null] (beyond: `host:port`). */
  const ports: Array<[string[], string, number, string | null]> = [
    [["example.com:443"], "example.com", 443, "example.com:443"],
    [["example.com:443"], "example.com", 8443, null],
    [["example.com"], "example.com", 8443, "example.com"],
    [["*.example.com:8443"], "api.example.com", 8443, "*.example.com:8443"],
    [["*.example.com:8443"], "api.example.com", 443, null],
    [["**.example.com:22"], "example.com", 22, "**.example.com:22"],
    [["region*.x.com:443"], "region1.x.com", 443, "region*.x.com:443"],
    [["region*.x.com:443"], "region1.x.com", 80, null],
    [["[::1]:8080"], "::1", 8080, "[::1]:8080"],
    [["[::1]:8080"], "::1", 8081, null],
    [["[2001:db8::1]"], "2001:db8::1", 1, "[2001:db8::1]"],
    [["2001:db8::1"], "2001:db8::1", 1, "2001:db8::1"],
    [["*:443"], "anything.test", 443, "*:443"],
    [["*:443"], "anything.test", 80, null],
    [["a.com:443", "a.com:8443"], "a.com", 8443, "a.com:8443"],
    [["a.com:443", "a.com"], "a.com", 443, "a.com"],
    [["127.0.0.1:8080"], "127.0.0.1", 8080, "127.0.0.1:8080"],
  ];
  test.each(ports)("%p vs %p port %p → %p", (patterns, host, port, want) => {
    expect(compilePatterns(patterns, "allowed").matches(normalizeHost(host), port)).toBe(want);
  });

  test("exact() honours the port of a port-scoped entry", () => {
    const m = compilePatterns(["127.0.0.1:8080", "[::1]:9000"], "allowed");
    expect([m.exact("127.0.0.1", 8080), m.exact("127.0.0.1", 80), m.exact("::1", 9000), m.exact("::1", 9001)]).toEqual([
      "127.0.0.1:8080",
      null,
      "[::1]:9000",
      null,
    ]);
  });

  test.each(["a.com:0", "a.com:65536", "a.com:x", "a.com:", "[::1]:", "[::1]x", "*.a.com:-1"])("bad port %p is reported", (p) => {
    expect(patternProblem(p, "allowed")).toMatch(/^invalid (port in|host) pattern: /);
  });

  test("exact() ignores wildcards: only a literal entry counts", () => {
    const m = compilePatterns(["*", "**.localhost", "127.0.0.1", "[::1]"], "allowed");
    expect([m.exact("127.0.0.1", 80), m.exact("::1", 80), m.exact("localhost", 80), m.exact("10.0.0.1", 80)]).toEqual([
      "127.0.0.1",
      "[::1]",
      null,
      null,
    ]);
  });

  test("patterns keeps the configured strings", () => {
    expect(compilePatterns(["B.com", "*.a.com"], "denied").patterns).toEqual(["B.com", "*.a.com"]);
  });

  test.each(["[", "a[b.com", "foo].com", "{a,b.com"])("invalid glob %p throws ConfigError", (p) => {
    expect(() => compilePatterns(["ok.com", p], "allowed")).toThrow(new ConfigError(`invalid glob pattern: ${p}`));
  });

  test.each(["*", "**", "*.*", " * "])("global wildcard %p is rejected in denied_domains", (p) => {
    expect(patternProblem(p, "denied")).toContain("unsupported global wildcard domain pattern");
    expect(patternProblem(p, "allowed")).toBeNull();
  });

  test("negation and extglob syntax can never invert a list", () => {
    const m = compilePatterns(["!example.com"], "allowed");
    expect(m.matches("other.org", 443)).toBeNull();
  });

  test("empty and unusable patterns are reported", () => {
    expect(patternProblem("", "allowed")).toBe("empty domain pattern");
    expect(patternProblem("foo bar", "allowed")).toBe('domain pattern "foo bar" has whitespace inside; patterns match host names only: write "foobar"');
    expect(patternProblem("*.example.com", "denied")).toBeNull();
  });
});
