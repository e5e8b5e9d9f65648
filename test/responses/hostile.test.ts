/**
 * The responses proxy under hostile and broken clients (issue 8 rows 1, 5, 8; SPEC §1.4,
 * §1.5, SPEC-network §12): browsers refused, head/idle/body bounds, the connection cap and
 * streamed request bodies. In-process proxies with small bounds (constructor options), raw
 * sockets, a fake upstream; every wait is on an event.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { createHttp1Client } from "../../src/http1/client.ts";
import { startResponsesProxy, type ResponsesProxyOptions } from "../../src/responses/server.ts";
import type { ExchangeRecord } from "../../src/responses/http-app.ts";
import { emptyResponseComplete } from "../helpers/responses.ts";
import { rawExchange } from "../helpers/raw-client.ts";

const KEY = "sk-hostile_TEST";

/** An upstream that records every request and answers `{"ok":true}`. */
function recordingUpstream() {
  const bodies: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      bodies.push(await req.text());
      return Response.json({ ok: true });
    },
  });
  return { server, bodies };
}

function startProxy(upstreamPort: number, client: ReturnType<typeof createHttp1Client>, extra: Partial<ResponsesProxyOptions> = {}) {
  return startResponsesProxy({
    port: 0,
    httpShutdown: true,
    upstream: new URL(`http://127.0.0.1:${upstreamPort}/v1/responses`),
    authorization: new TextEncoder().encode(`Bearer ${KEY}`),
    client,
    dumper: null,
    onShutdown: () => {},
    logError: () => {},
    ...extra,
  });
}

/** A raw client connection: received text, a promise for its close. */
async function rawConn(port: number) {
  const closed = Promise.withResolvers<void>();
  const state = { text: "", closed: closed.promise, socket: null as unknown as Socket<undefined>, onData: () => {} };
  state.socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        state.text += new TextDecoder("latin1").decode(d);
        state.onData();
      },
      close: () => closed.resolve(),
      error: () => closed.resolve(),
    },
  });
  return state;
}

const post = (headers: string, body = "{}") =>
  `POST /v1/responses HTTP/1.1\r\n${headers}content-length: ${body.length}\r\n\r\n${body}`;

describe("browsers are refused (SPEC §1.4, issue 8 row 1)", () => {
  const up = recordingUpstream();
  const client = createHttp1Client({ proxyEnv: null });
  let shutdowns = 0;
  const proxy = startProxy(up.server.port!, client, { onShutdown: () => shutdowns++ });
  afterAll(async () => {
    await proxy.stop(0);
    client.close();
    up.server.stop(true);
  });

  test.each([
    ["a cross-site text/plain POST (Origin)", "host: 127.0.0.1\r\norigin: https://evil.example\r\ncontent-type: text/plain\r\n"],
    ["Origin: null (sandboxed frame)", "host: 127.0.0.1\r\norigin: null\r\n"],
    ["Sec-Fetch-Site: cross-site without Origin", "host: 127.0.0.1\r\nsec-fetch-site: cross-site\r\n"],
    ["Sec-Fetch-Site: same-site", "host: localhost\r\nsec-fetch-site: same-site\r\n"],
    ["a DNS-rebound page (Host: evil.example:<port>)", "host: evil.example:1455\r\n"],
    ["Host: 127.0.0.1.nip.io", "host: 127.0.0.1.nip.io\r\n"],
    ["Host: localhost.evil.example", "host: localhost.evil.example\r\n"],
  ])("%s → 403, nothing forwarded", async (_name, headers) => {
    const before = up.bodies.length;
    const r = await rawExchange(proxy.port, post(headers), emptyResponseComplete);
    expect(r.text).toStartWith("HTTP/1.1 403 ");
    expect(up.bodies.length).toBe(before);
  });

  test("a cross-site <img src=/shutdown> does not stop the proxy", async () => {
    const r = await rawExchange(
      proxy.port,
      "GET /shutdown HTTP/1.1\r\nhost: 127.0.0.1\r\nsec-fetch-site: cross-site\r\nsec-fetch-dest: image\r\n\r\n",
      emptyResponseComplete,
    );
    expect(r.text).toStartWith("HTTP/1.1 403 ");
    expect(shutdowns).toBe(0);
  });

  test.each([
    ["Host: 127.0.0.1:<port>", "host: 127.0.0.1:1455\r\n"],
    ["Host: localhost", "host: LocalHost:80\r\n"],
    ["Host: [::1]:<port>", "host: [::1]:1455\r\n"],
    ["Sec-Fetch-Site: none (typed by the user)", "host: 127.0.0.1\r\nsec-fetch-site: none\r\n"],
    ["no Host (HTTP/1.0 tools)", ""],
  ])("%s is served", async (_name, headers) => {
    const before = up.bodies.length;
    const r = await rawExchange(proxy.port, post(headers + "connection: close\r\n"));
    expect(r.text).toStartWith("HTTP/1.1 200 ");
    expect(up.bodies.length).toBe(before + 1);
  });
});

