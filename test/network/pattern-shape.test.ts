/**
 * Patterns that can never match a host name are config errors with the fix (issue 13):
 * scheme, path, userinfo, whitespace inside. `host:port` is left to the pattern grammar.
 */
import { describe, expect, test } from "bun:test";
import { compilePatterns, patternProblem } from "../../src/network/patterns.ts";
import { parseConfig } from "../../src/network/config.ts";
import { ConfigError } from "../../src/network/config-error.ts";

const CASES: Array<[string, string]> = [
  ["https://example.com", 'domain pattern "https://example.com" has a scheme; patterns match host names only: write "example.com"'],
  ["http://*.example.com/", 'domain pattern "http://*.example.com/" has a scheme and a path; patterns match host names only: write "*.example.com"'],
  ["example.com/api", 'domain pattern "example.com/api" has a path; patterns match host names only: write "example.com"'],
  ["user@example.com", 'domain pattern "user@example.com" has userinfo; patterns match host names only: write "example.com"'],
  [
    "https://u:p@api.example.com/v1?x=1",
    'domain pattern "https://u:p@api.example.com/v1?x=1" has a scheme, userinfo and a path; patterns match host names only: write "api.example.com"',
  ],
  ["*.exa mple.com", 'domain pattern "*.exa mple.com" has whitespace inside; patterns match host names only: write "*.example.com"'],
  ["example.com\t*.org", 'domain pattern "example.com\\t*.org" has whitespace inside; patterns match host names only: write "example.com*.org"'],
  ["/", 'domain pattern "/" has a path; patterns match host names only'],
];

describe("pattern shape errors", () => {
  test.each(CASES)("%p", (pattern, message) => {
    expect(patternProblem(pattern, "allowed")).toBe(message);
    expect(patternProblem(pattern, "denied")).toBe(message);
    expect(() => compilePatterns([pattern], "allowed")).toThrow(new ConfigError(message));
  });

  test("host names, globs, IP literals and surrounding whitespace stay valid", () => {
    for (const p of ["example.com", "*.example.com", "**.example.com", "api-?.example.com", "10.0.0.1", "[::1]", " example.com "]) {
      expect(patternProblem(p, "allowed")).toBeNull();
    }
  });

  test("a config file names the key path and the fix", () => {
    const text = '[network_proxy.policy]\nallowed_domains = ["ok.test", "https://api.openai.com"]\ndenied_domains = ["evil.test/x"]\n';
    expect(() => parseConfig(text, "/c.toml")).toThrow(
      new ConfigError(
        [
          '/c.toml: network_proxy.policy.allowed_domains[1]: domain pattern "https://api.openai.com" has a scheme; patterns match host names only: write "api.openai.com"',
          '/c.toml: network_proxy.policy.denied_domains[0]: domain pattern "evil.test/x" has a path; patterns match host names only: write "evil.test"',
        ].join("\n"),
      ),
    );
  });

  test("--allow/--deny are checked the same way", () => {
    expect(() => parseConfig("", "/c.toml", { allow: ["https://x.test"] })).toThrow(
      '/c.toml: --allow: domain pattern "https://x.test" has a scheme; patterns match host names only: write "x.test"',
    );
  });
});
