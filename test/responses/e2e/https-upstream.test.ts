import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProxyChild, type ProxyChild } from "../../helpers/responses.ts";
import { makeTestPki } from "../../helpers/pki.ts";

const KEY = "sk-https-KEY_42";

describe("https upstream verified with NODE_EXTRA_CA_CERTS", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-https-"));
  const pki = makeTestPki();
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, pki.caPem);
  let upstream: ReturnType<typeof Bun.serve>;
  let trusted: ProxyChild;
  let untrusted: ProxyChild;
  const seen: Array<{ auth: string | null; host: string | null; url: string }> = [];

  beforeAll(async () => {
    upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: pki.leaf.cert, key: pki.leaf.key },
      fetch(req) {
        seen.push({ auth: req.headers.get("authorization"), host: req.headers.get("host"), url: req.url });
        return new Response('{"id":"resp_tls"}', { headers: { "content-type": "application/json" } });
      },
    });
    const url = `https://localhost:${upstream.port}/openai/deployments/d/responses?api-version=2025-04-01-preview`;
    [trusted, untrusted] = await Promise.all([
      startProxyChild(["--upstream-url", url], { key: KEY, env: { NODE_EXTRA_CA_CERTS: caFile } }),
      startProxyChild(["--upstream-url", url], { key: KEY }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([trusted?.stop(), untrusted?.stop()]);
    upstream?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  test("trusted CA: request forwarded over TLS with the key and the upstream Host", async () => {
    const res = await fetch(`${trusted.base}/v1/responses`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "resp_tls" });
    expect(seen).toEqual([
      { auth: `Bearer ${KEY}`, host: `localhost:${upstream.port}`, url: `https://localhost:${upstream.port}/openai/deployments/d/responses?api-version=2025-04-01-preview` },
    ]);
  });

  test("untrusted CA: empty 500 and a forwarding error, key not sent", async () => {
    const before = seen.length;
    const res = await fetch(`${untrusted.base}/v1/responses`, { method: "POST", body: "{}" });
    expect(res.status).toBe(500);
    expect(await res.text()).toBe("");
    expect(await untrusted.stderr.wait(/^\S+Z ERROR: forwarding error: /)).not.toBeNull();
    expect(seen.length).toBe(before);
    expect(untrusted.stderr.text).not.toContain(KEY);
  });
});
