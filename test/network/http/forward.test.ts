import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import { curl } from "../../helpers/network.ts";
import { createHttp1Client } from "../../../src/http1/client.ts";
import { createUpstreamClients } from "../../../src/network/http/upstream-clients.ts";
import { splitResponse, startFixedTargetListener, startProxy } from "../../helpers/http-proxy.ts";
import { rawClient } from "../../helpers/raw-client.ts";
import { decodeChunked } from "../../helpers/chunked.ts";
import { selfSignedCert } from "../../helpers/pki.ts";
import { removeTempDirs, tempDir } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const BIG = randomBytes(6 * 1024 * 1024 + 123);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const dir = tempDir("h5-fwd-");
const bigFile = join(dir, "big.bin");
writeFileSync(bigFile, BIG);

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  bodySha: string;
  bodyLen: number;
}
const seen: Seen[] = [];
let upstream: Server<undefined>;
let up = 0;
/** A raw origin answering every request with a chunked body (Bun.serve buffers short streams). */
const chunkedOrigin = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(s, d) {
      if (!Buffer.from(d).toString("latin1").endsWith("\r\n\r\n")) return;
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\npart one,\r\n8\r\npart two\r\n0\r\n\r\n");
    },
  },
});

beforeAll(() => {
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const body = new Uint8Array(await req.arrayBuffer());
      seen.push({
        method: req.method,
        path: url.pathname + url.search,
        headers: Object.fromEntries(req.headers),
        bodySha: sha(body),
        bodyLen: body.byteLength,
      });
      if (url.pathname === "/big") return new Response(BIG);
      if (url.pathname === "/echo-sha") return new Response(`${body.byteLength} ${sha(body)}`);
      return new Response(`hello ${req.method} ${url.pathname}${url.search}`, {
        headers: { "x-upstream": "1", connection: "x-private", "x-private": "secret", "keep-alive": "timeout=5" },
      });
    },
  });
  up = upstream.port!;
});
afterAll(() => {
  upstream.stop(true);
  chunkedOrigin.stop(true);
});

const allowAll = { policy: { allowedDomains: ["allowed.test", "nodns.test"], deniedDomains: ["denied.test"], allowLocalBinding: true } };

