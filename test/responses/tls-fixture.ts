/**
 * A throwaway test CA and a leaf for 127.0.0.1 / localhost. Keys come from node:crypto
 * (native, fast); node-forge builds and signs the X.509 certificates.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function rsa() {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    priv: forge.pki.privateKeyFromPem(privateKey.export({ type: "pkcs1", format: "pem" }).toString()),
    pub: forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }).toString()),
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

function cert(subject: string, pub: forge.pki.PublicKey, issuer: forge.pki.Certificate | null, signKey: forge.pki.PrivateKey, isCa: boolean, dnsNames: string[] = ["localhost"]) {
  const c = forge.pki.createCertificate();
  c.publicKey = pub;
  c.serialNumber = "01" + randomBytes(8).toString("hex");
  c.validity.notBefore = new Date(Date.now() - 60_000);
  c.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  c.setSubject([{ name: "commonName", value: subject }]);
  c.setIssuer(issuer ? issuer.subject.attributes : [{ name: "commonName", value: subject }]);
  c.setExtensions(
    isCa
      ? [
          { name: "basicConstraints", cA: true, critical: true },
          { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
        ]
      : [
          { name: "basicConstraints", cA: false },
          { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
          { name: "extKeyUsage", serverAuth: true },
          { name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }, ...dnsNames.map((value) => ({ type: 2, value }))] },
        ],
  );
  c.sign(signKey as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return c;
}

/**
 * Create a CA and a server certificate for 127.0.0.1 and `dnsNames` (default localhost) signed
 * by it. Give two CAs that one client trusts together different `caName`s: a verifier looks
 * issuers up by name.
 */
export function createTestPki(dnsNames: string[] = ["localhost"], caName = "codex-proxies test CA"): TestPki {
  const ca = rsa();
  const caCert = cert(caName, ca.pub, null, ca.priv, true);
  const leaf = rsa();
  const leafCert = cert(dnsNames[0] ?? "localhost", leaf.pub, caCert, ca.priv, false, dnsNames);
  return { caPem: forge.pki.certificateToPem(caCert), certPem: forge.pki.certificateToPem(leafCert), keyPem: leaf.pem };
}