describe("head and idle timeouts, connection cap (SPEC-network §12, issue 8 row 5)", () => {
  const up = recordingUpstream();
  const client = createHttp1Client({ proxyEnv: null });
  const records: ExchangeRecord[] = [];
  const proxy = startProxy(up.server.port!, client, { bounds: { headTimeoutMs: 150, idleTimeoutMs: 150 }, onAccess: (r) => records.push(r) });
  afterAll(async () => {
    await proxy.stop(0);
    client.close();
    up.server.stop(true);
  });

  test("a connection that never sends a byte is closed", async () => {
    const c = await rawConn(proxy.port);
    await c.closed;
    expect(c.text).toBe("");
  });

  test("half a head gets 408 and close, and an access line", async () => {
    const c = await rawConn(proxy.port);
    const head = "POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\n";
    records.length = 0;
    c.socket.write(head);
    await c.closed;
    expect(c.text).toStartWith("HTTP/1.1 408 ");
    expect(up.bodies.length).toBe(0);
    expect(records.map((r) => [r.method, r.target, r.status, r.bytesIn, r.outcome])).toEqual([[null, null, 408, head.length, "complete"]]);
  });

  test("a head sent a byte at a time, forever, still gets 408", async () => {
    const c = await rawConn(proxy.port);
    let n = 0;
    // Each byte is sent after the previous answer-less read: the connection stays busy, the head never ends.
    const feed = () => {
      if (n++ < 10_000) c.socket.write("x-a: b\r\n".slice(0, 1));
    };
    c.socket.write("POST /v1/responses HTTP/1.1\r\n");
    const timer = setInterval(feed, 5);
    await c.closed;
    clearInterval(timer);
    expect(c.text).toStartWith("HTTP/1.1 408 ");
  });

  test("a kept-alive connection idle after its request is closed", async () => {
    const c = await rawConn(proxy.port);
    const answered = Promise.withResolvers<void>();
    c.onData = () => {
      if (c.text.includes('{"ok":true}')) answered.resolve();
    };
    c.socket.write(post("host: 127.0.0.1\r\n"));
    await answered.promise;
    await c.closed;
    expect(c.text).toStartWith("HTTP/1.1 200 ");
  });

  test("a request body that stalls ends its connection", async () => {
    const c = await rawConn(proxy.port);
    c.socket.write("POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{\"a\":");
    await c.closed;
    expect(c.text).toStartWith("HTTP/1.1 408 ");
  });
});

describe("connection cap (SPEC-network §12)", () => {
  const up = recordingUpstream();
  const client = createHttp1Client({ proxyEnv: null });
  const warnings: string[] = [];
  const proxy = startProxy(up.server.port!, client, { bounds: { maxConnections: 2 }, logError: (l) => warnings.push(l) });
  afterAll(async () => {
    await proxy.stop(0);
    client.close();
    up.server.stop(true);
  });

  test("past max_connections a new connection is closed at once, and admitted again once one frees", async () => {
    const a = await rawConn(proxy.port);
    const b = await rawConn(proxy.port);
    // Prove both are accepted (served) before opening the third.
    for (const c of [a, b]) {
      const got = Promise.withResolvers<void>();
      c.onData = () => c.text.includes('{"ok":true}') && got.resolve();
      c.socket.write(post("host: 127.0.0.1\r\n"));
      await got.promise;
    }
    const third = await rawConn(proxy.port);
    await third.closed;
    expect(third.text).toBe("");
    expect(proxy.refused).toBe(1);
    expect(warnings.filter((w) => w.includes("max_connections=2"))).toHaveLength(1);
    a.socket.end();
    await a.closed;
    // The server sees the close asynchronously: retry a bounded number of times, each ending on an event.
    for (let i = 0; i < 50; i++) {
      const r = await rawExchange(proxy.port, post("host: 127.0.0.1\r\nconnection: close\r\n"));
      if (r.text.startsWith("HTTP/1.1 200 ")) break;
      if (i === 49) throw new Error("never admitted again");
    }
    b.socket.end();
  });
});

