import { describe, expect, test } from "bun:test";
import { absoluteForm, buildRequestHead, originForm } from "../../src/http1/client-request-head.ts";

const enc = new TextEncoder();
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("buildRequestHead", () => {
  test("secretHeaders: every field written as name, prefix, bytes; client fields of those names dropped (raw ones too)", () => {
    const raw = enc.encode("Authorization: Bearer client\r\nX-Npm-Token: mine\r\nAccept: */*\r\n");
    const fields = [0, 13, 15, 28, 30, 41, 43, 47, 49, 55, 57, 60];
    const head = buildRequestHead({
      method: "GET",
      target: "/x",
      headers: [["host", "h.test"], ["AUTHORIZATION", "Basic dup"]],
      rawFields: { bytes: raw, fields },
      secretHeaders: [
        { name: "authorization", prefix: "Bearer ", value: enc.encode("tok-1") },
        { name: "x-npm-token", value: enc.encode("tok-2") },
      ],
      framing: { kind: "none" },
    });
    expect(text(head)).toBe(
      "GET /x HTTP/1.1\r\nhost: h.test\r\naccept: */*\r\nauthorization: Bearer tok-1\r\nx-npm-token: tok-2\r\n\r\n",
    );
    expect(() =>
      buildRequestHead({ method: "GET", target: "/", headers: [], secretHeaders: [{ name: "x", prefix: "a\r\n", value: enc.encode("v") }], framing: { kind: "none" } }),
    ).toThrow('invalid byte in value of request header "x"');
  });

  test("writes request line, caller fields, secret, framing and the empty line exactly", () => {
    const head = buildRequestHead({
      method: "POST",
      target: "/v1/responses?api-version=1",
      headers: [
        ["host", "api.test"],
        ["Content-Length", "999"], // client-owned: dropped
        ["Transfer-Encoding", "gzip"], // dropped
        ["Connection", "close"], // dropped
        ["keep-alive", "timeout=5"], // dropped
        ["Authorization", "Bearer from-client"], // replaced by the secret header
        ["x-custom", "a\tb é"],
      ],
      secretHeader: { name: "authorization", value: enc.encode("Bearer sk-test_123") },
      framing: { kind: "length", length: 17 },
    });
    expect(text(head)).toBe(
      "POST /v1/responses?api-version=1 HTTP/1.1\r\n" +
        "host: api.test\r\n" +
        "x-custom: a\tb é\r\n" +
        "authorization: Bearer sk-test_123\r\n" +
        "content-length: 17\r\n" +
        "\r\n",
    );
  });

  test("chunked framing, extra fields, no secret", () => {
    const head = buildRequestHead({
      method: "PUT",
      target: "http://h.test:8080/a",
      headers: [["host", "h.test:8080"]],
      framing: { kind: "chunked" },
      extra: [["proxy-authorization", "Basic dTpw"]],
    });
    expect(text(head)).toBe(
      "PUT http://h.test:8080/a HTTP/1.1\r\nhost: h.test:8080\r\ntransfer-encoding: chunked\r\nproxy-authorization: Basic dTpw\r\n\r\n",
    );
  });

  test("no framing field for a body-less GET", () => {
    const head = buildRequestHead({ method: "GET", target: "/", headers: [["host", "x"]], framing: { kind: "none" } });
    expect(text(head)).toBe("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  });

  test.each([
    ["method with space", { method: "GE T" }, "invalid request method"],
    ["empty method", { method: "" }, "invalid request method"],
    ["target with space", { target: "/a b" }, "invalid byte in request-target"],
    ["target with CR", { target: "/a\r" }, "invalid byte in request-target"],
    ["header name with colon", { headers: [["x:y", "1"]] }, "invalid request header name"],
    ["header value with LF", { headers: [["x-a", "secret\nvalue"]] }, 'invalid byte in value of request header "x-a"'],
    ["header value with NUL", { headers: [["x-a", "v\0"]] }, 'invalid byte in value of request header "x-a"'],
    ["header value beyond Latin-1", { headers: [["x-a", "€"]] }, 'invalid byte in value of request header "x-a"'],
  ] as const)("rejects %s without echoing values", (_n, patch, message) => {
    const input = { method: "GET", target: "/", headers: [["host", "x"]] as Array<[string, string]>, framing: { kind: "none" as const }, ...patch };
    let err: Error | null = null;
    try {
      buildRequestHead(input as Parameters<typeof buildRequestHead>[0]);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect(err!.message).toBe(message);
    expect(err!.message).not.toContain("secret");
  });

  test("rejects a secret value with CR/LF (message names the field only)", () => {
    expect(() =>
      buildRequestHead({
        method: "POST",
        target: "/",
        headers: [],
        secretHeader: { name: "authorization", value: enc.encode("Bearer a\r\nx: y") },
        framing: { kind: "none" },
      }),
    ).toThrow('invalid byte in value of request header "authorization"');
  });

  test("request-target forms", () => {
    const u = new URL("https://user:pw@h.test:8443/p/a%20b?q=1&r#frag");
    expect(originForm(u)).toBe("/p/a%20b?q=1&r");
    expect(absoluteForm(u)).toBe("https://h.test:8443/p/a%20b?q=1&r");
    expect(absoluteForm(new URL("http://[::1]:80/x"))).toBe("http://[::1]/x");
  });
});
