import { afterAll, describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { createHttp1Client } from "../../src/http1/client.ts";
import { upstreamHostHeader } from "../../src/responses/forward.ts";
import { startResponsesProxy } from "../../src/responses/server.ts";
import { rawExchange } from "../helpers/raw-client.ts";
import { decodeChunked } from "../helpers/chunked.ts";

const KEY = "sk-fwd_TEST-123";

/** An in-process proxy forwarding to `http://127.0.0.1:<port>/v1/responses` with the test key. */
function startProxyTo(port: number | undefined, client: ReturnType<typeof createHttp1Client>, logError: (line: string) => void = () => {}) {
  return startResponsesProxy({
    port: 0,
    httpShutdown: false,
    upstream: new URL(`http://127.0.0.1:${port}/v1/responses`),
    authorization: new TextEncoder().encode(`Bearer ${KEY}`),
    client,
    dumper: null,
    onShutdown: () => {},
    logError,
  });
}

test.each([
  ["https://api.openai.com/v1/responses", "api.openai.com"],
  ["https://h:443/x", "h"],
  ["http://h:80/x", "h"],
  ["https://h:8443/x?api-version=1", "h:8443"],
  ["http://[::1]:8080/x", "[::1]:8080"],
  ["https://[2001:db8::1]/x", "[2001:db8::1]"],
])("Host header for %s is %s", (url, host) => {
  expect(upstreamHostHeader(new URL(url))).toBe(host);
});

describe("forwarding through the real HTTP/1.1 client", () => {
  type Seen = { method: string; url: string; headers: Array<[string, string]>; body: string };
  const seen: Seen[] = [];
  const gz = gzipSync(Buffer.from(JSON.stringify({ hello: "world".repeat(50) })));
  const upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const u = new URL(req.url);
      seen.push({ method: req.method, url: u.pathname + u.search, headers: [...req.headers], body: await req.text() });
      if (u.searchParams.get("mode") === "gzip") {
        return new Response(gz, { headers: { "content-encoding": "gzip", "content-type": "application/json" } });
      }
      if (u.searchParams.get("mode") === "redirect") {
        return new Response(null, { status: 307, headers: { location: "http://127.0.0.1:1/elsewhere" } });
      }
      return new Response(JSON.stringify({ ok: true }), {
        status: 201,
        headers: { "content-type": "application/json", "x-upstream": "yes", "set-cookie": "a=b" },
      });
    },
  });
  const errors: string[] = [];
  const client = createHttp1Client({ proxyEnv: null });
  const start = (query: string) =>
    startResponsesProxy({
      port: 0,
      httpShutdown: false,
      upstream: new URL(`http://127.0.0.1:${upstream.port}/v1/responses${query}`),
      authorization: new TextEncoder().encode(`Bearer ${KEY}`),
      client,
      dumper: null,
      onShutdown: () => {},
      logError: (l) => errors.push(l),
    });
  const proxy = start("?api-version=2025-04-01-preview");
  const gzipProxy = start("?mode=gzip");
  const redirectProxy = start("?mode=redirect");
  afterAll(async () => {
    await Promise.all([proxy.stop(0), gzipProxy.stop(0), redirectProxy.stop(0)]);
    client.close();
    upstream.stop(true);
  });

  test("headers: authorization replaced, host set, others kept; URL verbatim; status and headers mirrored", async () => {
    seen.length = 0;
    const res = await fetch(`http://127.0.0.1:${proxy.port}/v1/responses`, {
      method: "POST",
      headers: { authorization: "Bearer client-supplied", "content-type": "application/json", "x-Custom": "v1", "OpenAI-Beta": "responses=v1" },
      body: '{"model":"m","input":"hi"}',
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ ok: true });
    expect(res.headers.get("x-upstream")).toBe("yes");
    expect(res.headers.get("set-cookie")).toBe("a=b");
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect(s.method).toBe("POST");
    expect(s.url).toBe("/v1/responses?api-version=2025-04-01-preview");
    expect(s.body).toBe('{"model":"m","input":"hi"}');
    const h = new Map(s.headers);
    expect(h.get("authorization")).toBe(`Bearer ${KEY}`);
    expect(h.get("host")).toBe(`127.0.0.1:${upstream.port}`);
    expect(h.get("x-custom")).toBe("v1");
    expect(h.get("openai-beta")).toBe("responses=v1");
    expect(h.get("content-type")).toBe("application/json");
    expect(s.headers.filter(([n]) => n === "authorization")).toHaveLength(1);
    expect(s.headers.filter(([n]) => n === "host")).toHaveLength(1);
  });

  test("chunked request body is forwarded byte-exact", async () => {
    seen.length = 0;
    const body = "a\r\nb\u00e9".repeat(1000);
    const bytes = new TextEncoder().encode(body);
    let raw = "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    const latin1 = Buffer.from(bytes).toString("latin1");
    for (let i = 0; i < latin1.length; i += 777) {
      const part = latin1.slice(i, i + 777);
      raw += `${part.length.toString(16)};ext=1\r\n${part}\r\n`;
    }
    raw += "0\r\nTrailer-X: 1\r\n\r\n";
    const r = await rawExchange(proxy.port, Buffer.from(raw, "latin1"));
    expect(r.text.startsWith("HTTP/1.1 201 Created\r\n")).toBe(true);
    expect(seen[0]!.body).toBe(body);
  });

  test("Expect: 100-continue: the client gets 100 before sending the body; the header is forwarded", async () => {
    seen.length = 0;
    const done = Promise.withResolvers<string>();
    let text = "";
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      socket: {
        data(s, d) {
          text += d.toString();
          if (text === "HTTP/1.1 100 Continue\r\n\r\n") s.write('{"x":1}');
          if (text.endsWith('{"ok":true}')) done.resolve(text);
        },
        close: () => done.resolve(text),
      },
    });
    sock.write("POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n");
    const reply = await done.promise;
    sock.end();
    expect(reply).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n");
    expect(seen[0]!.body).toBe('{"x":1}');
    expect(new Map(seen[0]!.headers).get("expect")).toBe("100-continue");
  });

  test("gzip passes through: bytes identical, content-encoding kept", async () => {
    const res = await fetch(`http://127.0.0.1:${gzipProxy.port}/v1/responses`, { method: "POST", body: "{}", decompress: false });
    expect(res.headers.get("content-encoding")).toBe("gzip");
    expect(Buffer.from(await res.arrayBuffer()).equals(gz)).toBe(true);
  });

  test("3xx is mirrored, not followed", async () => {
    const res = await fetch(`http://127.0.0.1:${redirectProxy.port}/v1/responses`, { method: "POST", body: "{}", redirect: "manual" });
    expect(res.status).toBe(307);
    expect(res.headers.get("location")).toBe("http://127.0.0.1:1/elsewhere");
  });

  test("keep-alive: two requests on one client connection", async () => {
    const req = "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}";
    const r = await rawExchange(proxy.port, req + req, (t) => t.split("HTTP/1.1 201").length === 3 && t.endsWith('{"ok":true}'));
    expect(r.closed).toBe(false);
    expect(r.text).toStartWith("HTTP/1.1 201 Created\r\n");
    expect(r.text.split("x-upstream: yes\r\n").length).toBe(3);
    // The upstream's content-length is relayed as our framing: the length, then the raw body.
    expect(r.text.split("content-length: 11\r\n\r\n{\"ok\":true}").length).toBe(3);
  });

  test("HTTP/1.0 client gets a close-delimited body", async () => {
    const r = await rawExchange(proxy.port, "POST /v1/responses HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(r.text).not.toMatch(/transfer-encoding/i);
    expect(r.text.endsWith('\r\n\r\n{"ok":true}')).toBe(true);
  });

  test("upstream down → empty 500, `forwarding error:` on stderr, next request still served", async () => {
    const dead = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const deadPort = dead.port;
    dead.stop(true);
    const down = startProxyTo(deadPort, client, (l) => errors.push(l));
    try {
      errors.length = 0;
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`http://127.0.0.1:${down.port}/v1/responses`, { method: "POST", body: "{}" });
        expect(res.status).toBe(500);
        expect(await res.text()).toBe("");
      }
      expect(errors).toHaveLength(2);
      expect(errors[0]).toStartWith("forwarding error: ");
      expect(errors.join("\n")).not.toContain(KEY);
    } finally {
      await down.stop(0);
    }
  });
});