describe("request bodies are streamed (SPEC §1.5, issue 8 row 8)", () => {
  // A raw upstream: counts body bytes as they arrive, answers once all arrived.
  const arrived = { bytes: 0, waiters: [] as Array<{ n: number; resolve: () => void }> };
  const upstream = Bun.listen<{ head: string; got: number; want: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { head: "", got: 0, want: -1 };
      },
      data(s, d) {
        let chunk = Buffer.from(d);
        if (s.data.want < 0) {
          s.data.head += chunk.toString("latin1");
          const end = s.data.head.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = s.data.head.slice(0, end);
          s.data.want = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? -1);
          chunk = Buffer.from(s.data.head.slice(end + 4), "latin1");
        }
        s.data.got += chunk.length;
        arrived.bytes += chunk.length;
        arrived.waiters = arrived.waiters.filter((w) => (arrived.bytes >= w.n ? (w.resolve(), false) : true));
        if (s.data.got >= s.data.want) {
          s.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${String(s.data.got).length + 8}\r\n\r\n{"got":${s.data.got}}`);
        }
      },
    },
  });
  const client = createHttp1Client({ proxyEnv: null });
  const proxy = startProxy(upstream.port, client, { bounds: { maxBufferedBody: 64 * 1024, streamHighWaterMark: 64 * 1024 } });
  afterAll(async () => {
    await proxy.stop(0);
    client.close();
    upstream.stop(true);
  });
  const whenArrived = (n: number) => {
    const p = Promise.withResolvers<void>();
    arrived.waiters.push({ n, resolve: p.resolve });
    if (arrived.bytes >= n) p.resolve();
    return p.promise;
  };

  test("the upstream receives the first part of a large body before the client sent the rest", async () => {
    arrived.bytes = 0;
    const total = 4 * 1024 * 1024;
    const c = await rawConn(proxy.port);
    const done = Promise.withResolvers<void>();
    c.onData = () => c.text.includes(`{"got":${total}}`) && done.resolve();
    c.socket.write(`POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ${total}\r\n\r\n`);
    const half = new Uint8Array(total / 2).fill(0x61);
    // Bun queues what the kernel does not take; the proxy must forward before the rest exists.
    c.socket.write(half);
    await whenArrived(1024 * 1024);
    c.socket.write(half);
    await done.promise;
    expect(c.text).toStartWith("HTTP/1.1 200 ");
    c.socket.end();
  });

  test("a chunked body is streamed to the upstream as it arrives", async () => {
    arrived.bytes = 0;
    const c = await rawConn(proxy.port);
    c.socket.write(`POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n`);
    c.socket.write(`10000\r\n${"b".repeat(0x10000)}\r\n`);
    await whenArrived(0x10000);
    c.socket.write("0\r\n\r\n");
    c.socket.end();
    await c.closed;
    expect(arrived.bytes).toBeGreaterThanOrEqual(0x10000);
  });

  test("a chunked body crossing the body bound gets 413 when it crosses it", async () => {
    const small = startProxy(upstream.port, client, { bounds: { maxBufferedBody: 1024, maxBodyBytes: 100_000 } });
    try {
      const c = await rawConn(small.port);
      c.socket.write(`POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n`);
      c.socket.write(`10000\r\n${"b".repeat(0x10000)}\r\n`);
      c.socket.write(`10000\r\n${"b".repeat(0x10000)}\r\n`);
      await c.closed;
      expect(c.text).toStartWith("HTTP/1.1 413 ");
    } finally {
      await small.stop(0);
    }
  });
});
