/**
 * The one test PKI maker: throwaway certificates made with the openssl CLI (EC P-256), so the
 * trust side of every test is independent of the proxy's own X.509 code (src/network/mitm/).
 *
 * - `selfSignedCert(names)`: a certificate that is its own trust anchor (fake origins).
 * - `makeTestPki({leafNames, caName})`: a CA (give two CAs one client trusts together
 *   different `caName`s: a verifier looks issuers up by name), a leaf for `leafNames` (default
 *   `upstream.test`, `localhost`, `127.0.0.1`) signed by it, and `otherLeaf` (`other.test`
 *   only) signed by it too.
 *
 * Names that are IP literals become `IP:` SANs, the rest `DNS:` SANs. Only PEM strings are
 * returned: openssl's working folder is removed before returning, so nothing needs cleaning
 * (tests that need a CA file write `caPem` into their own temporary folder).
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { tempDir } from "./temp.ts";

/** A certificate and its private key, PEM. */
export interface TestCert {
  cert: string;
  key: string;
}

/** A CA and two leaves it signed. */
export interface TestPki {
  caPem: string;
  /** SANs `leafNames`. */
  leaf: TestCert;
  /** SAN `other.test` only (no IP SAN). */
  otherLeaf: TestCert;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
}

const sans = (names: string[]) => names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");

/** A self-signed server certificate for `names` (the first is also the CN). */
export function selfSignedCert(names: string[]): TestCert {
  const dir = tempDir("cp-cert-");
  try {
    openssl(
      ["req", "-x509", ...EC, "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", `/CN=${names[0]}`,
        "-addext", `subjectAltName=${sans(names)}`],
      dir,
    );
    return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A CA with two leaves (see {@link TestPki}). */
export function makeTestPki(opts: { leafNames?: string[]; caName?: string } = {}): TestPki {
  const dir = tempDir("cp-pki-");
  try {
    openssl(
      ["req", "-x509", ...EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", `/CN=${opts.caName ?? "codex-proxies test CA"}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
      dir,
    );
    const leaf = (name: string, names: string[]): TestCert => {
      openssl(["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${names[0]}`], dir);
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${sans(names)}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
      return { cert: readFileSync(join(dir, `${name}.pem`), "utf8"), key: readFileSync(join(dir, `${name}.key`), "utf8") };
    };
    return {
      caPem: readFileSync(join(dir, "ca.pem"), "utf8"),
      leaf: leaf("upstream", opts.leafNames ?? ["upstream.test", "localhost", "127.0.0.1"]),
      otherLeaf: leaf("other", ["other.test"]),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
