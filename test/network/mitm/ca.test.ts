/**
 * MITM CA files (SPEC-network §6): creation (modes, create-new, contents checked by openssl),
 * loading, and every refusal.
 */
import { describe, expect, test, afterAll } from "bun:test";
import { chmodSync, lstatSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CA_COMMON_NAME, loadOrCreateCa, MitmCaError } from "../../../src/network/mitm/ca.ts";
import { tempDir } from "../../helpers/mitm.ts";
import { runChild } from "../../helpers/child.ts";
import { removeTempDirs } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const mode = (p: string) => lstatSync(p).mode & 0o777;

async function expectCaError(p: Promise<unknown>, message: string) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MitmCaError);
  expect((err as Error).message).toBe(message);
}

describe("loadOrCreateCa", () => {
  test("creates folders 0700, key 0600 and cert 0644 even under umask 077; openssl sees a proper CA", async () => {
    const dir = tempDir();
    const certPath = join(dir, "a/b/ca.pem");
    const keyPath = join(dir, "k/ca.key");
    const old = process.umask(0o077);
    let ca;
    try {
      ca = await loadOrCreateCa(certPath, keyPath, { create: true });
    } finally {
      process.umask(old);
    }
    expect(ca.created).toBe(true);
    expect({ key: mode(keyPath), cert: mode(certPath), certDir: mode(join(dir, "a/b")), keyDir: mode(join(dir, "k")) }).toEqual({
      key: 0o600,
      cert: 0o644,
      certDir: 0o700,
      keyDir: 0o700,
    });
    const text = await runChild(["openssl", "x509", "-in", certPath, "-noout", "-text"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Subject: CN = ${CA_COMMON_NAME}`);
    expect(text.stdout).toContain(`Issuer: CN = ${CA_COMMON_NAME}`);
    expect(text.stdout).toContain("Signature Algorithm: sha256WithRSAEncryption");
    expect(text.stdout).toContain("Public-Key: (2048 bit)");
    expect(text.stdout).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE/);
    expect(text.stdout).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign/);
    const ski = /Subject Key Identifier: ?\n\s+([0-9A-F:]+)/.exec(text.stdout)?.[1];
    expect(ski?.replaceAll(":", "").toLowerCase()).toBe(Buffer.from(ca.keyId!).toString("hex"));
    // Not-before back-dated about a day; valid about ten years.
    const dates = await runChild(["openssl", "x509", "-in", certPath, "-noout", "-startdate", "-enddate"]);
    const [nb, na] = dates.stdout.trim().split("\n").map((l) => Date.parse(l.split("=")[1]!));
    const day = 86_400_000;
    expect(Math.round((Date.now() - nb!) / day)).toBe(1);
    expect(Math.round((na! - nb!) / day / 365)).toBe(10);
    // Self-signature verifies; the key file is the certificate's key.
    expect((await runChild(["openssl", "verify", "-CAfile", certPath, certPath])).stdout.trim()).toBe(`${certPath}: OK`);
    const pub1 = await runChild(["openssl", "pkey", "-in", keyPath, "-pubout"]);
    const pub2 = await runChild(["openssl", "x509", "-in", certPath, "-noout", "-pubkey"]);
    expect(pub1.stdout).toBe(pub2.stdout);
  });

  test("an existing CA is loaded, never overwritten", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    const keyPath = join(dir, "ca.key");
    const first = await loadOrCreateCa(certPath, keyPath, { create: true });
    const certBytes = readFileSync(certPath, "utf8");
    const keyBytes = readFileSync(keyPath, "utf8");
    const second = await loadOrCreateCa(certPath, keyPath, { create: true });
    expect(second.created).toBe(false);
    expect(readFileSync(certPath, "utf8")).toBe(certBytes);
    expect(readFileSync(keyPath, "utf8")).toBe(keyBytes);
    expect(second.certPem).toBe(first.certPem);
    expect(second.subjectDer).toBe(first.subjectDer);
    expect(Buffer.from(second.keyId!).equals(Buffer.from(first.keyId!))).toBe(true);
  });

  test("exactly one file present is an error, either way round", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    const keyPath = join(dir, "ca.key");
    writeFileSync(certPath, "x");
    await expectCaError(loadOrCreateCa(certPath, keyPath, { create: true }), "both ca_cert_path and ca_key_path must exist");
    // A key alone, left by a creation that crashed an hour ago: reported at once.
    const dir2 = tempDir();
    writeFileSync(join(dir2, "ca.key"), "x", { mode: 0o600 });
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir2, "ca.key"), hourAgo, hourAgo);
    const t0 = performance.now();
    await expectCaError(
      loadOrCreateCa(join(dir2, "ca.pem"), join(dir2, "ca.key"), { create: true }),
      "both ca_cert_path and ca_key_path must exist",
    );
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  test("a fresh key alone may be a creation in progress: its certificate is waited for, bounded", async () => {
    const dir = tempDir();
    const made = await loadOrCreateCa(join(dir, "made.pem"), join(dir, "made.key"), { create: true });
    // The key appears first (as createCa links it); the certificate follows once we are waiting.
    writeFileSync(join(dir, "ca.key"), readFileSync(join(dir, "made.key")), { mode: 0o600 });
    let waits = 0;
    const ca = await loadOrCreateCa(join(dir, "ca.pem"), join(dir, "ca.key"), {
      create: true,
      creationGraceMs: 10_000,
      onWait: () => {
        if (++waits === 2) writeFileSync(join(dir, "ca.pem"), made.certPem);
      },
    });
    expect([ca.created, ca.certPem, waits]).toEqual([false, made.certPem, 2]);
    // Never followed: the error comes once the grace has passed.
    writeFileSync(join(dir, "lone.key"), "x", { mode: 0o600 });
    await expectCaError(
      loadOrCreateCa(join(dir, "lone.pem"), join(dir, "lone.key"), { create: true, creationGraceMs: 100 }),
      "both ca_cert_path and ca_key_path must exist",
    );
  });

  test("racing first starts (8 in this process, 4 processes) all end with the one CA that won", async () => {
    const dir = tempDir();
    const certPath = join(dir, "mitm", "ca.pem");
    const keyPath = join(dir, "mitm", "ca.key");
    const script = `const { loadOrCreateCa } = await import(${JSON.stringify(join(import.meta.dir, "../../../src/network/mitm/ca.ts"))});
const ca = await loadOrCreateCa(process.argv[1], process.argv[2], { create: true });
process.stdout.write(ca.certPem);`;
    const children = Array.from({ length: 4 }, () => runChild([process.execPath, "-e", script, certPath, keyPath]));
    const here = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateCa(certPath, keyPath, { create: true })));
    const there = await Promise.all(children);
    expect(there.map((r) => [r.code, r.stderr])).toEqual(Array(4).fill([0, ""]));
    const pem = readFileSync(certPath, "utf8");
    expect(new Set([...here.map((c) => c.certPem), ...there.map((r) => r.stdout)])).toEqual(new Set([pem]));
    expect(here.filter((c) => c.created).length).toBeLessThanOrEqual(1);
    expect(readdirSync(join(dir, "mitm")).sort()).toEqual(["ca.key", "ca.pem"]);
  });

  test("neither file and create: false is an error naming the path", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    await expectCaError(
      loadOrCreateCa(certPath, join(dir, "ca.key"), { create: false }),
      `MITM CA not found at ${certPath}; run \`codex-network-proxy init\` to create it`,
    );
  });

  test("a group/world-accessible key is refused with the file named", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    const keyPath = join(dir, "ca.key");
    await loadOrCreateCa(certPath, keyPath, { create: true });
    chmodSync(keyPath, 0o644);
    await expectCaError(
      loadOrCreateCa(certPath, keyPath, { create: true }),
      `refusing MITM CA key ${keyPath}: mode 0644 allows group/other access (run chmod 600 on it)`,
    );
    chmodSync(keyPath, 0o640);
    await expectCaError(
      loadOrCreateCa(certPath, keyPath, { create: false }),
      `refusing MITM CA key ${keyPath}: mode 0640 allows group/other access (run chmod 600 on it)`,
    );
  });

  test("a key that is a symlink is refused (even to a 0600 file)", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    const realKey = join(dir, "real.key");
    await loadOrCreateCa(certPath, realKey, { create: true });
    const link = join(dir, "link.key");
    symlinkSync(realKey, link);
    await expectCaError(loadOrCreateCa(certPath, link, { create: true }), `refusing MITM CA key ${link}: it is a symlink`);
  });

  test("a FIFO at the key or certificate path is refused at once, never waited on (issue 8 row 10)", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    const keyPath = join(dir, "ca.key");
    await loadOrCreateCa(certPath, keyPath, { create: true });
    const fifo = join(dir, "fifo");
    expect(Bun.spawnSync(["mkfifo", "-m", "600", fifo]).exitCode).toBe(0);
    // Before the fix the open() blocked until a writer appeared: this test hung.
    await expectCaError(loadOrCreateCa(certPath, fifo, { create: false }), `refusing MITM CA key ${fifo}: not a regular file`);
    await expectCaError(
      loadOrCreateCa(fifo, keyPath, { create: false }),
      `cannot read MITM CA certificate ${fifo}: not a regular file`,
    );
  });

  test("a key that does not match the certificate is refused", async () => {
    const a = tempDir();
    const b = tempDir();
    await loadOrCreateCa(join(a, "ca.pem"), join(a, "ca.key"), { create: true });
    await loadOrCreateCa(join(b, "ca.pem"), join(b, "ca.key"), { create: true });
    await expectCaError(
      loadOrCreateCa(join(a, "ca.pem"), join(b, "ca.key"), { create: true }),
      `MITM CA key ${join(b, "ca.key")} does not match certificate ${join(a, "ca.pem")}`,
    );
  });

  test("garbage files are reported, not thrown raw", async () => {
    const dir = tempDir();
    const certPath = join(dir, "ca.pem");
    const keyPath = join(dir, "ca.key");
    writeFileSync(certPath, "not a cert");
    writeFileSync(keyPath, "not a key", { mode: 0o600 });
    const err = await loadOrCreateCa(certPath, keyPath, { create: true }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(MitmCaError);
    expect((err as Error).message).toStartWith(`cannot read MITM CA key ${keyPath}: `);
  });
});
