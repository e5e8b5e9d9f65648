/**
 * https upstreams: certificate verification against system roots + extra CAs (extraCa and
 * NODE_EXTRA_CA_CERTS / SSL_CERT_FILE semantics), server names, IP literals, pinned
 * addresses, and the secret header's exact bytes through TLS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHttp1Client } from "../../src/http1/client.ts";
import { buildTrustedCa, loadExtraCaFromEnv, splitPemCertificates } from "../../src/http1/tls-trust.ts";
import type { Http1Client } from "../../src/http1/types.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";
import { bodyText, makeTestPki, startRawServer, type TestPki } from "./helpers.ts";

let pki: TestPki;
let good: ReturnType<typeof Bun.serve>;
let other: ReturnType<typeof Bun.serve>;
const clients: Http1Client[] = [];
const mk = (extraCa?: string[]) => {
  const c = createHttp1Client({ proxyEnv: null, ...(extraCa ? { extraCa } : {}) });
  clients.push(c);
  return c;
};

beforeAll(() => {
  pki = makeTestPki();
  const fetch = (req: Request) => new Response(`hello ${new URL(req.url).pathname}`);
  good = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: pki.leaf, fetch });
  other = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: pki.otherLeaf, fetch });
});
afterAll(() => {
  for (const c of clients) c.close();
  good.stop(true);
  other.stop(true);
  pki.cleanup();
});

async function tlsError(client: Http1Client, url: string, extra: { connectTo?: string[]; servername?: string } = {}) {
  const err = await client
    .request({ url: new URL(url), method: "GET", headers: [["host", "x"]], ...extra })
    .then(() => null, (e) => e);
  expect(err).toBeInstanceOf(UpstreamError);
  expect((err as UpstreamError).kind).toBe("tls");
  return err as UpstreamError;
}

describe("certificate verification", () => {
  test("trusted through extraCa, with the URL's name pinned to 127.0.0.1", async () => {
    const res = await mk([pki.caPem]).request({
      url: new URL(`https://upstream.test:${good.port}/a`),
      method: "GET",
      headers: [["host", `upstream.test:${good.port}`]],
      connectTo: ["127.0.0.1"],
    });
    expect(res.status).toBe(200);
    expect(await bodyText(res.body)).toBe("hello /a");
  });

  test("trusted through NODE_EXTRA_CA_CERTS / SSL_CERT_FILE files", async () => {
    const bundle = join(pki.dir, "bundle.pem");
    writeFileSync(bundle, `junk before\n${pki.caPem}\ntrailing text\n`);
    const { pems, problems } = loadExtraCaFromEnv({ NODE_EXTRA_CA_CERTS: bundle, SSL_CERT_FILE: join(pki.dir, "missing.pem") });
    expect(pems.map((p) => p.trim())).toEqual([pki.caPem.trim()]);
    expect(problems).toEqual([`SSL_CERT_FILE=${join(pki.dir, "missing.pem")}: ENOENT`]);
    const res = await mk(pems).request({ url: new URL(`https://127.0.0.1:${good.port}/b`), method: "GET", headers: [["host", "x"]] });
    expect(await bodyText(res.body)).toBe("hello /b");
  });

  test("by default the client reads NODE_EXTRA_CA_CERTS from its environment (child process)", async () => {
    const clientPath = join(import.meta.dir, "../../src/http1/client.ts");
    const code = `
      import { createHttp1Client } from ${JSON.stringify(clientPath)};
      const c = createHttp1Client({ proxyEnv: null });
      const r = await c.request({ url: new URL("https://upstream.test:${good.port}/env"), method: "GET",
        headers: [["host", "upstream.test"]], connectTo: ["127.0.0.1"] }).catch((e) => ({ status: e.kind }));
      console.log(r.status);
      c.close();`;
    const run = async (env: Record<string, string>) => {
      const p = Bun.spawn([process.execPath, "-e", code], { env: { PATH: process.env.PATH ?? "", ...env }, stdout: "pipe", stderr: "pipe" });
      const [out] = await Promise.all([new Response(p.stdout).text(), p.exited]);
      return out.trim();
    };
    const [withCa, without] = await Promise.all([run({ NODE_EXTRA_CA_CERTS: pki.caPath }), run({})]);
    expect(withCa).toBe("200");
    expect(without).toBe("tls");
  });

  test("the trusted list keeps the default roots and adds the extra ones once", () => {
    const list = buildTrustedCa([pki.caPem, pki.caPem]);
    expect(list.length).toBeGreaterThan(100);
    expect(list.filter((p) => p.trim() === pki.caPem.trim()).length).toBe(1);
    expect(splitPemCertificates(pki.caPem + pki.leaf.cert).length).toBe(2);
  });

  test("an untrusted certificate fails with kind tls and sends nothing", async () => {
    using raw = startRawServer(() => {}, pki.leaf);
    const secret = new TextEncoder().encode("Bearer sk-never-sent");
    const err = await mk([]) // system roots only
      .request({
        url: new URL(`https://upstream.test:${raw.port}/`),
        method: "POST",
        headers: [["host", "upstream.test"]],
        secretHeader: { name: "authorization", value: secret },
        connectTo: ["127.0.0.1"],
      })
      .then(() => null, (e) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err.kind).toBe("tls");
    const c = await raw.conn(0);
    await c.closed.promise;
    expect(c.all().length).toBe(0);
  });

  test("a certificate for another name fails with kind tls", async () => {
    const e = await tlsError(mk([pki.caPem]), `https://upstream.test:${other.port}/`, { connectTo: ["127.0.0.1"] });
    expect(e.message).toContain("TLS certificate verification failed");
  });

  test("servername overrides the URL host for SNI and verification", async () => {
    const res = await mk([pki.caPem]).request({
      url: new URL(`https://127.0.0.1:${other.port}/c`),
      method: "GET",
      headers: [["host", "other.test"]],
      servername: "other.test",
    });
    expect(await bodyText(res.body)).toBe("hello /c");
  });

  test("an IP-literal URL is verified against the certificate's IP SAN", async () => {
    const c = mk([pki.caPem]);
    const res = await c.request({ url: new URL(`https://127.0.0.1:${good.port}/d`), method: "GET", headers: [["host", "x"]] });
    expect(await bodyText(res.body)).toBe("hello /d");
    await tlsError(c, `https://127.0.0.1:${other.port}/`); // no IP SAN in that certificate
  });
});

test("the secret header reaches a TLS upstream byte-exact", async () => {
  using raw = startRawServer(async (c) => {
    await c.waitForText("\r\n\r\n");
    c.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
  }, pki.leaf);
  const res = await mk([pki.caPem]).request({
    url: new URL(`https://upstream.test:${raw.port}/v1/responses`),
    method: "POST",
    headers: [["host", "upstream.test"]],
    secretHeader: { name: "authorization", value: new TextEncoder().encode("Bearer sk-abc_DEF-123") },
    body: new TextEncoder().encode("{}"),
    connectTo: ["127.0.0.1"],
  });
  expect(res.status).toBe(200);
  expect(await (await raw.conn(0)).waitForText("{}")).toBe(
    "POST /v1/responses HTTP/1.1\r\nhost: upstream.test\r\nauthorization: Bearer sk-abc_DEF-123\r\ncontent-length: 2\r\n\r\n{}",
  );
});
