/**
 * The policy decides everything it can know when a request is judged (SPEC-network §3): the
 * one read-only rule (`allowsMethod`, write channels included), the write-channel fact
 * (`isWriteChannel`), UDP in limited mode, MITM availability, and the `x-unix-socket` list —
 * each deny with its source.
 */
import { describe, expect, test, afterAll } from "bun:test";
import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RequestHead } from "../../src/http1/server-request-head.ts";
import { isWriteChannel } from "../../src/network/http/request-facts.ts";
import { allowsMethod, compilePolicy, evaluatePolicy, type PolicyState } from "../../src/network/policy.ts";
import type { PolicyRequest } from "../../src/network/types.ts";
import { testConfig } from "../helpers/network.ts";
import { removeTempDirs, tempDir } from "../helpers/temp.ts";

afterAll(removeTempDirs);

const resolver = async () => ["93.184.216.34"];
const LIMITED: PolicyState = { enabled: true, mode: "limited", mitmEnabled: false };
const FULL: PolicyState = { enabled: true, mode: "full", mitmEnabled: false };
const req = (over: Partial<PolicyRequest>): PolicyRequest => ({ protocol: "http", host: "ok.test", port: 80, method: "GET", client: null, ...over });
const policy = compilePolicy(testConfig({ policy: { allowedDomains: ["ok.test"] } }));

describe("allowsMethod (the one read-only rule)", () => {
  test.each([
    ["full", "DELETE", true, true],
    ["limited", "GET", false, true],
    ["limited", "HEAD", false, true],
    ["limited", "OPTIONS", false, true],
    ["limited", "GET", true, false],
    ["limited", "POST", false, false],
    ["limited", "get", false, false],
  ] as const)("%s %s writeChannel=%p → %p", (mode, method, wc, want) => {
    expect(allowsMethod(mode, method, wc)).toBe(want);
  });
});

describe("isWriteChannel (the one write-channel fact)", () => {
  const head = (headers: Array<[string, string]>, framing: RequestHead["framing"] = { kind: "none" }): RequestHead => ({
    method: "GET",
    target: "/",
    version: "HTTP/1.1",
    headers,
    framing,
    keepAlive: true,
  });
  test.each([
    ["no body, plain fields", head([["Accept", "*/*"]]), false],
    ["content-length 0", head([], { kind: "length", length: 0 }), false],
    ["a body", head([], { kind: "length", length: 1 }), true],
    ["chunked", head([], { kind: "chunked" }), true],
    ["Upgrade", head([["Upgrade", "websocket"]]), true],
    ["override to POST", head([["X-HTTP-Method-Override", "POST"]]), true],
    ["X-HTTP-Method: delete", head([["X-HTTP-Method", "delete"]]), true],
    ["X-Method-Override: GET", head([["X-Method-Override", " get "]]), false],
  ] as const)("%s → %p", (_name, h, want) => expect(isWriteChannel(h)).toBe(want));
});

describe("mode guard verdicts carry their source", () => {
  test("a write channel on a read method is method_not_allowed from mode_guard; full mode allows it", async () => {
    expect(await evaluatePolicy(policy, LIMITED, req({ writeChannel: true }), resolver)).toEqual({
      action: "deny",
      reason: "method_not_allowed",
      source: "mode_guard",
      host: "ok.test",
    });
    expect((await evaluatePolicy(policy, FULL, req({ writeChannel: true }), resolver)).action).toBe("allow");
  });

  test("UDP datagrams are denied in limited mode (after the host steps)", async () => {
    const udp = req({ protocol: "socks5_udp", method: null });
    expect(await evaluatePolicy(policy, LIMITED, udp, resolver)).toMatchObject({ reason: "method_not_allowed", source: "mode_guard" });
    expect(await evaluatePolicy(policy, LIMITED, { ...udp, host: "no.test" }, resolver)).toMatchObject({ reason: "not_allowed", source: "baseline_policy" });
    expect((await evaluatePolicy(policy, FULL, udp, resolver)).action).toBe("allow");
  });

  test("limited CONNECT without MITM is mitm_required from proxy_state; disabled is proxy_state", async () => {
    const connect = req({ protocol: "https_connect", method: "CONNECT", port: 443 });
    expect(await evaluatePolicy(policy, LIMITED, connect, resolver)).toMatchObject({ reason: "mitm_required", source: "proxy_state" });
    expect((await evaluatePolicy(policy, { ...LIMITED, mitmEnabled: true }, connect, resolver)).action).toBe("allow");
    expect(await evaluatePolicy(policy, { ...FULL, enabled: false }, connect, resolver)).toMatchObject({
      reason: "proxy_disabled",
      source: "proxy_state",
    });
  });
});

describe.skipIf(process.platform === "win32")("x-unix-socket decisions", () => {
  test("order: disabled → mode guard → list (literal or resolved); the allow names the checked path", async () => {
    const dir = tempDir("cnp-unix-policy-");
    try {
      const real = join(dir, "real.sock");
      const link = join(dir, "link.sock");
      writeFileSync(real, "");
      symlinkSync(real, link);
      const p = compilePolicy(testConfig({ policy: { allowUnixSockets: [real] } }));
      const unix = (path: string, over: Partial<PolicyRequest> = {}) =>
        req({ protocol: "unix_socket", host: "unix-socket", port: 0, socketPath: path, ...over });
      expect(await evaluatePolicy(p, FULL, unix(real), resolver)).toEqual({ action: "allow", host: "unix-socket", addresses: [real] });
      expect(await evaluatePolicy(p, FULL, unix(link), resolver)).toEqual({ action: "allow", host: "unix-socket", addresses: [real] });
      expect(await evaluatePolicy(p, FULL, unix("relative.sock"), resolver)).toMatchObject({ reason: "not_allowed", source: "baseline_policy" });
      expect(await evaluatePolicy(p, FULL, unix(join(dir, "other.sock")), resolver)).toMatchObject({ reason: "not_allowed" });
      expect(await evaluatePolicy(p, LIMITED, unix(join(dir, "other.sock"), { method: "POST" }), resolver)).toMatchObject({
        reason: "method_not_allowed",
        source: "mode_guard",
      });
      expect(await evaluatePolicy(p, { ...LIMITED, enabled: false }, unix(real, { method: "POST" }), resolver)).toMatchObject({
        reason: "proxy_disabled",
        host: "unix-socket",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