describe("plain HTTP forwarding through curl", () => {
  const proxy = startProxy(allowAll);
  afterAll(() => proxy.stop());

  test("allowed GET: byte-exact body, path and query kept, hop-by-hop removed both ways, Host and X-Forwarded-For kept", async () => {
    seen.length = 0;
    const r = await curl([
      "-x", proxy.url,
      "-H", "Connection: keep-alive, X-Hop",
      "-H", "X-Hop: 1",
      "-H", "Keep-Alive: 5",
      "-H", "Proxy-Authorization: Basic dTpw",
      "-H", "TE: trailers",
      "-H", "X-Forwarded-For: 10.1.2.3",
      `http://allowed.test:${up}/p/a?q=1&r=%20`,
    ]);
    expect([r.exitCode, r.status, r.body]).toEqual([0, 200, "hello GET /p/a?q=1&r=%20"]);
    expect(r.headers["x-upstream"]).toBe("1");
    expect(r.headers["x-private"]).toBeUndefined();
    expect(r.headers["keep-alive"]).toBeUndefined();
    const h = seen[0]!.headers;
    expect(seen[0]!.path).toBe("/p/a?q=1&r=%20");
    expect(h.host).toBe(`allowed.test:${up}`);
    expect(h["x-forwarded-for"]).toBe("10.1.2.3");
    for (const gone of ["x-hop", "keep-alive", "proxy-authorization", "te", "proxy-connection"]) expect(h[gone]).toBeUndefined();
  });

  test("blocked host: 403 JSON body exactly per SPEC §4, x-proxy-error", async () => {
    const r = await curl(["-x", proxy.url, `http://blocked.test:${up}/x`]);
    expect(r.status).toBe(403);
    expect(r.headers["x-proxy-error"]).toBe("blocked-by-allowlist");
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.body).toBe(
      JSON.stringify({
        status: "blocked",
        host: "blocked.test",
        reason: "not_allowed",
        decision: "deny",
        source: "baseline_policy",
        port: up,
        method: "GET",
        protocol: "http",
        message: "Codex blocked this request: domain not in allowlist.",
        hint: 'add "blocked.test" to network_proxy.policy.allowed_domains; this is a policy decision: do not retry through another route',
      }),
    );
    expect(r.body.startsWith('{"status":"blocked","host":"blocked.test","reason":"not_allowed",')).toBe(true);
  });

  test("denied host and a local literal", async () => {
    const d = await curl(["-x", proxy.url, `http://denied.test:${up}/`]);
    expect([d.status, d.headers["x-proxy-error"], JSON.parse(d.body).reason]).toEqual([403, "blocked-by-denylist", "denied"]);
    // The hint names the denied_domains entry that matched (the context's compiled policy).
    expect(JSON.parse(d.body).hint).toBe(
      '"denied.test" matches denied_domains entry "denied.test"; this is a policy decision: do not retry through another route',
    );
    const strict = startProxy({ policy: { allowedDomains: ["*"], deniedDomains: ["**.evil.test"] } });
    try {
      const l = await curl(["-x", strict.url, `http://127.0.0.1:${up}/`]);
      expect([l.status, l.headers["x-proxy-error"], JSON.parse(l.body).reason, JSON.parse(l.body).host]).toEqual([
        403, "blocked-by-allowlist", "not_allowed_local", "127.0.0.1",
      ]);
      expect(JSON.parse(l.body).hint).toBe(
        'local/private targets need an exact entry "127.0.0.1" in network_proxy.policy.allowed_domains or network_proxy.policy.allow_local_binding = true; this is a policy decision: do not retry through another route',
      );
      const w = await curl(["-x", strict.url, `http://a.b.EVIL.test:${up}/`]);
      expect([w.status, JSON.parse(w.body).host, JSON.parse(w.body).hint]).toEqual([
        403,
        "a.b.evil.test",
        '"a.b.evil.test" matches denied_domains entry "**.evil.test"; this is a policy decision: do not retry through another route',
      ]);
    } finally {
      await strict.stop();
    }
  });

  test("DNS failure → 502 upstream failure; refused upstream → 502", async () => {
    const r = await curl(["-x", proxy.url, `http://nodns.test:${up}/`]);
    expect([r.status, r.body]).toEqual([502, "upstream failure"]);
    const dead = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.end(), data() {} } });
    try {
      const c = await curl(["-x", proxy.url, `http://allowed.test:${dead.port}/`]);
      expect([c.status, c.body]).toEqual([502, "upstream failure"]);
    } finally {
      dead.stop(true);
    }
  });

  test("Host header that disagrees with the absolute target → 400", async () => {
    const r = await curl(["-x", proxy.url, "-H", "Host: other.test", `http://allowed.test:${up}/`]);
    expect([r.status, r.body]).toEqual([400, "Host header does not match request target"]);
    const port = await curl(["-x", proxy.url, "-H", `Host: allowed.test:${up + 1}`, `http://allowed.test:${up}/`]);
    expect([port.status, port.body]).toEqual([400, "Host header does not match request target"]);
  });

  test("a 6 MiB download and a 6 MiB upload are byte-exact (content-length both ways)", async () => {
    const out = join(dir, "down.bin");
    const d = await curl(["-x", proxy.url, "-o", out, `http://allowed.test:${up}/big`]);
    expect([d.exitCode, d.status, d.headers["content-length"]]).toEqual([0, 200, String(BIG.byteLength)]);
    expect(sha(readFileSync(out))).toBe(sha(BIG));
    seen.length = 0;
    const u = await curl(["-x", proxy.url, "--data-binary", `@${bigFile}`, `http://allowed.test:${up}/echo-sha`]);
    expect(u.body).toBe(`${BIG.byteLength} ${sha(BIG)}`);
    // curl asked for 100-continue; the proxy answered it and did not forward the expectation.
    expect(seen[0]!.headers.expect).toBeUndefined();
  });

  test("chunked upload (Transfer-Encoding: chunked) is byte-exact", async () => {
    const u = await curl([
      "-x", proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", `@${bigFile}`, `http://allowed.test:${up}/echo-sha`,
    ]);
    expect([u.status, u.body]).toEqual([200, `${BIG.byteLength} ${sha(BIG)}`]);
  });

  test("a small chunked upload reaches the upstream with its exact bytes", async () => {
    const u = await curl(["-x", proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", "abc", `http://allowed.test:${up}/echo-sha`]);
    expect(u.body).toBe(`3 ${sha(new TextEncoder().encode("abc"))}`);
  });
});

