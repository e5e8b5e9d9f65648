/**
 * Fake GitHub OIDC, OpenAI token endpoint and OpenAI Responses upstream on ONE https server
 * (a test CA), for end-to-end runs of the compiled proxy inside a private network namespace
 * where auth.openai.com and api.openai.com resolve to 127.0.0.1 (see netns.ts):
 *   GET  /github/token?…&audience=…  → {"value": <jwt>}  (checks the request token)
 *   POST /oauth/token                 → a new access token (checks the subject token)
 *   POST /v1/responses                → SSE, 200 for an issued token, 401 otherwise
 * Every secret is random, so a memory scan for it means something.
 */
import type { TestPki } from "../tls-fixture.ts";

const ACCESS = "urn:ietf:params:oauth:token-type:access_token";

export function randomSecret(prefix: string, length = 48): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return prefix + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export interface FakeIdentityOptions {
  pki: TestPki;
  /** 443 inside the namespace; 0 elsewhere. */
  port: number;
  /** `expires_in` of the n-th issued token (1-based), in seconds. */
  lifetime: (n: number) => number;
}

/** What the fakes saw. */
export interface FakeIdentityLog {
  github: Array<{ path: string; authorization: string | null; accept: string | null }>;
  exchanges: Array<{ contentType: string | null; body: string }>;
  upstream: Array<{ host: string | null; authorization: string | null; status: number }>;
}

export function startFakeIdentity(opts: FakeIdentityOptions) {
  const requestToken = randomSecret("ghreq");
  const jwt = randomSecret("eyJfake.", 64);
  const issued: string[] = [];
  const log: FakeIdentityLog = { github: [], exchanges: [], upstream: [] };
  let exchangeWaiters: Array<{ count: number; resolve: () => void }> = [];
  /** Answer the next upstream request with 401 regardless of the token. */
  let fail401 = false;
  let hold: Promise<void> | null = null;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: opts.port,
    idleTimeout: 0,
    tls: { cert: opts.pki.certPem, key: opts.pki.keyPem },
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/github/token") {
        const authorization = req.headers.get("authorization");
        log.github.push({ path: url.pathname + url.search, authorization, accept: req.headers.get("accept") });
        if (authorization !== `Bearer ${requestToken}`) return new Response(null, { status: 401 });
        return Response.json({ value: jwt, count: 1 });
      }
      if (url.pathname === "/oauth/token") {
        const body = await req.text();
        log.exchanges.push({ contentType: req.headers.get("content-type"), body });
        if (hold) await hold;
        if ((JSON.parse(body) as { subject_token?: string }).subject_token !== jwt) return new Response(null, { status: 400 });
        const token = randomSecret(`at${issued.length + 1}x`);
        issued.push(token);
        const expiresIn = opts.lifetime(issued.length);
        const n = issued.length;
        queueMicrotask(() => {
          exchangeWaiters = exchangeWaiters.filter((w) => (n >= w.count ? (w.resolve(), false) : true));
        });
        return Response.json({
          access_token: token,
          token_type: "bearer",
          issued_token_type: ACCESS,
          expires_in: expiresIn,
          expires_at: Math.floor(Date.now() / 1000) + expiresIn,
        });
      }
      if (url.pathname === "/v1/responses" && req.method === "POST") {
        const authorization = req.headers.get("authorization");
        await req.arrayBuffer();
        const status = !fail401 && issued.some((t) => authorization === `Bearer ${t}`) ? 200 : 401;
        fail401 = false;
        log.upstream.push({ host: req.headers.get("host"), authorization, status });
        if (status !== 200) return new Response('{"error":"unauthorized"}', { status });
        return new Response('event: response.completed\ndata: {"type":"response.completed"}\n\n', {
          headers: { "content-type": "text/event-stream" },
        });
      }
      return new Response(null, { status: 404 });
    },
  });
  return {
    port: server.port,
    requestToken,
    jwt,
    issued,
    log,
    /** Resolves once `count` tokens have been issued in total. */
    issuedCount(count: number): Promise<void> {
      if (issued.length >= count) return Promise.resolve();
      const w = Promise.withResolvers<void>();
      exchangeWaiters.push({ count, resolve: w.resolve });
      return w.promise;
    },
    failNextUpstream() {
      fail401 = true;
    },
    /** Hold every exchange answer until the returned function is called. */
    holdExchanges(): () => void {
      const r = Promise.withResolvers<void>();
      hold = r.promise;
      return () => {
        hold = null;
        r.resolve();
      };
    },
    stop: () => server.stop(true),
  };
}
