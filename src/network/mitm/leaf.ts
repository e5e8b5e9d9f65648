/**
 * Per-host leaf certificates for the MITM (SPEC-network §6, RFC 5280).
 *
 * One EC P-256 key pair per process (generated asynchronously, off the event loop), shared by
 * every leaf: issuing a certificate is then only DER encoding plus one CA signature
 * (~0.5 ms with an RSA 2048 CA), and ECDSA keeps each TLS handshake cheap.
 */
import { generateKeyPair, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import type { Ca } from "./ca.ts";
import { buildTbs, bytesToBinary, keyIdentifier, octetString, randomSerial, signCertificate, spkiDer } from "./x509.ts";

/** Leaf validity (well under the 200-day public cap) and back-dating for client clock skew. */
export const LEAF_VALIDITY_MS = 30 * 24 * 60 * 60 * 1000;
export const LEAF_BACKDATE_MS = 60 * 60 * 1000;

/** RFC 5280 ub-common-name: longer host names go in the SAN only. */
const MAX_CN_LENGTH = 64;

/** The process-wide leaf key pair. */
export interface LeafKey {
  /** PKCS#8 PEM of the private key, as Bun's TLS options want it. */
  keyPem: string;
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** subjectKeyIdentifier of every leaf. */
  keyId: Uint8Array;
}

/** An issued leaf certificate. */
export interface LeafCert {
  host: string;
  /** Leaf certificate PEM. */
  certPem: string;
  /** Same as `LeafKey.keyPem`; kept here so a TLS upgrade needs one object. */
  keyPem: string;
  notAfter: Date;
}

/** Generate the process leaf key (EC P-256, native, asynchronous). */
export async function createLeafKey(): Promise<LeafKey> {
  const { privateKey } = await promisify(generateKeyPair)("ec", { namedCurve: "prime256v1" });
  return fromKeyObject(privateKey);
}

function fromKeyObject(privateKey: KeyObject): LeafKey {
  const spki = spkiDer(privateKey);
  return {
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    spki,
    keyId: keyIdentifier(spki),
  };
}

/**
 * Issue a leaf for `host` (a normalised name or an IP literal without brackets), signed by
 * the CA with SHA-256: SAN dNSName (iPAddress for literals), EKU serverAuth, KU
 * digitalSignature + keyEncipherment, AKI = the CA key identifier bytes, random serial,
 * valid from now − 1 h for 30 days.
 * @throws Error when `host` is empty or forge rejects it (e.g. an invalid IP).
 */
export function issueLeaf(ca: Ca, key: LeafKey, host: string, now = Date.now()): LeafCert {
  if (host.length === 0) throw new Error("cannot issue a certificate for an empty host");
  const ip = isIP(host) !== 0;
  const altName = ip ? { type: 7, ip: host } : { type: 2, value: host };
  const cnFits = host.length <= MAX_CN_LENGTH;
  const notAfter = new Date(now + LEAF_VALIDITY_MS - LEAF_BACKDATE_MS);
  const extensions: Array<Record<string, unknown>> = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    // RFC 5280 §4.2.1.6: SAN must be critical when the subject is empty.
    { name: "subjectAltName", altNames: [altName], critical: !cnFits },
    { name: "subjectKeyIdentifier", value: octetString(key.keyId) },
  ];
  // The key identifier goes in as bytes: forge would encode a hex string's characters.
  if (ca.keyId) extensions.push({ name: "authorityKeyIdentifier", keyIdentifier: bytesToBinary(ca.keyId) });
  const tbs = buildTbs({
    serial: randomSerial(),
    signingKey: ca.signingKey,
    issuerDer: ca.subjectDer,
    notBefore: new Date(now - LEAF_BACKDATE_MS),
    notAfter,
    subject: cnFits ? [{ shortName: "CN", value: host }] : [],
    spki: key.spki,
    extensions,
  });
  return { host, certPem: signCertificate(tbs, ca.signingKey), keyPem: key.keyPem, notAfter };
}
