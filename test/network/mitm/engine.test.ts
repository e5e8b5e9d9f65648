/**
 * MITM engine end to end (SPEC-network §6): real curl / python3 / node:tls clients through a
 * minimal CONNECT front end into `engine.intercept`, TLS terminated with our leaf, requests
 * forwarded with the project HTTP/1.1 client to an https fake origin with its own CA.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { createHttp1Client } from "../../../src/http1/client.ts";
import { loadOrCreateCa, type Ca } from "../../../src/network/mitm/ca.ts";
import { createMitmEngine, type MitmEngineHandle } from "../../../src/network/mitm/engine.ts";
import { createLeafKey, type LeafKey } from "../../../src/network/mitm/leaf.ts";
import { createTestContext, curl, parseProm } from "../../helpers/network.ts";
import { startConnectFront, tempDir, tlsThroughProxy } from "../../helpers/mitm.ts";
import { runChild } from "../../helpers/child.ts";
import { selfSignedCert } from "../../helpers/pki.ts";
import { removeTempDirs } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const BIG = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 31 + 7) & 0xff);

let t: ReturnType<typeof createTestContext>;
let ca: Ca;
let engine: MitmEngineHandle;
let origin: ReturnType<typeof Bun.serve>;
let front: ReturnType<typeof startConnectFront>;
let frontHeld: ReturnType<typeof startConnectFront>;
let up: number;
let originPem: string;
const seen: Array<{ method: string; path: string; host: string | null; body: string }> = [];
let slowGate = Promise.withResolvers<void>();
let slowArrived = Promise.withResolvers<void>();

beforeAll(async () => {
  t = createTestContext(
    {
      mode: "limited",
      policy: { allowedDomains: ["allowed.test", "other.test", "third.test", "counted.test"], allowLocalBinding: true },
      mitm: { enabled: true, inspect: true, maxBodyBytes: 10 },
    },
    { "allowed.test": ["127.0.0.1"], "other.test": ["127.0.0.1"], "third.test": ["127.0.0.1"], "counted.test": ["127.0.0.1"] },
  );
  const cfg = t.ctx.config();
  ca = await loadOrCreateCa(cfg.mitm.caCertPath, cfg.mitm.caKeyPath, { create: true });
  const cert = selfSignedCert(["allowed.test", "other.test", "counted.test"]);
  originPem = cert.cert;
  origin = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    tls: { key: cert.key, cert: cert.cert },
    async fetch(req) {
      const u = new URL(req.url);
      const raw = new Uint8Array(await req.arrayBuffer());
      seen.push({ method: req.method, path: u.pathname + u.search, host: req.headers.get("host"), body: new TextDecoder().decode(raw) });
      if (u.pathname === "/big") return new Response(BIG, { headers: { "content-type": "application/octet-stream" } });
      if (u.pathname === "/stream") {
        // No Content-Length: the MITM must re-frame it chunked for the client.
        // A direct stream flushed per part makes Bun.serve send it chunked (it would buffer
        // a stream that is complete at once and add a Content-Length).
        return new Response(
          new ReadableStream({
            type: "direct",
            async pull(c) {
              for (const p of ["alpha-", "beta-", "gamma"]) {
                c.write(p);
                await c.flush();
              }
              c.close();
            },
          }),
        );
      }
      if (u.pathname === "/slow") {
        slowArrived.resolve();
        await slowGate.promise;
        return new Response("slow done");
      }
      if (u.pathname === "/echo-body") {
        return new Response(`len=${raw.byteLength} hash=${Bun.hash(raw)} te=${req.headers.get("transfer-encoding")}`);
      }
      if (u.pathname === "/echo-headers") return Response.json(Object.fromEntries(req.headers));
      return new Response("hello from upstream", { headers: { "content-type": "text/plain", "x-origin": "1" } });
    },
  });
  up = origin.port!;
  const client = createHttp1Client({ extraCa: [cert.cert], proxyEnv: null });
  engine = createMitmEngine(t.ctx, ca, { client });
  await engine.ready;
  front = startConnectFront(engine);
  frontHeld = startConnectFront(engine, { holdFirst: true });
});

afterAll(() => {
  front?.stop();
  frontHeld?.stop();
  engine?.stop();
  origin?.stop(true);
});

const via = (port: number) => ["--cacert", ca.certPath, "-x", `http://127.0.0.1:${port}`];

describe("MITM engine through a CONNECT front end", () => {
  test("GET is forwarded and the response arrives byte-exact; inspect logs one line without the query", async () => {
    const r = await curl([...via(front.port), `https://allowed.test:${up}/hello?token=secret`]);
    expect(r.stderr).toBe("");
    expect({ exit: r.exitCode, status: r.status, body: r.body, origin: r.headers["x-origin"] }).toEqual({
      exit: 0,
      status: 200,
      body: "hello from upstream",
      origin: "1",
    });
    const s = seen.find((x) => x.path === "/hello?token=secret")!;
    expect(s).toEqual({ method: "GET", path: "/hello?token=secret", host: `allowed.test:${up}`, body: "" });
    const line = t.lines.find((l) => l.startsWith("mitm inspect") && l.includes("path=/hello"))!;
    expect(line).toBe(`mitm inspect host=allowed.test method=GET path=/hello status=200 body_len=19 truncated=true`);
    expect(t.lines.join("\n")).not.toContain("secret");
  });

  test("a 3 MiB body and a chunked (length-less) body arrive intact", async () => {
    const dir = tempDir();
    const out = join(dir, "big.bin");
    const r = await runChild(["curl", "-sS", "--max-time", "10", "-o", out, ...via(front.port), `https://allowed.test:${up}/big`]);
    expect(r.stderr).toBe("");
    const got = new Uint8Array(await Bun.file(out).arrayBuffer());
    expect(got.byteLength).toBe(BIG.byteLength);
    expect(Bun.hash(got)).toBe(Bun.hash(BIG));
    const s = await curl([...via(front.port), `https://allowed.test:${up}/stream`]);
    expect({ status: s.status, body: s.body, te: s.headers["transfer-encoding"] }).toEqual({
      status: 200,
      body: "alpha-beta-gamma",
      te: "chunked",
    });
  });

  test("POST is blocked with 403 blocked-by-method-policy, recorded as protocol https, never forwarded", async () => {
    t.ctx.recorder.drain();
    const before = seen.length;
    const r = await curl([...via(front.port), "-X", "POST", "-d", "x=1", `https://allowed.test:${up}/write`]);
    expect({ status: r.status, err: r.headers["x-proxy-error"], body: r.body }).toEqual({
      status: 403,
      err: "blocked-by-method-policy",
      body: "Codex blocked this request: method not allowed in limited mode.",
    });
    expect(seen.length).toBe(before);
    const blocked = t.ctx.recorder.drain();
    expect(blocked.map((b) => ({ host: b.host, reason: b.reason, protocol: b.protocol, method: b.method, port: b.port }))).toEqual([
      { host: "allowed.test", reason: "method_not_allowed", protocol: "https", method: "POST", port: up },
    ]);
  });

  test("a GET with a body is a write channel in limited mode: 403", async () => {
    const r = await curl([...via(front.port), "-X", "GET", "-d", "smuggled", `https://allowed.test:${up}/x`]);
    expect({ status: r.status, err: r.headers["x-proxy-error"] }).toEqual({ status: 403, err: "blocked-by-method-policy" });
  });

  test("a Host header naming another host is 400 host mismatch", async () => {
    const r = await curl([...via(front.port), "-H", "Host: other.test", `https://allowed.test:${up}/`]);
    expect({ status: r.status, body: r.body }).toEqual({ status: 400, body: "host mismatch" });
  });

  test("two requests reuse one TLS connection (keep-alive)", async () => {
    const r = await runChild([
      "curl", "-sS", "--max-time", "10", "-w", "[%{num_connects}]", ...via(front.port),
      `https://allowed.test:${up}/ka1`, `https://allowed.test:${up}/ka2`,
    ]);
    expect(r.stderr).toBe("");
    // num_connects counts new connections per transfer: the second transfer made none.
    expect(r.stdout).toBe("hello from upstream[1]hello from upstream[0]");
  });

  test("python3 urllib through the proxy with our CA", async () => {
    const py = [
      "import ssl, sys, urllib.request",
      "ctx = ssl.create_default_context(cafile=sys.argv[1])",
      "o = urllib.request.build_opener(urllib.request.ProxyHandler({'https': 'http://127.0.0.1:' + sys.argv[2]}), urllib.request.HTTPSHandler(context=ctx))",
      "r = o.open('https://other.test:' + sys.argv[3] + '/py', timeout=10)",
      "print(r.status, r.read().decode())",
    ].join("\n");
    const r = await runChild(["python3", "-c", py, ca.certPath, String(front.port), String(up)]);
    expect({ code: r.code, out: r.stdout.trim() }).toEqual({ code: 0, out: "200 hello from upstream" });
  });

  test("already-read ClientHello bytes (SOCKS5 path) go through the node:tls bridge", async () => {
    const r = await curl([...via(frontHeld.port), `https://allowed.test:${up}/bridged`]);
    expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: "hello from upstream" });
    const big = await runChild(["curl", "-sS", "--max-time", "10", ...via(frontHeld.port), `https://allowed.test:${up}/big`, "-o", join(tempDir(), "b")]);
    expect(big.code).toBe(0);
  });

  test("upstream certificate not valid for the name: 502 mitm upstream error", async () => {
    const r = await curl([...via(front.port), `https://third.test:${up}/`]);
    expect({ status: r.status, body: r.body }).toEqual({ status: 502, body: "mitm upstream error" });
  });

  test("a slow request does not block another connection", async () => {
    slowGate = Promise.withResolvers<void>();
    slowArrived = Promise.withResolvers<void>();
    const slow = curl([...via(front.port), `https://allowed.test:${up}/slow`]);
    await slowArrived.promise;
    const quick = await curl([...via(front.port), `https://other.test:${up}/quick`]);
    expect(quick.body).toBe("hello from upstream");
    slowGate.resolve();
    expect((await slow).body).toBe("slow done");
  });

  test("hop-by-hop request fields are removed, end-to-end ones kept", async () => {
    const r = await curl([
      ...via(front.port), "-H", "Connection: x-drop, keep-alive", "-H", "X-Drop: 1", "-H", "X-Keep: 2",
      "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==", `https://allowed.test:${up}/echo-headers`,
    ]);
    const h = JSON.parse(r.body) as Record<string, string | undefined>;
    expect({ keep: h["x-keep"], drop: h["x-drop"], pa: h["proxy-authorization"] }).toEqual({
      keep: "2",
      drop: undefined,
      pa: undefined,
    });
  });
});

/** Raw bytes over TLS through the front end: CONNECT, then `payload`; resolves with everything read until close. */
async function rawExchange(host: string, payload: string): Promise<string> {
  const sock = netConnect(front.port, "127.0.0.1");
  const connected = Promise.withResolvers<void>();
  let head = "";
  sock.on("data", function onData(b: Buffer) {
    head += b.toString("latin1");
    if (head.includes("\r\n\r\n")) {
      sock.off("data", onData);
      connected.resolve();
    }
  });
  sock.on("error", (e) => connected.reject(e));
  sock.write(`CONNECT ${host}:${up} HTTP/1.1\r\nHost: ${host}:${up}\r\n\r\n`);
  await connected.promise;
  expect(head.startsWith("HTTP/1.1 200")).toBe(true);
  const tls = tlsConnect({ socket: sock, servername: host, ca: ca.certPem });
  const done = Promise.withResolvers<string>();
  let got = "";
  tls.on("data", (b: Buffer) => (got += b.toString("latin1")));
  tls.on("close", () => done.resolve(got));
  tls.on("error", (e) => done.reject(e));
  tls.on("secureConnect", () => tls.write(payload));
  return done.promise;
}

