/**
 * Workload identity through the real listener and client (in-process, http fakes on
 * 127.0.0.1 with injected URLs): renewal off the request path, 401 and 502 handling.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHttp1Client } from "../../../src/http1/client.ts";
import { loadLibc } from "../../../src/hardening/libc.ts";
import { obtainAccessToken, type IssuedToken, type TokenExchangeDeps } from "../../../src/responses/oidc/token-exchange.ts";
import { startTokenSource } from "../../../src/responses/oidc/token-source.ts";
import { startResponsesProxy } from "../../../src/responses/server.ts";
import { FakeClock } from "./fake-clock.ts";

const ACCESS = "urn:ietf:params:oauth:token-type:access_token";

describe("forwarding with a renewed access token", () => {
  const clock = new FakeClock(Date.now());
  let issued = 0;
  /** When set, the exchange answers only once this resolves (a slow OpenAI). */
  let gate: Promise<void> | null = null;
  let exchangeStatus = 200;
  const exchangeSeen = Promise.withResolvers<void>();
  let onExchange = () => {};
  const auth = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      if (new URL(req.url).pathname === "/gh") return Response.json({ value: "jwt" });
      await req.text();
      onExchange();
      if (gate) await gate;
      if (exchangeStatus !== 200) return new Response(null, { status: exchangeStatus });
      issued++;
      return Response.json({
        access_token: `at-${issued}`,
        token_type: "Bearer",
        issued_token_type: ACCESS,
        expires_in: 600,
        expires_at: Math.floor(clock.now() / 1000) + 600,
      });
    },
  });
  const upstreamSaw: string[] = [];
  let upstreamStatus = 200;
  const upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      upstreamSaw.push(req.headers.get("authorization") ?? "");
      await req.text();
      return new Response("ok", { status: upstreamStatus });
    },
  });
  const client = createHttp1Client({ proxyEnv: null });
  const deps: TokenExchangeDeps = {
    client,
    libc: loadLibc(),
    config: { audience: "a", identityProviderId: "i", serviceAccountId: "s", requestUrl: new URL(`http://127.0.0.1:${auth.port}/gh`) },
    requestAuthorization: new TextEncoder().encode("Bearer req"),
    tokenUrl: new URL(`http://127.0.0.1:${auth.port}/oauth/token`),
    now: () => clock.now(),
  };
  const freed: string[] = [];
  /** Every issued token records its own release (read before free: the page is unmapped after). */
  const tracked = async (): Promise<IssuedToken> => {
    const t = await obtainAccessToken(deps);
    const name = new TextDecoder().decode(t.authorization);
    return { ...t, free: () => (freed.push(name), t.free()) };
  };
  let renewal: Promise<IssuedToken> | null = null;
  const errors: string[] = [];
  let source: ReturnType<typeof startTokenSource>;
  let proxy: ReturnType<typeof startResponsesProxy>;
  const post = () => fetch(`http://127.0.0.1:${proxy.port}/v1/responses`, { method: "POST", body: "{}" });

  afterAll(async () => {
    await proxy?.stop(0);
    source?.stop();
    client.close();
    auth.stop(true);
    upstream.stop(true);
  });

  test("a slow renewal never makes a request wait while the old token is valid", async () => {
    source = startTokenSource({
      first: await tracked(),
      renew: () => (renewal = tracked()),
      clock,
      logError: (l) => errors.push(l),
    });
    proxy = startResponsesProxy({
      port: 0,
      httpShutdown: false,
      upstream: new URL(`http://127.0.0.1:${upstream.port}/v1/responses`),
      credentials: source,
      client,
      dumper: null,
      onShutdown: () => {},
      logError: (l) => errors.push(l),
    });
    const release = Promise.withResolvers<void>();
    gate = release.promise;
    onExchange = () => exchangeSeen.resolve();
    // 600 s token: the timer renews at 540 s. The fake exchange now holds its answer.
    clock.advance(540_000);
    await exchangeSeen.promise;
    const during = await Promise.all(Array.from({ length: 20 }, () => post().then(async (r) => [r.status, await r.text()])));
    expect(during).toEqual(Array.from({ length: 20 }, () => [200, "ok"]));
    expect(new Set(upstreamSaw)).toEqual(new Set(["Bearer at-1"]));
    // The renewal is still pending: every request above completed without it.
    expect(issued).toBe(1);
    release.resolve();
    gate = null;
    await renewal;
    upstreamSaw.length = 0;
    expect((await post()).status).toBe(200);
    expect(upstreamSaw).toEqual(["Bearer at-2"]);
    expect(freed).toEqual(["Bearer at-1"]);
    expect(errors).toEqual([]);
  });

  test("an upstream 401 reaches the client and drops the token; the next request waits for a new one", async () => {
    upstreamStatus = 401;
    upstreamSaw.length = 0;
    const r = await post();
    expect([r.status, await r.text()]).toEqual([401, "ok"]);
    upstreamStatus = 200;
    expect((await post()).status).toBe(200);
    expect(upstreamSaw).toEqual(["Bearer at-2", "Bearer at-3"]);
    expect(freed).toEqual(["Bearer at-1", "Bearer at-2"]);
  });

  test("no valid token and a failing renewal: empty 502 at once and the SPEC log line; served again after a retry", async () => {
    exchangeStatus = 503;
    renewal = null;
    clock.advance(540_000); // the renewal timer fires and fails
    await renewal!.catch(() => {});
    clock.advance(60_000); // at-3 expires; the 1 s retry failed too
    await renewal!.catch(() => {});
    const r = await post();
    expect([r.status, await r.text()]).toEqual([502, ""]);
    expect(errors).toContain("forwarding error: workload identity renewal temporarily unavailable; retry later");
    expect(errors).toContain("workload identity renewal failed: OpenAI workload identity token request rejected (HTTP 503)");
    expect(freed).toContain("Bearer at-3");
    exchangeStatus = 200;
    renewal = null;
    clock.advance(clock.nextIn()!);
    await renewal;
    upstreamSaw.length = 0;
    expect((await post()).status).toBe(200);
    expect(upstreamSaw).toEqual(["Bearer at-4"]);
  });
});
