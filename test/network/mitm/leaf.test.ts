/**
 * Leaf certificates (SPEC-network §6) checked by openssl, CAs made by openssl (RSA and EC)
 * as issuers, and the LRU cache with per-host dedupe. (Issuance cost: scripts/bench-leaf.ts.)
 */
import { beforeAll, describe, expect, test, afterAll } from "bun:test";
import { join } from "node:path";
import { loadOrCreateCa, type Ca } from "../../../src/network/mitm/ca.ts";
import { createCertCache } from "../../../src/network/mitm/cert-cache.ts";
import { createLeafKey, issueLeaf, LEAF_BACKDATE_MS, LEAF_VALIDITY_MS, type LeafCert, type LeafKey } from "../../../src/network/mitm/leaf.ts";
import { tempDir } from "../../helpers/mitm.ts";
import { runChild } from "../../helpers/child.ts";
import { removeTempDirs } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

let ca: Ca;
let key: LeafKey;

beforeAll(async () => {
  const dir = tempDir();
  ca = await loadOrCreateCa(join(dir, "ca.pem"), join(dir, "ca.key"), { create: true });
  key = await createLeafKey();
});

async function opensslText(pem: string): Promise<string> {
  const r = await runChild(["openssl", "x509", "-noout", "-text"], { stdin: pem });
  expect(r.code).toBe(0);
  return r.stdout;
}

async function verify(caPath: string, leafPem: string, extra: string[] = []): Promise<string> {
  const p = join(tempDir(), "leaf.pem");
  await Bun.write(p, leafPem);
  const r = await runChild(["openssl", "verify", "-purpose", "sslserver", ...extra, "-CAfile", caPath, p]);
  return (r.stdout + r.stderr).trim().replace(`${p}: `, "");
}

const skiHex = (text: string) => /Subject Key Identifier: ?\n\s+([0-9A-F:]+)/.exec(text)?.[1];
const akiHex = (text: string) => /Authority Key Identifier: ?\n\s+(?:keyid:)?([0-9A-F:]+)/.exec(text)?.[1];

