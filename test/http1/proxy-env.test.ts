import { describe, expect, test } from "bun:test";
import { noProxyMatches, parseProxyUrl, proxyForUrl } from "../../src/http1/proxy-env.ts";

describe("noProxyMatches", () => {
  test.each([
    ["*", "anything.test", 443, true],
    ["example.test", "example.test", 443, true],
    ["example.test", "api.example.test", 443, true],
    ["example.test", "badexample.test", 443, false],
    [".example.test", "example.test", 443, true],
    [".example.test", "a.b.example.test", 80, true],
    ["EXAMPLE.test.", "Api.Example.Test", 443, true],
    ["example.test", "example.test.", 443, true],
    ["example.test:8443", "example.test", 8443, true],
    ["example.test:8443", "example.test", 443, false],
    ["a.test, b.test", "b.test", 443, true],
    ["a.test b.test", "b.test", 443, true],
    ["a.test,,", "c.test", 443, false],
    ["127.0.0.1", "127.0.0.1", 80, true],
    ["127.0.0.1", "127.0.0.2", 80, false],
    ["127.0.0.0/8", "127.9.9.9", 80, true],
    ["10.0.0.0/8", "127.0.0.1", 80, false],
    ["::1", "[::1]", 80, true],
    ["[::1]", "[::1]", 80, true],
    ["[::1]:8080", "[::1]", 8080, true],
    ["[::1]:8080", "[::1]", 80, false],
    ["fd00::/8", "[fd00::5]", 80, true],
    ["0:0:0:0:0:0:0:1", "[::1]", 80, true],
    ["localhost", "127.0.0.1", 80, false], // names never match IP literals
    ["1.2.3.0/24", "host.test", 80, false], // CIDR never matches a name
    ["", "a.test", 80, false],
  ] as const)("NO_PROXY=%p host=%p port=%p → %p", (noProxy, host, port, expected) => {
    expect(noProxyMatches(noProxy, host, port)).toBe(expected);
  });
});

describe("proxyForUrl", () => {
  const https = new URL("https://api.test/v1/responses");
  const http = new URL("http://plain.test:8080/x");

  test("per-scheme variables, lower case wins, empty counts as unset", () => {
    const env = { https_proxy: "http://lower.test:3128", HTTPS_PROXY: "http://upper.test:3128", HTTP_PROXY: "proxy.test:8888", http_proxy: "" };
    expect(proxyForUrl(https, env)).toMatchObject({ host: "lower.test", port: 3128, authorization: null, key: "lower.test:3128" });
    expect(proxyForUrl(http, env)).toMatchObject({ host: "proxy.test", port: 8888 });
    expect(proxyForUrl(https, { HTTPS_PROXY: "http://upper.test:3128" })).toMatchObject({ host: "upper.test" });
  });

  test("no variable, null env, NO_PROXY", () => {
    expect(proxyForUrl(https, {})).toBeNull();
    expect(proxyForUrl(https, null)).toBeNull();
    expect(proxyForUrl(https, { HTTP_PROXY: "http://p.test:1" })).toBeNull(); // http_proxy is not for https
    expect(proxyForUrl(https, { HTTPS_PROXY: "http://p.test:1", NO_PROXY: "api.test" })).toBeNull();
    expect(proxyForUrl(https, { HTTPS_PROXY: "http://p.test:1", no_proxy: "other.test", NO_PROXY: "api.test" })).not.toBeNull();
    expect(proxyForUrl(https, { HTTPS_PROXY: "http://p.test:1", NO_PROXY: "api.test:8443" })).not.toBeNull();
  });

  test("credentials become Basic proxy-authorization; default port 80", () => {
    const p = parseProxyUrl("http://us%3Aer:p%40ss@p.test", "HTTPS_PROXY");
    expect(p).toMatchObject({ host: "p.test", port: 80, authorization: `Basic ${btoa("us:er:p@ss")}` });
  });

  test("bracketed IPv6 proxy host", () => {
    expect(parseProxyUrl("http://[::1]:3128", "HTTP_PROXY")).toMatchObject({ host: "::1", port: 3128, key: "::1:3128" });
  });

  test("unsupported or invalid proxies fail closed, without echoing the value", () => {
    expect(() => parseProxyUrl("socks5://user:secret@p.test:1080", "HTTPS_PROXY")).toThrow(
      "HTTPS_PROXY: unsupported proxy scheme socks5: (only http:// proxies)",
    );
    expect(() => parseProxyUrl("http://user:secret@[bad", "https_proxy")).toThrow("https_proxy is not a valid proxy URL");
  });
});
