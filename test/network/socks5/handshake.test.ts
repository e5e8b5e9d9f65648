/**
 * In-process tests of the SOCKS5 frame parsers and encoders (RFC 1928 §3–§7) and the
 * limited-mode first-bytes classifier.
 */
import { describe, expect, test } from "bun:test";
import {
  formatIpv6,
  parseGreeting,
  parseRequest,
  parseUdpHeader,
  MAX_REQUEST_BYTES,
} from "../../../src/network/socks5/handshake.ts";
import { encodeAddress, REP, repForDialError, replyBytes } from "../../../src/network/socks5/reply.ts";
import { classifyFirstBytes } from "../../../src/network/socks5/peek.ts";
import { domainRequest, ipv4Request } from "../../helpers/socks5.ts";

const u8 = (a: number[]) => Uint8Array.from(a);

describe("parseGreeting", () => {
  test("every prefix of a greeting is incomplete, the whole is ok", () => {
    const g = [0x05, 0x02, 0x02, 0x00];
    for (let i = 0; i < g.length; i++) expect(parseGreeting(u8(g.slice(0, i))).kind).toBe("incomplete");
    const r = parseGreeting(u8([...g, 0x99]));
    expect(r.kind).toBe("ok");
    if (r.kind === "ok") {
      expect(Array.from(r.methods)).toEqual([0x02, 0x00]);
      expect(r.length).toBe(4);
    }
  });
  test("wrong version and zero methods are errors", () => {
    expect(parseGreeting(u8([0x04, 0x01, 0x00]))).toEqual({ kind: "error", message: "unsupported SOCKS version 4" });
    expect(parseGreeting(u8([0x05, 0x00]))).toEqual({ kind: "error", message: "greeting offers no authentication methods" });
  });
});

describe("parseRequest", () => {
  test("IPv4, domain and IPv6 destinations", () => {
    expect(parseRequest(u8(ipv4Request(1, "10.1.2.3", 443)))).toEqual({
      kind: "ok",
      command: 1,
      address: { atyp: 1, host: "10.1.2.3", port: 443 },
      length: 10,
    });
    expect(parseRequest(u8(domainRequest(1, "allowed.test", 8080)))).toEqual({
      kind: "ok",
      command: 1,
      address: { atyp: 3, host: "allowed.test", port: 8080 },
      length: 7 + "allowed.test".length,
    });
    const v6 = [0x05, 0x01, 0x00, 0x04, ...new Array(15).fill(0), 1, 0x00, 0x50];
    expect(parseRequest(u8(v6))).toEqual({ kind: "ok", command: 1, address: { atyp: 4, host: "::1", port: 80 }, length: 22 });
  });

  test("bytes arriving one at a time: incomplete until the last byte", () => {
    const frame = domainRequest(1, "a.example", 1);
    for (let i = 0; i < frame.length; i++) expect(parseRequest(u8(frame.slice(0, i))).kind).toBe("incomplete");
    expect(parseRequest(u8(frame)).kind).toBe("ok");
  });

  test("255-byte domain is the largest frame", () => {
    const frame = domainRequest(1, "a".repeat(255), 80);
    expect(frame.length).toBe(MAX_REQUEST_BYTES);
    const r = parseRequest(u8(frame));
    expect(r.kind === "ok" && r.address.host.length).toBe(255);
  });

  test("unknown ATYP → 0x08, zero-length or non-UTF-8 domain → 0x01, wrong version → no reply", () => {
    expect(parseRequest(u8([0x05, 0x01, 0x00, 0x02]))).toEqual({
      kind: "error",
      rep: REP.ADDRESS_TYPE_NOT_SUPPORTED,
      message: "unknown address type 2",
    });
    expect(parseRequest(u8([0x05, 0x01, 0x00, 0x03, 0x00, 0x00, 0x50]))).toEqual({
      kind: "error",
      rep: REP.GENERAL_FAILURE,
      message: "zero-length domain name",
    });
    expect(parseRequest(u8([0x05, 0x01, 0x00, 0x03, 0x01, 0xff, 0x00, 0x50]))).toEqual({
      kind: "error",
      rep: REP.GENERAL_FAILURE,
      message: "domain name is not valid UTF-8",
    });
    expect(parseRequest(u8([0x04, 0x01]))).toEqual({ kind: "error", rep: 0, message: "unsupported SOCKS version 4" });
  });
});