describe("MITM engine, raw requests", () => {
  test("CONNECT inside the tunnel is 405", async () => {
    const got = await rawExchange("allowed.test", "CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n");
    expect(got).toStartWith("HTTP/1.1 405 Method Not Allowed\r\n");
    expect(got).toEndWith("\r\n\r\nCONNECT not supported inside MITM");
  });

  test("absolute-form naming another host is 400 host mismatch", async () => {
    const got = await rawExchange("allowed.test", `GET https://other.test:${up}/ HTTP/1.1\r\nHost: other.test:${up}\r\n\r\n`);
    expect(got).toStartWith("HTTP/1.1 400 Bad Request\r\n");
    expect(got).toEndWith("\r\n\r\nhost mismatch");
  });

  test("pipelined requests are answered in order; HTTP/1.0 gets close-delimited bodies", async () => {
    const got = await rawExchange(
      "allowed.test",
      `GET /p1 HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\nGET /stream HTTP/1.0\r\nHost: allowed.test:${up}\r\n\r\n`,
    );
    const first = got.indexOf("hello from upstream");
    const second = got.indexOf("alpha-beta-gamma");
    expect(first).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(first);
    expect(got).toEndWith("\r\n\r\nalpha-beta-gamma");
    expect(got.slice(first)).toContain("connection: close\r\n");
  });

  test("content-length: 0 is no body: a GET with it is forwarded and the connection kept", async () => {
    const req = `GET /cl0 HTTP/1.1\r\nHost: allowed.test:${up}\r\ncontent-length: 0\r\n\r\n`;
    const got = await rawExchange("allowed.test", req + req.replace("/cl0", "/cl0b").replace("\r\n\r\n", "\r\nconnection: close\r\n\r\n"));
    expect(got.split("hello from upstream").length).toBe(3);
  });

  test("a malformed head is 400 and closes", async () => {
    const got = await rawExchange("allowed.test", "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n");
    expect(got).toStartWith("HTTP/1.1 400 ");
  });

  test("certificates issued are counted in metrics: +1 for a new host, +0 for a cached one", async () => {
    // Self-contained (issue 14, row 5): counted.test is intercepted by no other test.
    const issued = () => parseProm(t.ctx.metrics.render()).get("codex_network_proxy_mitm_certs_issued_total");
    const before = issued();
    const first = await curl([...via(front.port), `https://counted.test:${up}/`]);
    const afterFirst = issued();
    const second = await curl([...via(front.port), `https://counted.test:${up}/`]);
    expect([first.status, second.status, afterFirst! - before!, issued()! - afterFirst!]).toEqual([200, 200, 1, 0]);
  });
});

