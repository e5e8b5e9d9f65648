import { describe, expect, test } from "bun:test";
import { createLogger } from "../../src/log.ts";
import { ConfigError } from "../../src/network/config-error.ts";
import { clampListenAddress, parseListenAddress } from "../../src/network/listen-addr.ts";

describe("parseListenAddress (SPEC-network §2)", () => {
  /** [input, default port, host, port]. */
  const table: Array<[string, number, string, number]> = [
    ["http://127.0.0.1:3128", 3128, "127.0.0.1", 3128],
    ["127.0.0.1:9000", 3128, "127.0.0.1", 9000],
    ["  127.0.0.1:9000  ", 3128, "127.0.0.1", 9000],
    ["127.0.0.1", 3128, "127.0.0.1", 3128],
    ["127.0.0.1:0", 3128, "127.0.0.1", 0],
    ["socks5://127.0.0.1:1080", 8081, "127.0.0.1", 1080],
    ["http://user:pw@127.0.0.1:8080/some/path?q=1#f", 3128, "127.0.0.1", 8080],
    ["http://[::1]:8080", 3128, "::1", 8080],
    ["[::1]:8080", 3128, "::1", 8080],
    ["[::1]", 3128, "::1", 3128],
    ["::1", 8081, "::1", 8081],
    ["0.0.0.0:3128", 80, "0.0.0.0", 3128],
    ["[::]:9", 80, "::", 9],
    ["127.0.0.1:notaport", 3128, "127.0.0.1", 3128],
    ["127.0.0.1:70000", 8080, "127.0.0.1", 8080],
    ["127.0.0.1:", 8080, "127.0.0.1", 8080],
    ["localhost:4000", 3128, "127.0.0.1", 4000],
    ["LOCALHOST", 3128, "127.0.0.1", 3128],
    ["proxy.example.com:4000", 3128, "127.0.0.1", 4000],
    ["http://10.1.2.3:8888", 3128, "10.1.2.3", 8888],
  ];
  test.each(table)("%p (default %p) → %p:%p", (input, def, host, port) => {
    expect(parseListenAddress(input, def)).toEqual({ host, port });
  });

  test.each(["", "   ", "http://", "http://:8080", "http://user@:80", "[]:80"])("%p → missing host", (input) => {
    expect(() => parseListenAddress(input, 3128)).toThrow(
      new ConfigError(`missing host in network proxy address: ${input}`),
    );
  });
});

describe("clampListenAddress", () => {
  function run(addr: { host: string; port: number }, allowNonLoopback: boolean, forceLoopback: boolean, what: string) {
    const lines: string[] = [];
    const log = createLogger({ sink: (l) => lines.push(l), now: null });
    return { out: clampListenAddress(addr, { allowNonLoopback, forceLoopback, what }, log), lines };
  }

  test("loopback passes silently", () => {
    expect(run({ host: "127.0.0.5", port: 1 }, false, true, "HTTP proxy")).toEqual({
      out: { host: "127.0.0.5", port: 1 },
      lines: [],
    });
    expect(run({ host: "::1", port: 2 }, false, false, "admin API").out).toEqual({ host: "::1", port: 2 });
  });

  test("non-loopback is clamped with a warning naming the flag", () => {
    expect(run({ host: "0.0.0.0", port: 3128 }, false, false, "HTTP proxy")).toEqual({
      out: { host: "127.0.0.1", port: 3128 },
      lines: [
        "WARN: HTTP proxy requested non-loopback bind (0.0.0.0:3128); clamping to 127.0.0.1:3128 (set network_proxy.dangerously_allow_non_loopback_proxy to override)",
      ],
    });
    expect(run({ host: "::", port: 8080 }, false, false, "admin API").lines).toEqual([
      "WARN: admin API requested non-loopback bind ([::]:8080); clamping to 127.0.0.1:8080 (set network_proxy.dangerously_allow_non_loopback_admin to override)",
    ]);
  });

  test("dangerously_* keeps the address with a DANGEROUS warning", () => {
    expect(run({ host: "10.0.0.2", port: 8081 }, true, false, "SOCKS5 proxy")).toEqual({
      out: { host: "10.0.0.2", port: 8081 },
      lines: ["WARN: DANGEROUS: SOCKS5 proxy listening on non-loopback address 10.0.0.2:8081"],
    });
  });

  test("allow_unix_sockets forces loopback even with dangerously_*", () => {
    expect(run({ host: "0.0.0.0", port: 3128 }, true, true, "HTTP proxy")).toEqual({
      out: { host: "127.0.0.1", port: 3128 },
      lines: [
        "WARN: HTTP proxy requested non-loopback bind (0.0.0.0:3128); forcing 127.0.0.1:3128 because network_proxy.policy.allow_unix_sockets is not empty",
      ],
    });
  });
});