describe("raw protocol edges", () => {
  const proxy = startProxy(allowAll);
  afterAll(() => proxy.stop());

  test("keep-alive: two pipelined requests on one connection are judged differently", async () => {
    const c = await rawClient(proxy.port);
    c.write(
      `GET http://allowed.test:${up}/one HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n` +
        `GET http://blocked.test:${up}/two HTTP/1.1\r\nHost: blocked.test:${up}\r\n\r\n`,
    );
    const all = await c.until((t) => t.includes("hello GET /one") && t.endsWith('"}'));
    const first = splitResponse(all);
    expect(first.status).toBe(200);
    const second = splitResponse(first.body.slice(Number(first.headers["content-length"])));
    expect([second.status, second.headers["x-proxy-error"], JSON.parse(second.body).host]).toEqual([403, "blocked-by-allowlist", "blocked.test"]);
    // Still open: a third request on the same connection works.
    const before = c.text().length;
    c.write(`GET /three HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n`);
    const third = await c.until((t) => t.length > before && t.endsWith("hello GET /three"));
    expect(third.endsWith("hello GET /three")).toBe(true);
    c.socket.end();
  });

  test("a head sent one byte per event-loop turn is parsed", async () => {
    const c = await rawClient(proxy.port);
    const req = `GET http://allowed.test:${up}/slow HTTP/1.1\r\nHost: allowed.test:${up}\r\nConnection: close\r\n\r\n`;
    for (const ch of req) {
      c.write(ch);
      await new Promise((r) => setImmediate(r));
    }
    const res = splitResponse(await c.closed());
    expect([res.status, res.body]).toEqual([200, "hello GET /slow"]);
  });

  const rejects: Array<[string, string, number, string]> = [
    ["origin-form without Host", "GET /x HTTP/1.1\r\n\r\n", 400, "missing host"],
    ["empty host name", "GET /x HTTP/1.1\r\nHost: ...\r\n\r\n", 400, "invalid host"],
    ["userinfo in the target", "GET http://a@allowed.test/ HTTP/1.1\r\n\r\n", 400, "invalid host"],
    ["CONNECT without a port", "CONNECT allowed.test HTTP/1.1\r\n\r\n", 400, "missing authority"],
    ["obs-fold", "GET http://allowed.test/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding in request head"],
    ["TE + CL", "POST http://allowed.test/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Transfer-Encoding and Content-Length"],
    ["head over 32 KiB", `GET http://allowed.test/ HTTP/1.1\r\nX: ${"a".repeat(33000)}\r\n\r\n`, 431, "request head too large"],
    ["bad chunked body", `POST http://allowed.test:PORT/echo-sha HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`, 400, "invalid request body"],
  ];
  for (const [name, raw, status, text] of rejects) {
    test(`${name} → ${status} ${text}, connection closed`, async () => {
      const c = await rawClient(proxy.port);
      c.write(raw.replace("PORT", String(up)));
      const res = splitResponse(await c.closed());
      expect([res.status, res.headers["content-type"], res.headers.connection, res.body]).toEqual([status, "text/plain", "close", text]);
    });
  }

  test("HTTP/1.0 client, chunked upstream → close-delimited body without transfer-encoding", async () => {
    const c = await rawClient(proxy.port);
    c.write(`GET http://allowed.test:${chunkedOrigin.port}/stream HTTP/1.0\r\n\r\n`);
    const res = splitResponse(await c.closed());
    expect(res.headers["transfer-encoding"]).toBeUndefined();
    expect([res.status, res.headers.connection, res.body]).toEqual([200, "close", "part one,part two"]);
  });

  test("HTTP/1.1 client, chunked upstream → re-chunked, keep-alive", async () => {
    const c = await rawClient(proxy.port);
    c.write(`GET http://allowed.test:${chunkedOrigin.port}/stream HTTP/1.1\r\nHost: allowed.test:${chunkedOrigin.port}\r\n\r\n`);
    const raw = await c.until((t) => t.endsWith("0\r\n\r\n"));
    const res = splitResponse(raw);
    expect(res.headers["transfer-encoding"]).toBe("chunked");
    expect(dechunk(res.body)).toBe("part one,part two");
    c.socket.end();
  });

  test("HEAD keeps content-length and sends no body", async () => {
    const c = await rawClient(proxy.port);
    c.write(`HEAD http://allowed.test:${up}/h HTTP/1.1\r\nConnection: close\r\n\r\n`);
    const res = splitResponse(await c.closed());
    expect([res.status, res.headers["content-length"], res.body]).toEqual([200, String("hello HEAD /h".length), ""]);
  });
});

