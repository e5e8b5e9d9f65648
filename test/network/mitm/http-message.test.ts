/**
 * Pure helpers of the MITM front end of the one HTTP loop: authority parsing/matching and the
 * pinned request target (src/network/http/target.ts), framing choice and head bytes
 * (src/network/http/response-framing.ts).
 */
import { describe, expect, test } from "bun:test";
import { chooseFraming, endToEndHeaders, responseHeadBytes } from "../../../src/network/http/response-framing.ts";
import {
  authorityMatches,
  parseNormalizedAuthority as parseAuthority,
  pinnedRequestTarget,
} from "../../../src/network/http/target.ts";
import { mitmFrontEnd } from "../../../src/network/mitm/inner-http.ts";
import type { RequestHead } from "../../../src/http1/server-request-head.ts";

describe("parseAuthority / authorityMatches", () => {
  const cases: Array<[string, ReturnType<typeof parseAuthority>]> = [
    ["allowed.test", { host: "allowed.test", port: null }],
    ["Allowed.Test.:8443", { host: "allowed.test", port: 8443 }],
    ["[::1]:443", { host: "::1", port: 443 }],
    ["[::1]", { host: "::1", port: null }],
    ["127.1", { host: "127.0.0.1", port: null }],
    ["allowed.test:", { host: "allowed.test", port: null }],
    ["allowed.test:0", null],
    ["allowed.test:65536", null],
    ["allowed.test:8x", null],
    ["::1", null],
    ["[::1]x", null],
    ["", null],
  ];
  for (const [input, want] of cases) {
    test(JSON.stringify(input), () => expect(parseAuthority(input)).toEqual(want));
  }

  test("matching: same normalised host; a port, when given, must equal the tunnel's", () => {
    const target = { host: "allowed.test", port: 8443 };
    expect(authorityMatches({ host: "allowed.test", port: null }, target)).toBe(true);
    expect(authorityMatches({ host: "allowed.test", port: 8443 }, target)).toBe(true);
    expect(authorityMatches({ host: "allowed.test", port: 443 }, target)).toBe(false);
    expect(authorityMatches({ host: "other.test", port: 8443 }, target)).toBe(false);
  });
});

describe("chooseFraming", () => {
  const len: Array<[string, string]> = [["content-length", "5"]];
  const table: Array<[string, number, Array<[string, string]>, "HTTP/1.0" | "HTTP/1.1", string]> = [
    ["HEAD", 200, len, "HTTP/1.1", "none"],
    ["GET", 204, [], "HTTP/1.1", "none"],
    ["GET", 304, len, "HTTP/1.1", "none"],
    ["GET", 200, len, "HTTP/1.1", "length"],
    ["GET", 200, [], "HTTP/1.1", "chunked"],
    ["GET", 200, [], "HTTP/1.0", "close"],
    ["GET", 200, [...len, ["transfer-encoding", "chunked"]], "HTTP/1.1", "chunked"],
    ["GET", 200, [...len, ["content-length", "5"]], "HTTP/1.1", "chunked"],
  ];
  for (const [method, status, headers, version, want] of table) {
    test(`${method} ${status} ${JSON.stringify(headers)} ${version} → ${want}`, () => {
      expect(chooseFraming(method, status, headers, version) as string).toBe(want);
    });
  }
});

describe("responseHeadBytes / endToEndHeaders", () => {
  test("hop-by-hop and Connection-listed fields dropped, ours added, latin1 kept byte-exact", () => {
    const headers: Array<[string, string]> = [
      ["content-type", "text/plain"],
      ["connection", "x-secret-hop"],
      ["x-secret-hop", "1"],
      ["keep-alive", "timeout=5"],
      ["transfer-encoding", "chunked"],
      ["content-length", "9"],
      ["x-latin1", "caf\u00e9"],
    ];
    const bytes = responseHeadBytes(200, "OK", headers, "chunked", true, "HTTP/1.1");
    expect(Buffer.from(bytes).toString("latin1")).toBe(
      "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-latin1: caf\u00e9\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    expect(bytes.includes(0xe9)).toBe(true);
    expect(Buffer.from(responseHeadBytes(404, "", [["content-length", "0"]], "length", false, "HTTP/1.0")).toString()).toBe(
      "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    expect(Buffer.from(responseHeadBytes(200, "OK", [["content-length", "0"]], "length", true, "HTTP/1.0")).toString()).toBe(
      "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n",
    );
    expect(endToEndHeaders([["Host", "a"], ["Upgrade", "websocket"], ["Proxy-Authorization", "x"]])).toEqual([["Host", "a"]]);
  });
});

describe("pinnedRequestTarget (MITM front end)", () => {
  const fe = mitmFrontEnd({ host: "allowed.test", port: 8443, addresses: ["127.0.0.1"] });
  const requestPath = (h: RequestHead) => {
    const r = pinnedRequestTarget(h, fe);
    return r.ok ? r.path : r.answer === "host_mismatch" ? "mismatch" : null;
  };
  const head = (t: string): RequestHead => ({
    method: "GET",
    target: t,
    version: "HTTP/1.1",
    headers: [["host", "allowed.test:8443"]],
    framing: { kind: "none" },
    keepAlive: true,
  });
  const table: Array<[string, string | null]> = [
    ["/a/b?q=1", "/a/b?q=1"],
    ["https://allowed.test:8443/x?y", "/x?y"],
    ["https://ALLOWED.test/x", "/x"],
    ["https://allowed.test:8443", "/"],
    ["https://allowed.test:8443?q", "/?q"],
    ["https://other.test:8443/x", "mismatch"],
    ["https://allowed.test:443/x", "mismatch"],
    ["https://user@allowed.test:8443/x", null],
    ["ftp://allowed.test/x", null],
    ["*", null],
  ];
  for (const [t, want] of table) test(`${t} → ${want}`, () => expect(requestPath(head(t))).toBe(want));
});
