/**
 * The trust bundle `ca-bundle.pem` (SPEC-network §11): the system roots followed by the MITM
 * CA, written beside the CA certificate so one file serves every client variable
 * (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `GIT_SSL_CAINFO`, …). Tools that take one CA file
 * replace their roots with it, so the MITM CA alone would break every origin the proxy does
 * not intercept (full mode, hosts outside MITM).
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { nodeTls, splitPemCertificates } from "../../http1/tls-trust.ts";
import { writeFileAtomic } from "./atomic-write.ts";

/** Distribution bundles, first readable wins (Debian/Ubuntu/Alpine, Fedora/RHEL, macOS/BSD, SUSE). */
export const DISTRO_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt",
  "/etc/pki/tls/certs/ca-bundle.crt",
  "/etc/ssl/cert.pem",
  "/etc/ssl/ca-bundle.pem",
];

/** `ca-bundle.pem` in the folder of the CA certificate. */
export function trustBundlePath(caCertPath: string): string {
  return join(dirname(caCertPath), "ca-bundle.pem");
}

/** Where the roots of a bundle came from (for logs and `init`). */
export type RootsSource = { kind: "file"; path: string } | { kind: "bun" };

/**
 * The system roots as PEM blocks: `SSL_CERT_FILE` of `env` when set and readable (unless it is
 * the bundle itself: a shell that ran `eval "$(codex-network-proxy env)"` must not feed old
 * MITM CAs back in), else the first readable distribution bundle, else Bun's bundled roots.
 */
export function systemRoots(
  env: Record<string, string | undefined>,
  bundlePath: string,
  candidates: readonly string[] = DISTRO_BUNDLES,
): { pems: string[]; source: RootsSource } {
  const files = [env.SSL_CERT_FILE, ...candidates].filter((p): p is string => !!p && resolve(p) !== resolve(bundlePath));
  for (const path of files) {
    try {
      const pems = splitPemCertificates(readFileSync(path, "latin1"));
      if (pems.length > 0) return { pems, source: { kind: "file", path } };
    } catch {
      // Unreadable or missing: try the next one.
    }
  }
  return { pems: [...nodeTls().rootCertificates], source: { kind: "bun" } };
}

/**
 * Write `ca-bundle.pem` beside `caCertPath`: the system roots (without any copy of the MITM
 * CA) then `caPem`; atomic (temp file + rename), mode 0644. Returns its path and the roots' source.
 * @throws the fs error when the folder is not writable
 */
export async function writeTrustBundle(
  caCertPath: string,
  caPem: string,
  env: Record<string, string | undefined> = process.env,
): Promise<{ path: string; roots: number; source: RootsSource }> {
  const path = trustBundlePath(caCertPath);
  const ca = splitPemCertificates(caPem);
  const own = new Set(ca.map((p) => p.replace(/\s+/g, "")));
  const { pems, source } = systemRoots(env, path);
  const roots = pems.filter((p) => !own.has(p.replace(/\s+/g, "")));
  await writeFileAtomic(path, [...roots, ...ca].join("\n") + "\n", 0o644);
  return { path, roots: roots.length, source };
}