describe("issueLeaf", () => {
  test("SAN, EKU serverAuth, KU, AKI = CA SKI (bytes), 30-day window, verifies against the CA", async () => {
    const leaf = issueLeaf(ca, key, "allowed.test");
    const text = await opensslText(leaf.certPem);
    const caText = await opensslText(ca.certPem);
    expect(text).toContain("Subject: CN = allowed.test");
    expect(text).toContain("Issuer: CN = codex-network-proxy MITM CA");
    expect(text).toContain("Signature Algorithm: sha256WithRSAEncryption");
    expect(text).toMatch(/X509v3 Subject Alternative Name: ?\n\s+DNS:allowed\.test\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage: ?\n\s+TLS Web Server Authentication\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    // The AKI is the CA's key identifier itself (20 bytes), not the bytes of its hex spelling.
    expect(akiHex(text)).toBe(skiHex(caText)!);
    expect(akiHex(text)!.split(":").length).toBe(20);
    const dates = await runChild(["openssl", "x509", "-noout", "-startdate", "-enddate"], { stdin: leaf.certPem });
    const [nb, na] = dates.stdout.trim().split("\n").map((l) => Date.parse(l.split("=")[1]!));
    expect(na! - nb!).toBeLessThanOrEqual(LEAF_VALIDITY_MS + LEAF_BACKDATE_MS);
    expect(nb!).toBeLessThan(Date.now() - LEAF_BACKDATE_MS / 2);
    expect(await verify(ca.certPath, leaf.certPem, ["-verify_hostname", "allowed.test"])).toBe("OK");
    expect(await verify(ca.certPath, leaf.certPem, ["-verify_hostname", "other.test"])).not.toEndWith("OK");
  });

  test("IP literals get an iPAddress SAN (v4 and v6)", async () => {
    const v4 = await opensslText(issueLeaf(ca, key, "127.0.0.1").certPem);
    expect(v4).toMatch(/X509v3 Subject Alternative Name: ?\n\s+IP Address:127\.0\.0\.1\n/);
    const v6leaf = issueLeaf(ca, key, "::1");
    expect(await opensslText(v6leaf.certPem)).toMatch(/X509v3 Subject Alternative Name: ?\n\s+IP Address:0:0:0:0:0:0:0:1\n/);
    expect(await verify(ca.certPath, v6leaf.certPem, ["-verify_ip", "::1"])).toBe("OK");
  });

  test("a name longer than 64 characters: empty subject, critical SAN, still valid", async () => {
    const host = `${"a".repeat(60)}.example.test`;
    const leaf = issueLeaf(ca, key, host);
    const text = await opensslText(leaf.certPem);
    expect(text).toMatch(/Subject: ?\n/);
    expect(text).toContain(`X509v3 Subject Alternative Name: critical\n                DNS:${host}\n`);
    expect(await verify(ca.certPath, leaf.certPem, ["-verify_hostname", host])).toBe("OK");
  });

  test("serials differ per certificate; an empty host throws", () => {
    const a = issueLeaf(ca, key, "x.test");
    const b = issueLeaf(ca, key, "x.test");
    expect(a.certPem).not.toBe(b.certPem);
    expect(() => issueLeaf(ca, key, "")).toThrow("cannot issue a certificate for an empty host");
  });

  for (const kind of ["rsa", "ec"] as const) {
    test(`a CA made by openssl (${kind}) issues leaves that verify, AKI = its SKI`, async () => {
      const dir = tempDir();
      const certPath = join(dir, "ca.pem");
      const keyPath = join(dir, "ca.key");
      const alg = kind === "rsa" ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
      const r = await runChild([
        "openssl", "req", "-x509", ...alg, "-nodes", "-keyout", keyPath, "-out", certPath, "-days", "3",
        "-subj", "/O=Example Org/CN=Other CA",
      ]);
      expect(r.code).toBe(0);
      await runChild(["chmod", "600", keyPath]);
      const other = await loadOrCreateCa(certPath, keyPath, { create: false });
      const leaf = issueLeaf(other, key, "allowed.test");
      const text = await opensslText(leaf.certPem);
      expect(text).toContain("Issuer: O = Example Org, CN = Other CA");
      expect(text).toContain(kind === "rsa" ? "sha256WithRSAEncryption" : "ecdsa-with-SHA256");
      expect(akiHex(text)).toBe(skiHex(await opensslText(other.certPem))!);
      expect(await verify(certPath, leaf.certPem)).toBe("OK");
    });
  }
});

describe("createCertCache", () => {
  const fake = (host: string, notAfter = Date.now() + LEAF_VALIDITY_MS): LeafCert => ({
    host,
    certPem: `cert:${host}:${Math.random()}`,
    keyPem: "k",
    notAfter: new Date(notAfter),
  });

  test("concurrent gets for one host share one issuance; onIssued counts issuances", async () => {
    const issued: string[] = [];
    let calls = 0;
    const gate = Promise.withResolvers<void>();
    const cache = createCertCache({
      issue: async (h) => {
        calls++;
        await gate.promise;
        return fake(h);
      },
      onIssued: (h) => issued.push(h),
    });
    const p = [cache.get("a.test"), cache.get("a.test"), cache.get("b.test")];
    gate.resolve();
    const [a1, a2, b] = await Promise.all(p);
    expect(a1).toBe(a2);
    expect(b!.host).toBe("b.test");
    expect({ calls, issued }).toEqual({ calls: 2, issued: ["a.test", "b.test"] });
    expect(await cache.get("a.test")).toBe(a1);
    expect(cache.peek("a.test")).toBe(a1);
  });

  test("LRU: the least recently used host is evicted at the bound", async () => {
    const cache = createCertCache({ issue: (h) => fake(h), max: 2 });
    const a = await cache.get("a");
    await cache.get("b");
    expect(await cache.get("a")).toBe(a); // a is now most recent
    await cache.get("c"); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.peek("b")).toBeNull();
    expect(cache.peek("a")).toBe(a);
  });

  test("failures are not cached, sync throws included", async () => {
    let fail = true;
    const cache = createCertCache({
      issue: (h) => {
        if (fail) throw new Error("boom");
        return fake(h);
      },
    });
    await expect(cache.get("a")).rejects.toThrow("boom");
    fail = false;
    expect((await cache.get("a")).host).toBe("a");
  });

  test("a leaf within a day of expiry is re-issued", async () => {
    let now = 1_000_000_000_000;
    const cache = createCertCache({ issue: (h) => fake(h, now + 2 * 86_400_000), now: () => now });
    const first = await cache.get("a");
    expect(await cache.get("a")).toBe(first);
    now += 1.5 * 86_400_000;
    expect(cache.peek("a")).toBeNull();
    expect(await cache.get("a")).not.toBe(first);
  });
});