describe("modes and the enabled switch", () => {
  test("limited mode: POST → method_not_allowed; GET with a body or Upgrade → method_not_allowed; plain GET passes", async () => {
    const proxy = startProxy({ ...allowAll, mode: "limited" });
    try {
      const post = await curl(["-x", proxy.url, "-d", "x=1", `http://allowed.test:${up}/`]);
      expect([post.status, post.headers["x-proxy-error"], JSON.parse(post.body).reason]).toEqual([403, "blocked-by-method-policy", "method_not_allowed"]);
      expect(JSON.parse(post.body).hint).toBe(
        'limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got POST); full mode (network_proxy.mode = "full") permits it; this is a policy decision: do not retry through another route',
      );
      const getBody = await curl(["-x", proxy.url, "-X", "GET", "-d", "x=1", `http://allowed.test:${up}/`]);
      expect([getBody.status, JSON.parse(getBody.body).reason, JSON.parse(getBody.body).method]).toEqual([403, "method_not_allowed", "GET"]);
      expect(JSON.parse(getBody.body).hint).toBe(
        'limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got GET with a body, Upgrade or method override); full mode (network_proxy.mode = "full") permits it; this is a policy decision: do not retry through another route',
      );
      const upgrade = await curl(["-x", proxy.url, "-H", "Upgrade: websocket", "-H", "Connection: Upgrade", `http://allowed.test:${up}/`]);
      expect([upgrade.status, JSON.parse(upgrade.body).reason]).toEqual([403, "method_not_allowed"]);
      const get = await curl(["-x", proxy.url, `http://allowed.test:${up}/ok`]);
      expect([get.status, get.body]).toEqual([200, "hello GET /ok"]);
      const blocked = proxy.ctx.recorder.drain().map((e) => [e.reason, e.method, e.protocol]);
      expect(blocked).toEqual([
        ["method_not_allowed", "POST", "http"],
        ["method_not_allowed", "GET", "http"],
        ["method_not_allowed", "GET", "http"],
      ]);
    } finally {
      await proxy.stop();
    }
  });

  test("disabled by a reload → 503 proxy disabled", async () => {
    const proxy = startProxy(allowAll);
    try {
      proxy.ctx.setConfig({ ...proxy.ctx.loadedConfig(), enabled: false });
      const r = await curl(["-x", proxy.url, `http://allowed.test:${up}/`]);
      expect([r.status, r.body]).toEqual([503, "proxy disabled"]);
    } finally {
      await proxy.stop();
    }
  });
});

