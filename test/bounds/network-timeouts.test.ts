/**
 * The network proxy under slow and silent clients (issue 8 rows 2 and 4, SPEC-network §4,
 * §12): head bound from the first byte vs idle bound, CONNECT only as the first request of an
 * HTTP-listener connection, and MITM connections that never handshake, never send a request
 * or send half a head. Bounds are made small through constructor options.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as tlsConnect } from "node:tls";
import { startHttpProxyListener } from "../../src/network/http/listener.ts";
import type { Ca } from "../../src/network/mitm/ca.ts";
import type { MitmEngineHandle } from "../../src/network/mitm/engine.ts";
import { splitResponse, startProxy } from "../helpers/http-proxy.ts";
import { connectThrough, startMitmContext, type MitmSetup } from "../helpers/mitm.ts";
import { selfSignedCert } from "../helpers/pki.ts";
import { rawClient, RawClient } from "../helpers/raw-client.ts";
import { domainRequest, GREETING } from "../helpers/socks5.ts";
import { removeTempDirs } from "../helpers/temp.ts";
import { createTestContext, startFakeHttpUpstream } from "../helpers/network.ts";
import { startSocks5Listener } from "../../src/network/socks5/listener.ts";

afterAll(removeTempDirs);

const allowAll = { mode: "full" as const, policy: { allowedDomains: ["*"], allowLocalBinding: true } };

describe("plain listener (SPEC-network §4, §12)", () => {
  test("the head bound runs from the first byte: a head trickled a byte at a time gets 408 long before the idle bound", async () => {
    const proxy = startProxy(allowAll, { headTimeoutMs: 100, idleTimeoutMs: 60_000 });
    try {
      const c = await rawClient(proxy.port);
      c.write("GET http://allowed.test/ HTTP/1.1\r\n");
      const timer = setInterval(() => c.socket.write("x"), 10);
      const res = splitResponse(await c.closed(10_000));
      clearInterval(timer);
      expect([res.status, res.body]).toEqual([408, "request timeout"]);
      // One access line, like a bad head: the status, no method (the head never completed).
      const access = proxy.lines.filter((l) => l.startsWith("access "));
      expect(access.length).toBe(1);
      expect(access[0]).toContain(" http.response.status_code=408 ");
      expect(access[0]).not.toContain("http.request.method=");
    } finally {
      await proxy.stop();
    }
  });

  test("the idle bound closes a silent connection, and is not the head bound", async () => {
    const proxy = startProxy(allowAll, { headTimeoutMs: 60_000, idleTimeoutMs: 100 });
    try {
      const idle = await rawClient(proxy.port);
      expect(await idle.closed(10_000)).toBe("");
    } finally {
      await proxy.stop();
    }
  });

  test("CONNECT after another request on the same connection is 405 (issue 8 row 2)", async () => {
    const origin = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("read") });
    const proxy = startProxy(allowAll);
    try {
      const c = await rawClient(proxy.port);
      c.write(`GET http://allowed.test:${origin.port}/ HTTP/1.1\r\nHost: allowed.test:${origin.port}\r\n\r\n`);
      await c.until((t) => t.endsWith("read"));
      c.write(`CONNECT allowed.test:${origin.port} HTTP/1.1\r\nHost: allowed.test:${origin.port}\r\n\r\n`);
      const all = await c.closed();
      const second = all.slice(all.indexOf("read") + 4);
      expect(second).toStartWith("HTTP/1.1 405 ");
      expect(second).toEndWith("\r\n\r\nCONNECT not supported inside MITM");
    } finally {
      await proxy.stop();
      origin.stop(true);
    }
  });
});

test("limited mode over SOCKS5: GET / then CONNECT /upload with a body on the same tunnel never reaches the origin (issue 8 row 2, as measured)", async () => {
  const upstream = startFakeHttpUpstream();
  const t = createTestContext({ mode: "limited", policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
  const proxy = startSocks5Listener(t.ctx, { host: "127.0.0.1", port: 0 });
  try {
    const c = await RawClient.connect(proxy.port);
    c.write([...GREETING, ...domainRequest(0x01, "allowed.test", upstream.port)]);
    await c.read(2 + 10, "method selection and reply");
    c.write(`GET / HTTP/1.1\r\nHost: allowed.test:${upstream.port}\r\n\r\n`);
    c.write(`CONNECT /upload HTTP/1.1\r\nHost: allowed.test:${upstream.port}\r\ncontent-length: 6\r\n\r\nSECRET`);
    const all = new TextDecoder("latin1").decode(await c.readToClose());
    expect(all).toContain("hello from upstream");
    expect(all.slice(all.indexOf("hello from upstream"))).toContain("HTTP/1.1 405 ");
    expect(upstream.seen.map((r) => [r.method, r.body])).toEqual([["GET", ""]]);
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
});

describe("MITM connections are bounded (issue 8 row 4)", () => {
  let t: MitmSetup["t"];
  let ca: Ca;
  let engine: MitmEngineHandle;
  let listener: ReturnType<typeof startHttpProxyListener>;
  beforeAll(async () => {
    const cert = selfSignedCert(["allowed.test"]);
    ({ t, ca, engine } = await startMitmContext(cert.cert, {}, { handshakeTimeoutMs: 100, headTimeoutMs: 100, idleTimeoutMs: 100 }));
    listener = startHttpProxyListener(t.ctx, { host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await listener?.stop();
    engine?.stop();
  });

  test("no ClientHello after the 200: closed, `tls handshake timeout` logged", async () => {
    const sock = await connectThrough(listener.port, "allowed.test", 443);
    await new Promise<void>((resolve) => sock.once("close", () => resolve()));
    expect(t.lines.some((l) => l.startsWith("tls handshake timeout"))).toBe(true);
  });

  /** TLS through the proxy's CONNECT, trusting our CA; resolves once the handshake is done. */
  async function tlsIn() {
    const sock = await connectThrough(listener.port, "allowed.test", 443);
    const tls = tlsConnect({ socket: sock, servername: "allowed.test", ca: ca.certPem });
    let text = "";
    tls.on("data", (b: Buffer) => (text += b.toString("latin1")));
    tls.on("error", () => {});
    const closed = new Promise<void>((resolve) => tls.once("close", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      tls.once("secureConnect", () => resolve());
      tls.once("error", reject);
    });
    return { tls, closed, text: () => text };
  }

  test("TLS done but no request: closed by the idle bound", async () => {
    const c = await tlsIn();
    await c.closed;
    expect(c.text()).toBe("");
  });

  test("half a head inside TLS: 408 and close", async () => {
    const c = await tlsIn();
    c.tls.write("GET / HTTP/1.1\r\nHost: allowed.test\r\n");
    await c.closed;
    expect(c.text()).toStartWith("HTTP/1.1 408 ");
  });
});
