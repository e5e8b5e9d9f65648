import { describe, expect, test } from "bun:test";
import { isLocalLiteral, isNonPublicAddress } from "../../src/network/addr-class.ts";

describe("isNonPublicAddress (SPEC-network §3.3 list)", () => {
  const nonPublic = [
    "0.0.0.0", "0.255.255.255", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255",
    "127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8",
    "192.0.2.1", "192.168.1.1", "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "ff02::1",
    // IPv4-mapped / compatible, judged by the embedded IPv4
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:7f00:1", "::127.0.0.1", "::10.0.0.1",
    // (beyond) NAT64, 6to4, Teredo
    "64:ff9b::7f00:1", "64:ff9b::10.1.2.3", "2002:c0a8:0101::1", "2002:7f00:1::",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo client 10.0.0.1 (inverted)
    // zone ids are ignored for classification
    "fe80::1%lo0", "::1%eth0",
    // garbage fails closed
    "not-an-ip", "", "1.2.3", "300.1.1.1",
  ];
  test.each(nonPublic)("%p is non-public", (ip) => {
    expect(isNonPublicAddress(ip)).toBe(true);
  });

  const isPublic = [
    "1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255",
    "172.32.0.0", "192.0.1.1", "192.167.255.255", "198.17.255.255", "198.20.0.0", "223.255.255.255",
    "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808",
    "2002:0808:0808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo client 8.8.8.8
  ];
  test.each(isPublic)("%p is public", (ip) => {
    expect(isNonPublicAddress(ip)).toBe(false);
  });
});

describe("isLocalLiteral (normalised hosts)", () => {
  test.each([
    ["localhost", true],
    ["foo.localhost", true],
    ["127.0.0.1", true],
    ["10.0.0.1", true],
    ["::1", true],
    ["fe80::1%lo0", true],
    ["::ffff:127.0.0.1", true],
    ["8.8.8.8", false],
    ["example.com", false],
    ["notlocalhost", false],
    ["localhost.example.com", false],
  ] as Array<[string, boolean]>)("%p → %p", (host, want) => {
    expect(isLocalLiteral(host)).toBe(want);
  });
});