/** Decode a complete chunked body (test helper; no extensions or trailers). */
/** The chunked body of a raw response (latin1), decoded; bad framing throws (never loops). */
const dechunk = (body: string): string => decodeChunked(Buffer.from(body, "latin1")).toString("latin1");

// RFC 9110 §7.6.1 / SPEC-network §4: `Trailer` and `Upgrade` are hop-by-hop in both directions
// (issue 14, row 9). Raw bytes on both sides, so nothing in between adds or hides a field.
describe("Trailer and Upgrade are removed in both directions", () => {
  test("request fields never reach the origin; response fields never reach the client", async () => {
    const originHead = Promise.withResolvers<string>();
    let got = "";
    const origin = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, d) {
          got += Buffer.from(d).toString("latin1");
          if (!got.includes("\r\n\r\n")) return;
          originHead.resolve(got);
          s.write(
            "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Kept-Response: 2\r\nTransfer-Encoding: chunked\r\n\r\n" +
              "2\r\nok\r\n0\r\nX-T: v\r\n\r\n",
          );
        },
      },
    });
    const proxy = startProxy(allowAll);
    try {
      const c = await rawClient(proxy.port);
      c.write(
        `GET http://allowed.test:${origin.port}/h HTTP/1.1\r\nHost: allowed.test:${origin.port}\r\n` +
          "Trailer: X-T\r\nUpgrade: h2c\r\nConnection: close\r\nX-Kept-Request: 1\r\n\r\n",
      );
      const res = splitResponse(await c.closed());
      const fieldNames = (head: string) => head.split("\r\n\r\n")[0]!.split("\r\n").slice(1).map((l) => l.slice(0, l.indexOf(":")).toLowerCase());
      const upstreamFields = fieldNames(await originHead.promise);
      expect({
        toOrigin: upstreamFields.filter((n) => ["trailer", "upgrade", "x-kept-request"].includes(n)),
        toClient: Object.keys(res.headers).filter((n) => ["trailer", "upgrade", "x-kept-response"].includes(n)),
        status: res.status,
        body: res.headers["transfer-encoding"] === "chunked" ? dechunk(res.body) : res.body,
      }).toEqual({ toOrigin: ["x-kept-request"], toClient: ["x-kept-response"], status: 200, body: "ok" });
    } finally {
      proxy.stop();
      origin.stop(true);
    }
  });
});

describe("head deadline", () => {
  test("a partial head past the deadline → 408 and close; an idle connection is closed silently", async () => {
    const proxy = startProxy(allowAll, { headTimeoutMs: 50, idleTimeoutMs: 50 });
    try {
      const partial = await rawClient(proxy.port);
      partial.write("GET http://allowed.test/ HTTP/1.1\r\nX-Slow: ");
      const res = splitResponse(await partial.closed());
      expect([res.status, res.body]).toEqual([408, "request timeout"]);
      const idle = await rawClient(proxy.port);
      expect(await idle.closed()).toBe("");
      // A request in flight is not cut by the deadline, and keep-alive re-arms it afterwards.
      const ok = await rawClient(proxy.port);
      ok.write(`GET http://allowed.test:${up}/k HTTP/1.1\r\n\r\n`);
      expect(await ok.closed()).toEndWith("hello GET /k");
    } finally {
      await proxy.stop();
    }
  });
});