describe("client disconnect aborts the upstream request", () => {
  test("upstream sees its socket close", async () => {
    const gotRequest = Promise.withResolvers<void>();
    const upstreamClosed = Promise.withResolvers<void>();
    let received = "";
    const upstream = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, d) {
          received += d.toString();
          if (received.includes("\r\n\r\n{}")) {
            // Answer with a head and one SSE event, then keep the stream open forever.
            s.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n");
            s.write("8\r\ndata: 1\n\r\n");
            gotRequest.resolve();
          }
        },
        close() {
          upstreamClosed.resolve();
        },
      },
    });
    const client = createHttp1Client({ proxyEnv: null });
    const proxy = startProxyTo(upstream.port, client);
    try {
      const firstEvent = Promise.withResolvers<void>();
      const sock = await Bun.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
        socket: {
          data(_s, d) {
            if (d.toString().includes("data: 1")) firstEvent.resolve();
          },
        },
      });
      sock.write("POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}");
      await gotRequest.promise;
      await firstEvent.promise;
      sock.end();
      await upstreamClosed.promise;
      expect(received).toContain(`authorization: Bearer ${KEY}`);
    } finally {
      await proxy.stop(0);
      client.close();
      upstream.stop(true);
    }
  });
});

describe("large streamed bodies under backpressure", () => {
  test.each(["HTTP/1.1", "HTTP/1.0"])("%s client that pauses reading gets every byte, in order", async (version) => {
    const CHUNK = 64 * 1024;
    const CHUNKS = 80; // 5 MiB
    const halfway = Promise.withResolvers<void>();
    let produced = 0;
    const upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch() {
        return new Response(
          new ReadableStream({
            pull(c) {
              if (produced === CHUNKS) return c.close();
              c.enqueue(new Uint8Array(CHUNK).fill(produced % 251));
              produced++;
              if (produced === CHUNKS / 4) halfway.resolve();
            },
          }),
        );
      },
    });
    const client = createHttp1Client({ proxyEnv: null });
    const proxy = startProxyTo(upstream.port, client);
    try {
      const chunks: Uint8Array[] = [];
      const closed = Promise.withResolvers<void>();
      const sock = await Bun.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
        socket: {
          data(_s, d) {
            chunks.push(new Uint8Array(d));
          },
          close: () => closed.resolve(),
        },
      });
      sock.pause();
      sock.write(`POST /v1/responses ${version}\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      await halfway.promise;
      sock.resume();
      await closed.promise;
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf("\r\n\r\n") + 4;
      const head = all.subarray(0, headEnd).toString("latin1");
      let body = all.subarray(headEnd);
      if (version === "HTTP/1.1") {
        expect(head).toContain("transfer-encoding: chunked");
        body = decodeChunked(body);
      }
      expect(body.length).toBe(CHUNK * CHUNKS);
      for (let k = 0; k < CHUNKS; k++) expect(body[k * CHUNK]).toBe(k % 251);
    } finally {
      await proxy.stop(0);
      client.close();
      upstream.stop(true);
    }
  });
});

describe("many concurrent streams (SPEC §1.6)", () => {
  test("64 concurrent SSE streams all complete intact over kept-alive upstream connections", async () => {
    const N = 64;
    const release = Promise.withResolvers<void>();
    let open = 0;
    const allOpen = Promise.withResolvers<void>();
    const upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        const id = ((await req.json()) as { id: number }).id;
        const enc = new TextEncoder();
        let step = 0;
        return new Response(
          new ReadableStream({
            async pull(c) {
              if (step === 0) {
                c.enqueue(enc.encode(`data: start ${id}\n\n`));
                if (++open === N) allOpen.resolve();
              } else if (step === 1) {
                await release.promise;
                c.enqueue(enc.encode(`data: end ${id}\n\n`));
              } else c.close();
              step++;
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      },
    });
    const client = createHttp1Client({ proxyEnv: null, maxIdlePerOrigin: 256 });
    const proxy = startProxyTo(upstream.port, client);
    try {
      const results = Array.from({ length: N }, (_, id) =>
        fetch(`http://127.0.0.1:${proxy.port}/v1/responses`, { method: "POST", body: JSON.stringify({ id }) }).then((r) => r.text()),
      );
      // Every stream is open at the same time before any of them may finish.
      await allOpen.promise;
      release.resolve();
      const texts = await Promise.all(results);
      texts.forEach((t, id) => expect(t).toBe(`data: start ${id}\n\ndata: end ${id}\n\n`));
    } finally {
      await proxy.stop(0);
      client.close();
      upstream.stop(true);
    }
  });
});

