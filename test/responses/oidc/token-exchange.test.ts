import { afterAll, describe, expect, test } from "bun:test";
import { createHttp1Client } from "../../../src/http1/client.ts";
import { loadLibc } from "../../../src/hardening/libc.ts";
import type { OidcConfig } from "../../../src/responses/oidc/config.ts";
import { obtainAccessToken, exchangeRequestBody, type TokenExchangeDeps } from "../../../src/responses/oidc/token-exchange.ts";
import { startFakeProxy } from "../../http1/fake-proxy.ts";
import { createTestPki } from "../tls-fixture.ts";

const libc = loadLibc();
const NOW = 1_800_000_000_000;
const ACCESS = "urn:ietf:params:oauth:token-type:access_token";

type Handler = (req: Request) => Response | Promise<Response>;

/** Fake GitHub and OpenAI on one https server (test CA); each test sets the two handlers. */
describe("the two workload identity calls against fake servers (https, test CA)", () => {
  const pki = createTestPki();
  let github: Handler = () => Response.json({ value: "jwt.sub.ject" });
  let openai: Handler = () => okToken();
  const seen: Array<{ method: string; path: string; headers: Record<string, string>; body: string }> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    tls: { cert: pki.certPem, key: pki.keyPem },
    async fetch(req) {
      const u = new URL(req.url);
      seen.push({ method: req.method, path: u.pathname + u.search, headers: Object.fromEntries(req.headers), body: await req.text() });
      return (u.pathname === "/gh" ? github : openai)(req);
    },
  });
  const client = createHttp1Client({ proxyEnv: null, extraCa: [pki.caPem] });
  afterAll(() => {
    client.close();
    server.stop(true);
  });

  const config = (over: Partial<OidcConfig> = {}): OidcConfig => ({
    audience: "my aud",
    identityProviderId: "idp_1",
    serviceAccountId: "sa\"1",
    requestUrl: new URL(`https://localhost:${server.port}/gh?x=1&audience=ignored`),
    ...over,
  });
  const deps = (over: Partial<TokenExchangeDeps> = {}): TokenExchangeDeps => ({
    client,
    libc,
    config: config(),
    requestAuthorization: new TextEncoder().encode("Bearer req.tok-EN"),
    tokenUrl: new URL(`https://localhost:${server.port}/oauth/token`),
    now: () => NOW,
    ...over,
  });
  function okToken(over: Record<string, unknown> = {}) {
    return Response.json({
      access_token: "at-1",
      token_type: "Bearer",
      issued_token_type: ACCESS,
      expires_in: 3600,
      expires_at: NOW / 1000 + 1800,
      ...over,
    });
  }
  const run = async (over: Partial<TokenExchangeDeps> = {}) => {
    try {
      const t = await obtainAccessToken(deps(over));
      const out = { auth: new TextDecoder().decode(t.authorization), expiresInMs: t.expiresAtMs - NOW, receivedAtMs: t.receivedAtMs };
      t.free();
      return out;
    } catch (e) {
      return (e as Error).message;
    }
  };

  test("request shapes: GET with audience last and the request token; POST with the RFC 8693 body in reference key order", async () => {
    seen.length = 0;
    github = () => Response.json({ value: "jwt\"\n\u00e9" });
    openai = () => okToken();
    expect(await run()).toEqual({ auth: "Bearer at-1", expiresInMs: 1_800_000, receivedAtMs: NOW });
    expect(seen.map((s): unknown[] => [s.method, s.path, s.headers.authorization, s.headers.accept, s.headers["content-type"]])).toEqual([
      ["GET", "/gh?x=1&audience=my+aud", "Bearer req.tok-EN", "*/*", undefined],
      ["POST", "/oauth/token", undefined, "*/*", "application/json"],
    ]);
    expect(seen[1]!.body).toBe(
      '{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","subject_token_type":"urn:ietf:params:oauth:token-type:jwt",' +
        '"subject_token":"jwt\\"\\né","identity_provider_id":"idp_1","service_account_id":"sa\\"1"}',
    );
    github = () => Response.json({ value: "jwt.sub.ject" });
  });

  test("effective expiry is min(expires_at, receipt + expires_in)", async () => {
    openai = () => okToken({ expires_in: 60, expires_at: NOW / 1000 + 1800 });
    expect(await run()).toMatchObject({ expiresInMs: 60_000 });
    openai = () => okToken({ expires_in: 3600, expires_at: NOW / 1000 + 5, token_type: "bEaReR" });
    expect(await run()).toMatchObject({ expiresInMs: 5_000 });
    openai = () => okToken();
  });

  const big = "x".repeat(64 * 1024);
  test.each<[string, Handler, string]>([
    ["302", () => new Response(null, { status: 302, headers: { location: "https://localhost/elsewhere" } }), "GitHub OIDC token request rejected (HTTP 302)"],
    ["403 with a body", () => new Response("secret detail", { status: 403 }), "GitHub OIDC token request rejected (HTTP 403)"],
    ["oversized (content-length)", () => Response.json({ value: "a", pad: big }), "GitHub OIDC returned an oversized token response"],
    ["oversized (chunked)", () => new Response(new Blob([JSON.stringify({ value: "a", pad: big })]).stream()), "GitHub OIDC returned an oversized token response"],
    ["not JSON", () => new Response("value=x"), "GitHub OIDC returned an invalid token response"],
    ["no value", () => Response.json({ token: "x" }), "GitHub OIDC returned an invalid token response"],
    ["value not a string", () => Response.json({ value: 1 }), "GitHub OIDC returned an invalid token response"],
    ["an array", () => Response.json(["x"]), "GitHub OIDC returned an invalid token response"],
    ["empty value", () => Response.json({ value: "" }), "workload identity source returned an invalid subject token"],
    ["value of 16,385 bytes", () => Response.json({ value: "j".repeat(16_385) }), "workload identity source returned an invalid subject token"],
  ])("GitHub %s → %s", async (_name, handler, message) => {
    github = handler;
    expect(await run()).toBe(message);
    github = () => Response.json({ value: "jwt.sub.ject" });
  });

  test("GitHub: 16,384-byte value accepted; transport failure and timeout", async () => {
    github = () => Response.json({ value: "j".repeat(16_384) });
    expect(await run()).toMatchObject({ auth: "Bearer at-1" });
    github = () => Response.json({ value: "jwt" });
    expect(await run({ config: config({ requestUrl: new URL("https://127.0.0.1:1/gh") }) })).toBe("GitHub OIDC token request failed");
    // Without the test CA the certificate is not trusted: a transport failure.
    const untrusting = createHttp1Client({ proxyEnv: null, extraCa: [] });
    expect(await run({ client: untrusting })).toBe("GitHub OIDC token request failed");
    untrusting.close();
    const stall = Promise.withResolvers<Response>();
    github = () => stall.promise;
    expect(await run({ timeoutMs: 150 })).toBe("GitHub OIDC token request failed");
    stall.resolve(new Response("late"));
    github = () => Response.json({ value: "jwt" });
  });

  test.each<[string, Handler, string]>([
    ["401", () => new Response('{"error":"denied"}', { status: 401 }), "OpenAI workload identity token request rejected (HTTP 401)"],
    ["307", () => new Response(null, { status: 307, headers: { location: "/x" } }), "OpenAI workload identity token request rejected (HTTP 307)"],
    ["oversized", () => okToken({ pad: big }), "OpenAI workload identity returned an oversized token response"],
    ["not JSON", () => new Response("{"), "OpenAI workload identity returned an invalid token response"],
    ["missing expires_at", () => okToken({ expires_at: undefined }), "OpenAI workload identity returned an invalid token response"],
    ["expires_in a float", () => okToken({ expires_in: 10.5 }), "OpenAI workload identity returned an invalid token response"],
    ["expires_in a string", () => okToken({ expires_in: "10" }), "OpenAI workload identity returned an invalid token response"],
    ["expires_in negative", () => okToken({ expires_in: -1 }), "OpenAI workload identity returned an invalid token response"],
    ["access_token not a string", () => okToken({ access_token: 5 }), "OpenAI workload identity returned an invalid token response"],
    ["access_token empty", () => okToken({ access_token: "" }), "OpenAI workload identity returned an invalid token response"],
    ["access_token with a space", () => okToken({ access_token: "a b" }), "OpenAI workload identity returned an invalid token response"],
    ["access_token of 16,385 bytes", () => okToken({ access_token: "a".repeat(16_385) }), "OpenAI workload identity returned an invalid token response"],
    ["token_type mac", () => okToken({ token_type: "mac" }), "OpenAI returned an unsupported workload identity token type"],
    ["issued_token_type jwt", () => okToken({ issued_token_type: "urn:ietf:params:oauth:token-type:jwt" }), "OpenAI returned an unsupported workload identity token type"],
    ["expires_in 0", () => okToken({ expires_in: 0 }), "OpenAI returned an expired workload identity token"],
    ["expires_at now", () => okToken({ expires_at: NOW / 1000 }), "OpenAI returned an expired workload identity token"],
    ["expires_in 3601", () => okToken({ expires_in: 3601 }), "OpenAI returned an invalid token lifetime"],
  ])("OpenAI %s → %s", async (_name, handler, message) => {
    openai = handler;
    expect(await run()).toBe(message);
    openai = () => okToken();
  });

  test("OpenAI: an escaped access token is decoded; transport failure and timeout", async () => {
    openai = () => new Response(`{"access_token":"a\\/b\\u002b=","token_type":"bearer","issued_token_type":"${ACCESS}","expires_in":1,"expires_at":${NOW / 1000 + 9}}`);
    expect(await run()).toEqual({ auth: "Bearer a/b+=", expiresInMs: 1000, receivedAtMs: NOW });
    expect(await run({ tokenUrl: new URL("https://127.0.0.1:1/oauth/token") })).toBe("OpenAI workload identity token exchange failed");
    const stall = Promise.withResolvers<Response>();
    openai = () => stall.promise;
    expect(await run({ timeoutMs: 150 })).toBe("OpenAI workload identity token exchange failed");
    stall.resolve(new Response("late"));
    openai = () => okToken();
  });

  test("both calls honour HTTPS_PROXY (a CONNECT tunnel per origin) and NO_PROXY", async () => {
    const proxy = startFakeProxy();
    try {
      const via = createHttp1Client({ proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` }, extraCa: [pki.caPem] });
      expect(await run({ client: via })).toMatchObject({ auth: "Bearer at-1" });
      via.close();
      // Both calls go to one origin here: one tunnel, kept alive for the second call.
      expect(proxy.heads).toEqual([`CONNECT localhost:${server.port} HTTP/1.1\r\nhost: localhost:${server.port}\r\n\r\n`]);
      const direct = createHttp1Client({ proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, NO_PROXY: "localhost" }, extraCa: [pki.caPem] });
      const before = proxy.heads.length;
      expect(await run({ client: direct })).toMatchObject({ auth: "Bearer at-1" });
      direct.close();
      expect(proxy.heads.length).toBe(before);
    } finally {
      proxy.stop();
    }
  });
});

test("the exchange body escapes control characters as serde_json does", () => {
  const subject = new Uint8Array([0x61, 0x01, 0x1f, 0x09, 0x5c, 0x7f]);
  const { page, length } = exchangeRequestBody(null, subject, { audience: "a", identityProviderId: "i\u0001", serviceAccountId: "s/é", requestUrl: new URL("https://h/") });
  const text = new TextDecoder().decode(page.view.subarray(0, length));
  page.free();
  expect(text).toBe(
    '{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","subject_token_type":"urn:ietf:params:oauth:token-type:jwt",' +
      '"subject_token":"a\\u0001\\u001f\\t\\\\\u007f","identity_provider_id":"i\\u0001","service_account_id":"s/é"}',
  );
});