describe("MITM engine, request bodies (full mode set while the tunnel is up)", () => {
  test("a Content-Length body and a chunked body are forwarded intact", async () => {
    t.ctx.setMode("full");
    try {
      const dir = tempDir();
      const file = join(dir, "body.bin");
      // Over the 1 MiB collect limit: streamed, and still sent with its content-length.
      const body = BIG.subarray(0, 2 * 1024 * 1024 + 3);
      await Bun.write(file, body);
      const small = await curl([...via(front.port), "--data-binary", "hello", `https://allowed.test:${up}/echo-body`]);
      expect(small.body).toBe(`len=5 hash=${Bun.hash(new TextEncoder().encode("hello"))} te=null`);
      const big = await curl([...via(front.port), "--data-binary", `@${file}`, `https://allowed.test:${up}/echo-body`]);
      expect(big.body).toBe(`len=${body.byteLength} hash=${Bun.hash(body)} te=null`);
      const chunked = await curl([
        ...via(front.port), "-H", "Transfer-Encoding: chunked", "--data-binary", `@${file}`, `https://allowed.test:${up}/echo-body`,
      ]);
      expect(chunked.body).toBe(`len=${body.byteLength} hash=${Bun.hash(body)} te=chunked`);
      // Expect: 100-continue is answered by the MITM and not forwarded.
      const got = await rawExchange(
        "allowed.test",
        `PUT /echo-headers HTTP/1.1\r\nHost: allowed.test:${up}\r\nExpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi`,
      );
      expect(got).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
      expect(JSON.parse(got.slice(got.lastIndexOf("\r\n\r\n") + 4)).expect).toBeUndefined();
    } finally {
      t.ctx.setMode("limited");
    }
  });
});

