/**
 * Small X.509 helpers shared by the MITM CA and leaf code (RFC 5280).
 *
 * node-forge encodes the ASN.1 (it cannot handle EC keys, so SubjectPublicKeyInfo comes from
 * node:crypto as DER), node:crypto signs (native, ~100× faster than forge's JS RSA). forge's
 * ASN.1 values are "binary strings" (one char per byte); conversions live here only.
 */
import { createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import forge from "node-forge";

const asn1 = forge.asn1;

// @types/node-forge is narrower than forge 1.x: fromDer takes an options object (we need
// decodeBitStrings: false so BIT STRINGs stay opaque and re-encode byte-exact), and
// certificateExtensionsToAsn1 is exported but undeclared.
const fromDer = asn1.fromDer as unknown as (der: string, opts: { decodeBitStrings: boolean }) => forge.asn1.Asn1;
const pkiExtra = forge.pki as unknown as { certificateExtensionsToAsn1(exts: unknown[]): forge.asn1.Asn1 };
const OPAQUE_BITS = { decodeBitStrings: false };

/** OIDs of the signature algorithms we produce (RFC 4055 §5, RFC 5758 §3.2). */
const SIG_OID = {
  rsa: "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
  ec: "1.2.840.10045.4.3.2", // ecdsa-with-SHA256
} as const;

/** Bytes → forge binary string. */
export function bytesToBinary(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
}

/** forge binary string → bytes. */
export function binaryToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

/**
 * The AlgorithmIdentifier for SHA-256 signatures made with `key` (RSA or EC).
 * @throws Error for other key types (the MITM CA must be RSA or EC).
 */
export function signatureAlgorithm(key: KeyObject): forge.asn1.Asn1 {
  const type = key.asymmetricKeyType;
  if (type === "rsa") {
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(SIG_OID.rsa).getBytes()),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ""),
    ]);
  }
  if (type === "ec") {
    // RFC 5758 §3.2: the parameters field MUST be absent for ECDSA.
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(SIG_OID.ec).getBytes()),
    ]);
  }
  throw new Error(`unsupported CA key type: ${type} (expected RSA or EC)`);
}

/**
 * Sign a TBSCertificate (whose `signature` field must equal `signatureAlgorithm(key)`) with
 * SHA-256 and return the certificate as PEM (RFC 5280 §4.1.1).
 */
export function signCertificate(tbs: forge.asn1.Asn1, key: KeyObject): string {
  const tbsDer = asn1.toDer(tbs).getBytes();
  const sig = sign("sha256", Buffer.from(tbsDer, "latin1"), key);
  const cert = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    signatureAlgorithm(key),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, "\x00" + sig.toString("latin1")),
  ]);
  const der = Buffer.from(asn1.toDer(cert).getBytes(), "latin1");
  return derToPem(der, "CERTIFICATE");
}

/** Wrap DER in PEM armour with 64-column base64 lines (RFC 7468). */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString("base64");
  let body = "";
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** An OCTET STRING ASN.1 value holding `b` (e.g. a subjectKeyIdentifier extension value). */
export function octetString(b: Uint8Array): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytesToBinary(b));
}

/** A positive, non-zero 128-bit serial number as a forge binary string (RFC 5280 §4.1.2.2: ≤ 20 octets). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive (no sign bit) and no leading zero octet
  return b.toString("latin1");
}

/** A UTCTime (dates 1950–2049) or GeneralizedTime ASN.1 value (RFC 5280 §4.1.2.5). */
export function timeAsn1(d: Date): forge.asn1.Asn1 {
  const y = d.getUTCFullYear();
  if (y >= 1950 && y < 2050) {
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d));
  }
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

/** What the leaf issuer needs from a CA certificate. */
export interface CaCertInfo {
  /** The CA's subject Name, DER as a forge binary string (copied verbatim into leaf issuers). */
  subjectDer: string;
  /** subjectKeyIdentifier bytes (RFC 5280 §4.2.1.2), or null when the CA has none. */
  keyId: Uint8Array | null;
  /** SubjectPublicKeyInfo DER (compared with the key file). */
  spkiDer: Uint8Array;
  notAfter: Date;
}

/**
 * Read the parts of a PEM certificate the issuer needs, for any key type (forge's own
 * parser only understands RSA keys, so this walks the ASN.1 directly).
 * @throws Error when the PEM or the certificate structure is malformed.
 */
