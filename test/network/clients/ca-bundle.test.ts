/**
 * The trust bundle and the ephemeral CA (SPEC-network §11): what the bundle holds and how it
 * is written, an ephemeral CA that never touches disk with its key and changes every start,
 * and `init` for both CA modes.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import tls from "node:tls";
import { systemRoots, trustBundlePath, writeTrustBundle } from "../../../src/network/clients/ca-bundle.ts";
import { createEphemeralCa } from "../../../src/network/mitm/ephemeral-ca.ts";
import { splitPemCertificates } from "../../../src/http1/tls-trust.ts";
import { runCli } from "../../../src/network/cli.ts";
import { startTestProxy } from "../../helpers/network.ts";
import { createTestPki } from "../../responses/tls-fixture.ts";
import { tempDir } from "./helpers.ts";

// Real processes on a shared 2-core machine: bounded, but not by bun's 5 s default.
setDefaultTimeout(60_000);

describe("trust bundle", () => {
  test("roots from SSL_CERT_FILE, then the CA last; 0644; rewritten atomically; never feeds itself back", async () => {
    using dir = tempDir();
    const roots = createTestPki(["localhost"], "root one").caPem + createTestPki(["localhost"], "root two").caPem;
    writeFileSync(join(dir.path, "roots.pem"), roots);
    const ca = createTestPki(["localhost"], "the mitm ca").caPem;
    const certPath = join(dir.path, "mitm/ca.pem");
    mkdirSync(join(dir.path, "mitm"));
    const env = { SSL_CERT_FILE: join(dir.path, "roots.pem") };
    const first = await writeTrustBundle(certPath, ca, env);
    expect(first).toEqual({ path: join(dir.path, "mitm/ca-bundle.pem"), roots: 2, source: { kind: "file", path: env.SSL_CERT_FILE } });
    const text = readFileSync(first.path, "utf8");
    expect(splitPemCertificates(text)).toEqual([...splitPemCertificates(roots), ...splitPemCertificates(ca)]);
    expect(statSync(first.path).mode & 0o777).toBe(0o644);
    // A shell that evaluated `env` has SSL_CERT_FILE = the bundle: the distribution bundle is used instead.
    const again = await writeTrustBundle(certPath, ca, { SSL_CERT_FILE: first.path });
    expect(again.source).not.toEqual({ kind: "file", path: first.path });
    expect(splitPemCertificates(readFileSync(first.path, "utf8")).filter((p) => p === splitPemCertificates(ca)[0])).toHaveLength(1);
    // No temp files left behind.
    expect(readdirSync(join(dir.path, "mitm"))).toEqual(["ca-bundle.pem"]);
  });

  test("without readable files: Bun's bundled roots", () => {
    const r = systemRoots({ SSL_CERT_FILE: "/nonexistent/x.pem" }, "/nonexistent/b.pem", ["/nonexistent/y.pem"]);
    expect(r.source).toEqual({ kind: "bun" });
    expect(r.pems.length).toBe(tls.rootCertificates.length);
  });

  test("path: ca-bundle.pem beside the certificate", () => {
    expect(trustBundlePath("/etc/codex/network_proxy/mitm/ca.pem")).toBe("/etc/codex/network_proxy/mitm/ca-bundle.pem");
  });
});

describe("ephemeral CA", () => {
  test("the certificate replaces the file, there is no key file, and every CA is new", async () => {
    using dir = tempDir();
    const certPath = join(dir.path, "mitm/ca.pem");
    const a = await createEphemeralCa(certPath);
    expect(readFileSync(certPath, "utf8")).toBe(a.certPem);
    expect(statSync(certPath).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir.path, "mitm")).mode & 0o777).toBe(0o700);
    expect(a.keyPath).toBe("");
    const b = await createEphemeralCa(certPath);
    expect(b.certPem).not.toBe(a.certPem);
    expect(readFileSync(certPath, "utf8")).toBe(b.certPem);
    expect(readdirSync(join(dir.path, "mitm"))).toEqual(["ca.pem"]);
  });

  test("a proxy with ca_mode = ephemeral writes certificate and bundle, no key; a restart has a different CA", async () => {
    const pems: string[] = [];
    let dirOf = "";
    for (let i = 0; i < 2; i++) {
      await using proxy = await startTestProxy({ config: { mode: "limited", mitm: { enabled: true, caMode: "ephemeral" } } });
      const cfg = proxy.context.config();
      dirOf = join(cfg.mitm.caCertPath, "..");
      expect(existsSync(cfg.mitm.caKeyPath)).toBe(false);
      expect(readdirSync(dirOf).sort()).toEqual(["ca-bundle.pem", "ca.pem"]);
      const cert = readFileSync(cfg.mitm.caCertPath, "utf8");
      expect(readFileSync(join(dirOf, "ca-bundle.pem"), "utf8").trimEnd().endsWith(cert.trimEnd())).toBe(true);
      pems.push(cert);
    }
    expect(pems[0]).not.toBe(pems[1]);
  });
});

describe("init", () => {
  async function cli(argv: string[], env: Record<string, string>) {
    let out = "";
    let err = "";
    const code = await runCli(argv, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env });
    return { code, out, err };
  }

  test("file mode also writes the trust bundle and prints the env line", async () => {
    using home = tempDir();
    const r = await cli(["init"], { CODEX_HOME: home.path, SSL_CERT_FILE: "/etc/ssl/certs/ca-certificates.crt" });
    expect(r.code).toBe(0);
    const bundle = join(home.path, "network_proxy/mitm/ca-bundle.pem");
    expect(lstatSync(bundle).isFile()).toBe(true);
    expect(r.out).toContain(`Trust bundle (system roots + this CA): ${bundle}\n`);
    expect(r.out).toContain(`  eval "$(codex-network-proxy env)"\n`);
  });

  test("ephemeral mode: nothing to create", async () => {
    using home = tempDir();
    writeFileSync(join(home.path, "config.toml"), '[network_proxy.mitm]\nca_mode = "ephemeral"\n');
    const r = await cli(["init", "--config", join(home.path, "config.toml")], { CODEX_HOME: home.path });
    expect(r).toEqual({
      code: 0,
      err: "",
      out:
        `network_proxy.mitm.ca_mode is "ephemeral": nothing to create; every run makes a fresh CA and writes its certificate to ${join(home.path, "network_proxy/mitm/ca.pem")} and the trust bundle beside it.\n` +
        `Point clients at a running proxy with:  eval "$(codex-network-proxy env --config '${join(home.path, "config.toml")}')"\n`,
    });
    expect(existsSync(join(home.path, "network_proxy"))).toBe(false);
  });
});