describe("MITM engine lifecycle", () => {
  test("open connections are tracked; stop() closes them and refuses new ones", async () => {
    const e2 = createMitmEngine(t.ctx, ca, { client: createHttp1Client({ extraCa: [originPem], proxyEnv: null }) });
    const f2 = startConnectFront(e2);
    try {
      const conn = await tlsThroughProxy(f2.port, "allowed.test", up, ca.certPem);
      const res = await conn.exchange(`GET /life HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n`);
      expect(res).toEndWith("\r\n\r\nhello from upstream");
      expect(e2.openConnections).toBe(1);
      e2.stop();
      await conn.closed;
      const refused = await tlsThroughProxy(f2.port, "allowed.test", up, ca.certPem).then(
        () => "connected",
        () => "refused",
      );
      expect(refused).toBe("refused");
    } finally {
      f2.stop();
      e2.stop();
    }
  });
});

describe("MITM engine while the leaf key is not ready yet", () => {
  test("clients wait (paused) until the key exists; one that left meanwhile is cleaned up", async () => {
    const gate = Promise.withResolvers<LeafKey>();
    const e3 = createMitmEngine(t.ctx, ca, {
      client: createHttp1Client({ extraCa: [originPem], proxyEnv: null }),
      leafKey: gate.promise,
    });
    let intercepted = Promise.withResolvers<void>();
    const bothClosed = Promise.withResolvers<void>();
    let closes = 0;
    const f3 = startConnectFront(
      {
        intercept: (...a) => {
          e3.intercept(...a);
          intercepted.resolve();
        },
        stop: () => e3.stop(),
      },
      { onClose: () => ++closes === 2 && bothClosed.resolve() },
    );
    try {
      // A client that gives up while the leaf is pending (a paused socket notices only later).
      const gone = Promise.withResolvers<void>();
      await Bun.connect({
        hostname: "127.0.0.1",
        port: f3.port,
        socket: {
          open(s) {
            s.write("CONNECT gone.test:443 HTTP/1.1\r\nHost: gone.test:443\r\n\r\n");
          },
          data(s, chunk) {
            if (new TextDecoder().decode(chunk).startsWith("HTTP/1.1 200")) s.end();
          },
          close: () => gone.resolve(),
        },
      });
      await Promise.all([intercepted.promise, gone.promise]);
      // curl, whose ClientHello arrives while the engine waits for the key.
      intercepted = Promise.withResolvers<void>();
      const pending = curl([...via(f3.port), `https://allowed.test:${up}/gated`]);
      await intercepted.promise;
      expect(e3.openConnections).toBe(2);
      gate.resolve(await createLeafKey());
      const r = await pending;
      expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: "hello from upstream" });
      await bothClosed.promise;
      expect(e3.openConnections).toBe(0);
    } finally {
      f3.stop();
      e3.stop();
    }
  });
});
