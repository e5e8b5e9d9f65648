import { describe, expect, test } from "bun:test";
import { isIpLiteral, normalizeHost } from "../../src/network/host.ts";

describe("normalizeHost (SPEC-network §3.1)", () => {
  const cases: Array<[string, string]> = [
    ["example.com", "example.com"],
    ["  Example.COM  ", "example.com"],
    ["example.com.", "example.com"],
    ["example.com...", "example.com"],
    ["example.com:443", "example.com"],
    ["EXAMPLE.com.:8080", "example.com"],
    ["[::1]", "::1"],
    ["[::1]:8080", "::1"],
    ["::1", "::1"],
    ["[FE80::1%25LO0]:443", "fe80::1%lo0"],
    ["fe80::1%lo0", "fe80::1%lo0"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["[2001:0DB8:0:0::1]:443", "2001:db8::1"],
    ["::FFFF:7f00:1", "127.0.0.1"],
    ["[::ffff:8.8.8.8]:443", "8.8.8.8"],
    ["2130706433", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["0x7f000001", "127.0.0.1"],
    ["017700000001", "127.0.0.1"],
    ["127.0.0.1:80", "127.0.0.1"],
    ["bücher.de", "xn--bcher-kva.de"],
    ["BÜCHER.de.", "xn--bcher-kva.de"],
    ["xn--bcher-kva.de", "xn--bcher-kva.de"],
    ["ex_ample.com", "ex_ample.com"],
    ["", ""],
    ["   ", ""],
    ["...", ""],
    ["foo bar.com", ""],
    ["1.2.3.09", ""],
    ["[::1", ""],
    ["a.com@b.com", ""],
    ["a.com/x", ""],
    ["a.com\\x", ""],
    ["a.com#x", ""],
    ["a.com?x", ""],
    ["example%2ecom", ""],
    ["*.example.com", ""],
    ["a!b.com", ""],
    ["\u0000a.com", ""],
    ["xn--zz.com", ""],
    ["a..b.com", ""],
    [".a.com", ""],
    ["EXAMPLE。COM", "example.com"],
    ["ＥＸＡＭＰＬＥ.com", "example.com"],
    ["[127.0.0.1]", "127.0.0.1"],
    ["[Example.com]:80", "example.com"],
  ];
  test.each(cases)("%p → %p", (input, want) => {
    expect(normalizeHost(input)).toBe(want);
  });
});

describe("isIpLiteral", () => {
  test.each([
    ["127.0.0.1", true],
    ["::1", true],
    ["fe80::1%lo0", true],
    ["::ffff:10.0.0.1", true],
    ["example.com", false],
    ["localhost", false],
    ["", false],
  ] as Array<[string, boolean]>)("%p → %p", (host, want) => {
    expect(isIpLiteral(host)).toBe(want);
  });
});
