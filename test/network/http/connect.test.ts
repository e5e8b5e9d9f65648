import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { curl, startTcpEcho } from "../../helpers/network.ts";
import type { ConnState, Dialer, MitmEngine } from "../../../src/network/types.ts";
import { DialError } from "../../../src/network/dial-error.ts";
import type { TunnelHandle } from "../../../src/network/tunnel.ts";
import { captureClientHello, failAfter, rawClient, selfSignedCert, splitResponse, startProxy } from "./helpers.ts";

const allow = { policy: { allowedDomains: ["allowed.test", "other.test"], allowLocalBinding: true } };
const ESTABLISHED = "HTTP/1.1 200 Connection established\r\n\r\n";

describe("CONNECT in full mode", () => {
  const echo = startTcpEcho();
  const proxy = startProxy(allow);
  afterAll(async () => {
    await proxy.stop();
    echo.stop();
  });

  test("curl -p through the tunnel to a TLS origin (SNI = CONNECT host)", async () => {
    const { cert, key } = selfSignedCert(["allowed.test"]);
    const origin = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert, key }, fetch: (req) => new Response(`tls ok ${new URL(req.url).pathname}`) });
    try {
      const r = await curl(["-x", proxy.url, "-p", "-k", `https://allowed.test:${origin.port}/secure`]);
      expect([r.exitCode, r.status, r.body]).toEqual([0, 200, "tls ok /secure"]);
    } finally {
      origin.stop(true);
    }
  });

  test("raw tunnel: bytes sent with the CONNECT head and after it are spliced both ways", async () => {
    const c = await rawClient(proxy.port);
    c.write(`CONNECT allowed.test:${echo.port} HTTP/1.1\r\nHost: allowed.test:${echo.port}\r\n\r\nearly bytes;`);
    expect(await c.until((t) => t === ESTABLISHED + "early bytes;")).toBe(ESTABLISHED + "early bytes;");
    c.write("later bytes");
    expect(await c.until((t) => t.endsWith("later bytes"))).toBe(ESTABLISHED + "early bytes;later bytes");
    c.socket.end();
  });

  test("a client half-close reaches the upstream as FIN; the upstream's last bytes still arrive", async () => {
    const c = await rawClient(proxy.port);
    c.write(`CONNECT allowed.test:${echo.port} HTTP/1.1\r\n\r\n`);
    await c.until((t) => t === ESTABLISHED);
    c.write("last words");
    c.socket.shutdown();
    expect(await c.closed()).toBe(ESTABLISHED + "last words");
  });

  test("the upstream closing closes the client", async () => {
    const closer = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.end("bye"), data() {} } });
    try {
      const c = await rawClient(proxy.port);
      c.write(`CONNECT allowed.test:${closer.port} HTTP/1.1\r\n\r\n`);
      expect(await c.closed()).toBe(ESTABLISHED + "bye");
    } finally {
      closer.stop(true);
    }
  });

  test("blocked target → 403 text body, x-proxy-error, connection closed", async () => {
    const c = await rawClient(proxy.port);
    c.write(`CONNECT blocked.test:443 HTTP/1.1\r\n\r\n`);
    const res = splitResponse(await c.closed());
    expect([res.status, res.headers["x-proxy-error"], res.headers["content-type"], res.body]).toEqual([
      403, "blocked-by-allowlist", "text/plain", "Codex blocked this request: domain not in allowlist.",
    ]);
    expect(proxy.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol, e.port])).toEqual([["blocked.test", "not_allowed", "http-connect", 443]]);
  });

  test("a ClientHello naming another host closes the tunnel before any byte reaches the upstream (sni_mismatch)", async () => {
    let received = 0;
    const sink = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, d) => void (received += d.byteLength) } });
    try {
      const hello = await captureClientHello("other.test");
      const c = await rawClient(proxy.port);
      c.write(`CONNECT allowed.test:${sink.port} HTTP/1.1\r\n\r\n`);
      await c.until((t) => t === ESTABLISHED);
      c.write(hello);
      expect(await c.closed()).toBe(ESTABLISHED);
      expect(received).toBe(0);
      expect(proxy.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol])).toEqual([["allowed.test", "sni_mismatch", "http-connect"]]);
    } finally {
      sink.stop(true);
    }
  });

  test("a ClientHello naming the CONNECT host passes unchanged, even split in pieces", async () => {
    const hello = await captureClientHello("Allowed.Test.");
    const c = await rawClient(proxy.port);
    c.write(`CONNECT allowed.test:${echo.port} HTTP/1.1\r\n\r\n`);
    await c.until((t) => t === ESTABLISHED);
    c.write(hello.subarray(0, 10));
    await new Promise((r) => setImmediate(r));
    c.write(hello.subarray(10));
    const got = await c.until((t) => t.length >= ESTABLISHED.length + hello.byteLength);
    expect(Buffer.from(got.slice(ESTABLISHED.length), "latin1").equals(Buffer.from(hello))).toBe(true);
    c.socket.end();
  });

  test("slow reader: the upstream is paused, memory stays bounded, every byte arrives once the client reads", async () => {
    const TOTAL = 24 * 1024 * 1024;
    const block = new Uint8Array(64 * 1024).map((_, i) => i & 0xff);
    let sent = 0;
    const flood = Bun.listen<{ rest: Uint8Array | null }>({
      hostname: "127.0.0.1",
      port: 0,
      data: { rest: null },
      socket: {
        open(s) {
          s.data = { rest: null };
          pump(s);
        },
        drain: (s) => pump(s),
        data() {},
      },
    });
    // Write until the socket refuses (backpressure), continue from `drain`; end after TOTAL.
    function pump(s: Socket<{ rest: Uint8Array | null }>) {
      while (sent < TOTAL || s.data.rest) {
        const buf = s.data.rest ?? block.subarray(0, Math.min(block.byteLength, TOTAL - sent));
        if (!s.data.rest) sent += buf.byteLength;
        const n = s.write(buf);
        s.data.rest = n < buf.byteLength ? buf.subarray(Math.max(n, 0)) : null;
        if (s.data.rest) return;
      }
      s.end();
    }
    const tunnel = Promise.withResolvers<TunnelHandle>();
    const p = startProxy(allow, { onTunnel: (t) => tunnel.resolve(t) });
    let received = 0;
    let patternOk = true;
    const done = Promise.withResolvers<void>();
    const client = await Bun.connect({
      hostname: "127.0.0.1",
      port: p.port,
      socket: {
        data(_s, d) {
          for (let i = 0; i < d.byteLength; i++) {
            const at = received + i - ESTABLISHED.length;
            if (at >= 0 && d[i] !== (at % block.byteLength & 0xff)) patternOk = false;
          }
          received += d.byteLength;
        },
        close: () => done.resolve(),
      },
    });
    const fail = failAfter(4000, "slow reader tunnel");
    try {
      client.pause(); // a reader that stops reading
      client.write(`CONNECT allowed.test:${flood.port} HTTP/1.1\r\n\r\n`);
      const t = await Promise.race([tunnel.promise, fail.promise]);
      const paused = Promise.withResolvers<{ toClient: number; sentThen: number }>();
      const check = (s: { upstream: boolean }) => {
        if (s.upstream) paused.resolve({ toClient: t.queued().toClient, sentThen: sent });
      };
      t.watch(check);
      check(t.paused());
      const at = await Promise.race([paused.promise, fail.promise]);
      expect(at.toClient).toBeLessThan(1024 * 1024); // about one socket read, not the stream
      expect(at.sentThen).toBeLessThan(TOTAL); // the origin was held back
      client.resume();
      await Promise.race([done.promise, fail.promise]);
      expect(received).toBe(ESTABLISHED.length + TOTAL);
      expect(patternOk).toBe(true);
      await Promise.race([t.closed, fail.promise]);
    } finally {
      fail.cancel();
      client.end();
      await p.stop();
      flood.stop(true);
    }
  });

  test("dial failure → 502 upstream failure (no 200 first)", async () => {
    const failing: Dialer = {
      connect: async () => {
        throw new DialError("refused", "connection refused");
      },
    };
    const p = startProxy(allow, { dialer: failing });
    try {
      const c = await rawClient(p.port);
      c.write(`CONNECT allowed.test:1 HTTP/1.1\r\n\r\n`);
      const res = splitResponse(await c.closed());
      expect([res.status, res.body]).toEqual([502, "upstream failure"]);
    } finally {
      await p.stop();
    }
  });
});