describe("https absolute-form (the proxy does TLS upstream)", () => {
  test("GET https://… is sent over TLS with SNI and verification for the original name; a wrong name → 502", async () => {
    const { cert, key } = selfSignedCert(["allowed.test"]);
    const origin = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert, key },
      fetch: (req) => new Response(`tls ${req.headers.get("host")} ${new URL(req.url).pathname}`),
    });
    const clients = createUpstreamClients((proxyEnv) => createHttp1Client({ proxyEnv, extraCa: [cert] }));
    const proxy = startProxy(allowAll, { clients, table: { "allowed.test": ["127.0.0.1"], "other.test": ["127.0.0.1"] } });
    try {
      const c = await rawClient(proxy.port);
      c.write(`GET https://allowed.test:${origin.port}/s HTTP/1.1\r\nConnection: close\r\n\r\n`);
      const ok = splitResponse(await c.closed());
      expect([ok.status, ok.body]).toEqual([200, `tls allowed.test:${origin.port} /s`]);
      // other.test is allowed by policy here but the certificate does not name it.
      proxy.ctx.setConfig({ ...proxy.ctx.loadedConfig(), policy: { ...proxy.ctx.loadedConfig().policy, allowedDomains: ["other.test"] } });
      const bad = await rawClient(proxy.port);
      bad.write(`GET https://other.test:${origin.port}/s HTTP/1.1\r\n\r\n`);
      const res = splitResponse(await bad.closed());
      expect([res.status, res.body]).toEqual([502, "upstream failure"]);
    } finally {
      await proxy.stop();
      origin.stop(true);
    }
  });
});

describe("hand-off with a fixed target (SOCKS5 peeked plain HTTP)", () => {
  test("origin-form requests go to the pinned target; Host must name it; each request is judged (limited mode)", async () => {
    const proxy = startProxy({ ...allowAll, mode: "limited" });
    // A listener standing in for SOCKS5: every connection is handed to a pinned HTTP handler.
    const socksLike = startFixedTargetListener(proxy.ctx, { host: "allowed.test", port: up, addresses: ["127.0.0.1"] });
    try {
      const c = await rawClient(socksLike.port);
      c.write(`GET /pinned?q=1 HTTP/1.1\r\nHost: allowed.test:${up}\r\nX-Unix-Socket: /nope\r\n\r\n`);
      await c.until((t) => t.endsWith("hello GET /pinned?q=1"));
      expect(seen.at(-1)!.headers["x-unix-socket"]).toBeUndefined();
      const before = c.text().length;
      c.write(`DELETE /pinned HTTP/1.1\r\nHost: allowed.test\r\n\r\n`);
      const res = splitResponse((await c.until((t) => t.length > before && t.endsWith('"}'))).slice(before));
      expect([res.status, JSON.parse(res.body).reason, JSON.parse(res.body).protocol]).toEqual([403, "method_not_allowed", "socks5"]);
      const other = await rawClient(socksLike.port);
      other.write(`GET / HTTP/1.1\r\nHost: other.test\r\n\r\n`);
      const mismatch = splitResponse(await other.closed());
      expect([mismatch.status, mismatch.body]).toEqual([400, "Host header does not match request target"]);
    } finally {
      await socksLike.stop();
      await proxy.stop();
    }
  });
});

describe("client half-close (FIN after the request)", () => {
  test("the answer still arrives; pipelined complete requests are all answered, then the proxy closes", async () => {
    const proxy = startProxy(allowAll);
    try {
      const c = await rawClient(proxy.port);
      c.write(`GET http://allowed.test:${up}/hc1 HTTP/1.1\r\n\r\nGET http://allowed.test:${up}/hc2 HTTP/1.1\r\n\r\n`);
      c.socket.shutdown();
      const all = await c.closed();
      expect(all).toContain("hello GET /hc1");
      expect(all).toEndWith("hello GET /hc2");
      const partial = await rawClient(proxy.port);
      partial.write("GET http://allowed.test/ HTTP/1.1\r\nX: ");
      partial.socket.shutdown();
      expect(await partial.closed()).toBe("");
    } finally {
      await proxy.stop();
    }
  });
});