export function readCaCert(pem: string): CaCertInfo {
  const msg = forge.pem.decode(pem).find((m) => m.type === "CERTIFICATE");
  if (!msg) throw new Error("no CERTIFICATE block found");
  const cert = fromDer(msg.body, OPAQUE_BITS);
  const tbs = (cert.value as forge.asn1.Asn1[])[0]!;
  const f = tbs.value as forge.asn1.Asn1[];
  // [0] version is EXPLICIT and optional (absent = v1).
  const off = f[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC && f[0]!.type === 0 ? 1 : 0;
  const validity = f[off + 3]!.value as forge.asn1.Asn1[];
  const subject = f[off + 4]!;
  const spki = f[off + 5]!;
  let keyId: Uint8Array | null = null;
  for (const field of f.slice(off + 6)) {
    if (field.tagClass !== asn1.Class.CONTEXT_SPECIFIC || field.type !== 3) continue;
    const exts = (field.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
    for (const ext of exts) {
      const parts = ext.value as forge.asn1.Asn1[];
      if (asn1.derToOid(parts[0]!.value as string) !== "2.5.29.14") continue;
      const octets = parts[parts.length - 1]!.value as string; // extnValue OCTET STRING
      const inner = fromDer(octets, OPAQUE_BITS); // SubjectKeyIdentifier ::= OCTET STRING
      keyId = binaryToBytes(inner.value as string);
    }
  }
  const notAfterNode = validity[1]!;
  const notAfter =
    notAfterNode.type === asn1.Type.UTCTIME
      ? asn1.utcTimeToDate(notAfterNode.value as string)
      : asn1.generalizedTimeToDate(notAfterNode.value as string);
  return {
    subjectDer: asn1.toDer(subject).getBytes(),
    keyId,
    spkiDer: binaryToBytes(asn1.toDer(spki).getBytes()),
    notAfter,
  };
}

/** SubjectPublicKeyInfo DER of a key (public or private). */
export function spkiDer(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: "spki", format: "der" }));
}

/**
 * The RFC 5280 §4.2.1.2 method (1) key identifier: SHA-1 of the subjectPublicKey BIT STRING
 * contents (without the unused-bits octet).
 */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const node = fromDer(bytesToBinary(spki), OPAQUE_BITS);
  const bits = ((node.value as forge.asn1.Asn1[])[1]!.value as string).slice(1);
  const md = forge.md.sha1.create();
  md.update(bits);
  return binaryToBytes(md.digest().getBytes());
}

/** Inputs of `buildTbs` (RFC 5280 §4.1.2). */
export interface TbsFields {
  /** forge binary string (see `randomSerial`). */
  serial: string;
  /** The issuer's signing key: picks the signature AlgorithmIdentifier. */
  signingKey: KeyObject;
  /** Issuer Name DER (forge binary string); null = self-issued (issuer = subject). */
  issuerDer: string | null;
  notBefore: Date;
  notAfter: Date;
  /** Subject attributes in forge form, e.g. `[{ shortName: "CN", value: "x" }]`; may be empty. */
  subject: forge.pki.CertificateField[];
  spki: Uint8Array;
  /** Extensions in forge's `setExtensions` form; values not given are filled by forge. */
  extensions: Array<Record<string, unknown>>;
}

/** Build a v3 TBSCertificate. @throws Error from forge on a malformed extension. */
export function buildTbs(t: TbsFields): forge.asn1.Asn1 {
  // A throwaway forge certificate fills in attribute and extension encodings for us.
  const scratch = forge.pki.createCertificate();
  scratch.setSubject(t.subject);
  scratch.setExtensions(t.extensions);
  const subject = forge.pki.distinguishedNameToAsn1(scratch.subject);
  const issuer = t.issuerDer === null ? subject : fromDer(t.issuerDer, OPAQUE_BITS);
  const C = asn1.Class.UNIVERSAL;
  return asn1.create(C, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(C, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes()), // v3
    ]),
    asn1.create(C, asn1.Type.INTEGER, false, t.serial),
    signatureAlgorithm(t.signingKey),
    issuer,
    asn1.create(C, asn1.Type.SEQUENCE, true, [timeAsn1(t.notBefore), timeAsn1(t.notAfter)]),
    subject,
    fromDer(bytesToBinary(t.spki), { decodeBitStrings: false }),
    pkiExtra.certificateExtensionsToAsn1(scratch.extensions),
  ]);
}