describe("CONNECT in limited mode", () => {
  test("without MITM → 403 blocked-by-mitm-required text", async () => {
    const p = startProxy({ ...allow, mode: "limited" });
    try {
      const r = await curl(["-x", p.url, "-p", "-k", "https://allowed.test:443/"]);
      expect(r.status).toBe(403);
      const c = await rawClient(p.port);
      c.write("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n");
      const res = splitResponse(await c.closed());
      expect([res.status, res.headers["x-proxy-error"], res.body]).toEqual([
        403, "blocked-by-mitm-required", "Codex blocked this request: MITM required for limited HTTPS.",
      ]);
    } finally {
      await p.stop();
    }
  });

  test("with MITM → 200 Connection established, then the engine owns the socket with the pinned target", async () => {
    const p = startProxy({ ...allow, mode: "limited" });
    const calls: Array<{ target: unknown; client: string | null; initial: string | null }> = [];
    const engine: MitmEngine = {
      intercept(socket: Socket<ConnState>, target, client, initial) {
        calls.push({ target, client, initial: initial ? Buffer.from(initial).toString() : null });
        socket.data.handler = { data: (s, d) => void s.write(d), drain() {}, close() {} };
        socket.write("mitm says hi;");
      },
      stop() {},
    };
    p.ctx.setMitm(engine);
    try {
      const c = await rawClient(p.port);
      c.write("CONNECT Allowed.Test:8443 HTTP/1.1\r\n\r\nhello");
      await c.until((t) => t === `${ESTABLISHED}mitm says hi;`);
      c.write("echo");
      await c.until((t) => t.endsWith("echo"));
      expect(calls).toEqual([
        { target: { host: "allowed.test", port: 8443, addresses: ["127.0.0.1"] }, client: expect.stringMatching(/^127\.0\.0\.1:\d+$/), initial: "hello" },
      ]);
      c.socket.end();
    } finally {
      await p.stop();
    }
  });
});
