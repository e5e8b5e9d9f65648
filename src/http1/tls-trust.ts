/**
 * The CA list the client trusts for https upstreams (SPEC §1.5): Bun's bundled Mozilla roots,
 * the operating system's store, and extra PEM certificates (NODE_EXTRA_CA_CERTS,
 * SSL_CERT_FILE, or ClientOptions.extraCa).
 *
 * Bun's `tls.ca` option REPLACES the default roots when given, so "add a CA" means passing
 * the defaults plus the extra ones. The list is built once per client and the same array is
 * reused for every connection (Bun caches the TLS context for it; rebuilding per connect
 * would re-parse ~300 certificates).
 */
import type * as Tls from "node:tls";
import { readFileSync } from "node:fs";

/**
 * node:tls, loaded on first use (an https upstream): importing it at start costs Bun's stream
 * machinery, ~15 ms of start-to-listening measured by `npm run bench`, for proxies that have
 * not made (and may never make) a TLS connection.
 */
export function nodeTls(): typeof Tls {
  return require("node:tls") as typeof Tls;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Split PEM text into its certificate blocks (anything else in the text is ignored). */
export function splitPemCertificates(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

/**
 * Read the extra CA files named by `NODE_EXTRA_CA_CERTS` and `SSL_CERT_FILE` in `env`.
 * A missing or unreadable file is skipped (as Node does, which only warns) and reported in
 * `problems` (path and OS error, no contents) for the caller to log.
 */
export function loadExtraCaFromEnv(env: Record<string, string | undefined>): { pems: string[]; problems: string[] } {
  const pems: string[] = [];
  const problems: string[] = [];
  for (const name of ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"]) {
    const path = env[name];
    if (!path) continue;
    try {
      const found = splitPemCertificates(readFileSync(path, "latin1"));
      if (found.length === 0) problems.push(`${name}=${path}: no PEM certificate found`);
      pems.push(...found);
    } catch (e) {
      problems.push(`${name}=${path}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  }
  return { pems, problems };
}

/** The OS store when this Bun exposes it (`tls.getCACertificates("system")`), else nothing. */
function systemRoots(): readonly string[] {
  const get = (nodeTls() as unknown as { getCACertificates?: (t: string) => string[] }).getCACertificates;
  if (typeof get !== "function") return [];
  try {
    return get("system");
  } catch {
    // No readable system store on this OS: the bundled roots still apply.
    return [];
  }
}

/**
 * The full trusted CA list: bundled roots + system roots + `extra`, de-duplicated.
 * @param extra PEM texts (each may hold several certificates)
 */
export function buildTrustedCa(extra: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const add = (pem: string) => {
    const key = pem.replace(/\s+/g, "");
    if (seen.has(key)) return;
    seen.add(key);
    out.push(pem);
  };
  for (const p of nodeTls().rootCertificates) add(p);
  for (const p of systemRoots()) add(p);
  for (const text of extra) for (const p of splitPemCertificates(text)) add(p);
  return out;
}