describe("parseUdpHeader", () => {
  test("header with IPv4 destination and payload offset", () => {
    const dgram = u8([0, 0, 0, 0x01, 127, 0, 0, 1, 0x1f, 0x90, 0x68, 0x69]);
    expect(parseUdpHeader(dgram)).toEqual({
      kind: "ok",
      frag: 0,
      address: { atyp: 1, host: "127.0.0.1", port: 8080 },
      headerLength: 10,
    });
  });
  test("FRAG is reported, short datagrams are errors", () => {
    const r = parseUdpHeader(u8([0, 0, 3, 0x01, 1, 2, 3, 4, 0, 53]));
    expect(r.kind === "ok" && r.frag).toBe(3);
    expect(parseUdpHeader(u8([0, 0, 0]))).toEqual({ kind: "error", message: "datagram shorter than the SOCKS5 UDP header" });
    expect(parseUdpHeader(u8([0, 0, 0, 0x01, 1, 2]))).toEqual({ kind: "error", message: "truncated SOCKS5 UDP header" });
    expect(parseUdpHeader(u8([0, 0, 0, 0x07, 1, 2]))).toEqual({ kind: "error", message: "unknown address type 7" });
  });
});

describe("formatIpv6 (RFC 5952)", () => {
  const bytes = (s: string) => {
    const out: number[] = [];
    for (const g of s.split(":")) out.push(parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff);
    return u8(out);
  };
  test.each([
    ["0:0:0:0:0:0:0:1", "::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["fe80:0:0:0:0:0:0:0", "fe80::"],
    ["0:0:0:0:0:ffff:7f00:1", "::ffff:127.0.0.1"],
  ])("%s → %s", (full, want) => {
    expect(formatIpv6(bytes(full))).toBe(want);
  });
});

describe("replies", () => {
  test("reply with IPv4, IPv6 and no bound address", () => {
    expect(Array.from(replyBytes(0, { address: "127.0.0.1", port: 0x1234 }))).toEqual([5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34]);
    expect(Array.from(replyBytes(0, { address: "::1", port: 80 }))).toEqual([5, 0, 0, 4, ...new Array(15).fill(0), 1, 0, 80]);
    expect(Array.from(replyBytes(REP.NOT_ALLOWED))).toEqual([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(encodeAddress("fe80::1%lo", 1))).toEqual([4, 0xfe, 0x80, ...new Array(13).fill(0), 1, 0, 1]);
    expect(Array.from(encodeAddress("not-an-ip", 99))).toEqual([1, 0, 0, 0, 0, 0, 0]);
  });
  test("dial errors map to SPEC-network §5 codes", () => {
    expect(
      (["network_unreachable", "host_unreachable", "refused", "timeout", "other"] as const).map(repForDialError),
    ).toEqual([3, 4, 5, 6, 1]);
  });
});

describe("classifyFirstBytes", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  test.each([
    ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", { kind: "http", method: "GET" }],
    ["POST /submit HTTP/1.0\r\n", { kind: "http", method: "POST" }],
    ["OPTIONS * HTTP/1.1\n", { kind: "http", method: "OPTIONS" }],
    ["GET / HTTP/2\r\n", { kind: "other", why: "not an HTTP/1.x request line" }],
    ["SSH-2.0-OpenSSH_9.6\r\n", { kind: "other", why: "not an HTTP request line" }],
    [" GET / HTTP/1.1\r\n", { kind: "other", why: "not an HTTP request line" }],
  ])("%j", (text, want) => {
    expect(classifyFirstBytes(enc(text), 8192)).toEqual(want as never);
  });
  test("prefixes are incomplete; TLS record header is TLS; bounds apply", () => {
    expect(classifyFirstBytes(enc("GE"), 8192)).toEqual({ kind: "incomplete" });
    expect(classifyFirstBytes(enc("GET /long"), 8192)).toEqual({ kind: "incomplete" });
    expect(classifyFirstBytes(u8([0x16, 0x03]), 8192)).toEqual({ kind: "incomplete" });
    expect(classifyFirstBytes(u8([0x16, 0x03, 0x01, 0x02, 0x00]), 8192)).toEqual({ kind: "tls" });
    expect(classifyFirstBytes(u8([0x16, 0x09, 0x01]), 8192)).toEqual({ kind: "other", why: "not a TLS record" });
    expect(classifyFirstBytes(enc("GET /" + "a".repeat(100)), 64)).toEqual({ kind: "other", why: "request line too long" });
    expect(classifyFirstBytes(enc("A".repeat(40)), 8192)).toEqual({ kind: "other", why: "method too long" });
  });
});
