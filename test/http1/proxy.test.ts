/**
 * Proxy environment end to end: https targets through a CONNECT tunnel (TLS verified against
 * the target name), http targets in absolute-form, proxy credentials, NO_PROXY, connectTo
 * bypassing the proxy, and proxy failures (kind "proxy").
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHttp1Client } from "../../src/http1/client.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";
import { startFakeProxy } from "./fake-proxy.ts";
import { bodyText, makeTestPki, type TestPki } from "./helpers.ts";

let pki: TestPki;
let upstream: ReturnType<typeof Bun.serve>;
let proxy: ReturnType<typeof startFakeProxy>;
beforeAll(() => {
  pki = makeTestPki();
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: pki.leaf,
    fetch: (req) => new Response(`tls ${new URL(req.url).pathname} ${req.headers.get("authorization")}`),
  });
  proxy = startFakeProxy();
});
afterAll(() => {
  upstream.stop(true);
  proxy.stop();
  pki.cleanup();
});

const secret = () => ({ name: "authorization", value: new TextEncoder().encode("Bearer sk-via-proxy") });

describe("https through HTTPS_PROXY", () => {
  test("CONNECT host:port, then TLS to the target name through the tunnel; kept alive", async () => {
    proxy.heads.length = 0;
    const client = createHttp1Client({ extraCa: [pki.caPem], proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` } });
    try {
      for (const path of ["/one", "/two"]) {
        const res = await client.request({
          url: new URL(`https://upstream.test:${upstream.port}${path}`),
          method: "POST",
          headers: [["host", `upstream.test:${upstream.port}`]],
          secretHeader: secret(),
          body: new TextEncoder().encode("{}"),
        });
        expect(await bodyText(res.body)).toBe(`tls ${path} Bearer sk-via-proxy`);
      }
      // One tunnel for both requests; the proxy never sees the key.
      expect(proxy.heads).toEqual([`CONNECT upstream.test:${upstream.port} HTTP/1.1\r\nhost: upstream.test:${upstream.port}\r\n\r\n`]);
    } finally {
      client.close();
    }
  });

  test("proxy credentials go in proxy-authorization on the CONNECT", async () => {
    proxy.heads.length = 0;
    const client = createHttp1Client({ extraCa: [pki.caPem], proxyEnv: { https_proxy: `http://me:p%40ss@127.0.0.1:${proxy.port}` } });
    try {
      const res = await client.request({ url: new URL(`https://upstream.test:${upstream.port}/`), method: "GET", headers: [["host", "upstream.test"]] });
      await bodyText(res.body);
      expect(proxy.heads[0]).toContain(`\r\nproxy-authorization: Basic ${btoa("me:p@ss")}\r\n`);
    } finally {
      client.close();
    }
  });

  test("the target certificate is still verified through the tunnel", async () => {
    const client = createHttp1Client({ extraCa: [], proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` } });
    const err = await client
      .request({ url: new URL(`https://upstream.test:${upstream.port}/`), method: "GET", headers: [] })
      .then(() => null, (e) => e);
    client.close();
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe("tls");
  });

  test("a refused CONNECT → kind proxy with the status, no header values", async () => {
    const refusing = startFakeProxy({ refuseWith: "HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic\r\ncontent-length: 0\r\n\r\n" });
    const client = createHttp1Client({ proxyEnv: { HTTPS_PROXY: `http://u:secretpw@127.0.0.1:${refusing.port}` } });
    try {
      const err = await client
        .request({ url: new URL("https://upstream.test/"), method: "GET", headers: [] })
        .then(() => null, (e) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.kind).toBe("proxy");
      expect(err.message).toBe("proxy refused CONNECT with status 407");
    } finally {
      client.close();
      refusing.stop();
    }
  });

  test("an unreachable proxy → kind proxy; an unsupported proxy scheme → kind proxy", async () => {
    const gone = startFakeProxy();
    gone.stop();
    for (const value of [`http://127.0.0.1:${gone.port}`, "socks5://127.0.0.1:1080"]) {
      const client = createHttp1Client({ proxyEnv: { HTTPS_PROXY: value } });
      const err = await client
        .request({ url: new URL("https://upstream.test/"), method: "GET", headers: [] })
        .then(() => null, (e) => e);
      client.close();
      expect(err).toBeInstanceOf(UpstreamError);
      expect(err.kind).toBe("proxy");
    }
  });
});

describe("http through HTTP_PROXY, NO_PROXY, connectTo", () => {
  test("http targets are sent in absolute-form to the proxy (no userinfo, no fragment)", async () => {
    proxy.heads.length = 0;
    const client = createHttp1Client({ proxyEnv: { http_proxy: `127.0.0.1:${proxy.port}` } });
    try {
      const res = await client.request({
        url: new URL("http://user:pw@plain.test:8080/p?q=1#frag"),
        method: "GET",
        headers: [["host", "plain.test:8080"]],
      });
      expect(await bodyText(res.body)).toBe("http://plain.test:8080/p?q=1");
      expect(proxy.heads).toEqual(["GET http://plain.test:8080/p?q=1 HTTP/1.1\r\nhost: plain.test:8080\r\n\r\n"]);
    } finally {
      client.close();
    }
  });

  test("NO_PROXY and connectTo bypass the proxy", async () => {
    proxy.heads.length = 0;
    const env = { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, NO_PROXY: "localhost,127.0.0.1" };
    const client = createHttp1Client({ extraCa: [pki.caPem], proxyEnv: env });
    try {
      const direct = await client.request({ url: new URL(`https://127.0.0.1:${upstream.port}/np`), method: "GET", headers: [["host", "x"]] });
      expect(await bodyText(direct.body)).toBe("tls /np null");
      const pinned = await client.request({
        url: new URL(`https://upstream.test:${upstream.port}/pin`),
        method: "GET",
        headers: [["host", "upstream.test"]],
        connectTo: ["127.0.0.1"],
      });
      expect(await bodyText(pinned.body)).toBe("tls /pin null");
      expect(proxy.heads).toEqual([]);
    } finally {
      client.close();
    }
  });
});