describe("response header mirroring (SPEC §1.5)", () => {
  test("every upstream header except content-length, transfer-encoding, connection, trailer, upgrade; repeats kept", async () => {
    const upstream = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, d) {
          if (!d.toString().includes("\r\n\r\n{}")) return;
          s.write(
            "HTTP/1.1 418 I'm a teapot\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
              "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Request-Id: r-1\r\n" +
              "Content-Length: 2\r\n\r\n{}",
          );
        },
      },
    });
    const client = createHttp1Client({ proxyEnv: null });
    const proxy = startProxyTo(upstream.port, client);
    try {
      const r = await rawExchange(proxy.port, "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}", (t) =>
        t.endsWith("\r\n\r\n{}"),
      );
      // Relayed as bytes: names lower-cased, the five fields dropped, our content-length added.
      expect(r.text).toBe(
        "HTTP/1.1 418 I'm a Teapot\r\ncontent-type: application/json\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n" +
          "keep-alive: timeout=5\r\nx-request-id: r-1\r\ncontent-length: 2\r\n\r\n{}",
      );
    } finally {
      await proxy.stop(0);
      client.close();
      upstream.stop(true);
    }
  });
});

describe("upstream bodies with a content-length (relayed with content-length framing)", () => {
  test.each([0, 100, 16 * 1024, 16 * 1024 + 1, 300 * 1024])("%d bytes: same length announced, bytes identical, connection kept", async (size) => {
    // ASCII only: the raw test client decodes with TextDecoder("latin1"), which is windows-1252.
    const payload = new Uint8Array(size).map((_, i) => (i * 7) % 128);
    const upstream = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch: () => new Response(payload) });
    const client = createHttp1Client({ proxyEnv: null });
    const proxy = startProxyTo(upstream.port, client);
    try {
      const req = "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}";
      const r = await rawExchange(proxy.port, req + req, (t) => {
        const heads = t.split(`content-length: ${size}\r\n`).length - 1;
        return heads === 2 && t.length >= 2 * size + t.indexOf("\r\n\r\n") * 2;
      });
      expect(r.closed).toBe(false);
      const first = r.text.indexOf("\r\n\r\n") + 4;
      expect(r.text.slice(0, first)).not.toMatch(/transfer-encoding/i);
      expect(Buffer.from(r.text.slice(first, first + size), "latin1").equals(Buffer.from(payload))).toBe(true);
      const second = r.text.indexOf("\r\n\r\n", first + size) + 4;
      expect(r.text.slice(first + size, first + size + 9)).toBe("HTTP/1.1 ");
      expect(r.text.length).toBe(second + size);
    } finally {
      await proxy.stop(0);
      client.close();
      upstream.stop(true);
    }
  });
});
