/**
 * The MITM certificate authority (SPEC-network §6): load it, or create it once.
 *
 * Files: the key is PKCS#8 PEM, mode 0600, never a symlink, never group/world accessible;
 * the certificate is PEM, mode 0644. Each is written complete under a temporary name, then
 * linked into place (`link(2)` fails rather than overwrite), the key first: an existing CA is
 * never overwritten, and a reader never sees a half-written file. Two processes racing on
 * first start both end up with the one CA that won (the loser waits, bounded, for the
 * winner's certificate to follow its key).
 */
import { createPrivateKey, generateKeyPair, timingSafeEqual, type KeyObject } from "node:crypto";
import { constants } from "node:fs";
import { link, lstat, mkdir, open, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import {
  buildTbs,
  bytesToBinary,
  keyIdentifier,
  octetString,
  randomSerial,
  readCaCert,
  signCertificate,
  spkiDer,
} from "./x509.ts";

/** Common name of a CA we create. */
export const CA_COMMON_NAME = "codex-network-proxy MITM CA";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A key file without its certificate, modified less than this long ago (ms), may be another
 * process's creation in progress: wait this long at most for the certificate to follow.
 */
const CREATION_GRACE_MS = 2_000;

/** A CA problem a person must fix (paths named, never key material). */
export class MitmCaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MitmCaError";
  }
}

/** A loaded CA: what leaf issuance needs. The private key stays inside a KeyObject. */
export interface Ca {
  certPath: string;
  keyPath: string;
  /** The CA certificate, PEM (what users add to their trust store). */
  certPem: string;
  /** The CA subject Name, DER as a forge binary string: the issuer of every leaf. */
  subjectDer: string;
  /** The CA's subjectKeyIdentifier bytes (leaf AKI), or null when the certificate has none. */
  keyId: Uint8Array | null;
  /** The CA private key (RSA or EC). */
  signingKey: KeyObject;
  notAfter: Date;
  /** True when this call created the files. */
  created: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new MitmCaError(`cannot access ${path}: ${(e as Error).message}`);
  }
}

/**
 * Load the CA at `certPath`/`keyPath`, or create it when neither exists and `opts.create`.
 * @throws MitmCaError when exactly one file exists (`both ca_cert_path and ca_key_path must
 *   exist`), when neither exists and `create` is false, when the key file is a symlink or is
 *   group/world accessible, when a file does not parse, or when key and certificate differ.
 */
export async function loadOrCreateCa(
  certPath: string,
  keyPath: string,
  opts: {
    create: boolean;
    /** Tests only: see CREATION_GRACE_MS. */
    creationGraceMs?: number;
    /** Tests only: called each time a fresh lone key makes the call wait for its certificate. */
    onWait?: () => void;
  },
): Promise<Ca> {
  const graceMs = opts.creationGraceMs ?? CREATION_GRACE_MS;
  const [haveCert, haveKey] = await settledPresence(certPath, keyPath, graceMs, opts.onWait);
  if (haveCert !== haveKey) throw new MitmCaError("both ca_cert_path and ca_key_path must exist");
  if (haveCert) return loadCa(certPath, keyPath);
  if (!opts.create) {
    throw new MitmCaError(`MITM CA not found at ${certPath}; run \`codex-network-proxy init\` to create it`);
  }
  try {
    return await createCa(certPath, keyPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      // Another process created it between our check and our link: use theirs once complete.
      const [c, k] = await settledPresence(certPath, keyPath, graceMs, opts.onWait);
      if (c !== k) throw new MitmCaError("both ca_cert_path and ca_key_path must exist");
      return loadCa(certPath, keyPath);
    }
    if (e instanceof MitmCaError) throw e;
    throw new MitmCaError(`cannot create MITM CA at ${certPath}: ${(e as Error).message}`);
  }
}

/**
 * Whether the certificate and the key exist, `[cert, key]`. A key alone that is younger than
 * `graceMs` is another process's creation in progress (the key is linked first): poll every
 * 20 ms until its certificate appears or `graceMs` after the key's mtime has passed.
 */
async function settledPresence(certPath: string, keyPath: string, graceMs: number, onWait?: () => void): Promise<[boolean, boolean]> {
  for (;;) {
    const [haveCert, haveKey] = await Promise.all([exists(certPath), exists(keyPath)]);
    if (haveCert || !haveKey) return [haveCert, haveKey];
    const born = await lstat(keyPath).then((st) => st.mtimeMs, () => 0);
    if (Date.now() - born >= graceMs) return [haveCert, haveKey];
    onWait?.();
    await Bun.sleep(20);
  }
}

/** Load an existing CA; see `loadOrCreateCa` for the checks. */
async function loadCa(certPath: string, keyPath: string): Promise<Ca> {
  // O_NOFOLLOW + fstat on the opened file: the checks apply to the bytes we read, with no
  // window for swapping the path between a check and the read. O_NONBLOCK: opening a FIFO
  // for reading otherwise blocks until a writer appears (start-up would hang forever); with
  // it the open returns and fstat refuses the FIFO. It changes nothing for a regular file.
  let keyBytes: Buffer;
  const fh = await open(keyPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ELOOP") throw new MitmCaError(`refusing MITM CA key ${keyPath}: it is a symlink`);
    throw new MitmCaError(`cannot read MITM CA key ${keyPath}: ${e.message}`);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new MitmCaError(`refusing MITM CA key ${keyPath}: not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      throw new MitmCaError(
        `refusing MITM CA key ${keyPath}: mode ${mode} allows group/other access (run chmod 600 on it)`,
      );
    }
    keyBytes = await fh.readFile();
  } finally {
    await fh.close();
  }
  let signingKey: KeyObject;
  try {
    signingKey = createPrivateKey(keyBytes);
  } catch (e) {
    // The parser's message never contains key bytes; keep it for diagnosis.
    throw new MitmCaError(`cannot read MITM CA key ${keyPath}: ${(e as Error).message}`);
  } finally {
    keyBytes.fill(0);
  }
  const certPem = await readRegularFile(certPath).catch((e: Error) => {
    throw new MitmCaError(`cannot read MITM CA certificate ${certPath}: ${e.message}`);
  });
  let info: ReturnType<typeof readCaCert>;
  try {
    info = readCaCert(certPem);
  } catch (e) {
    throw new MitmCaError(`cannot parse MITM CA certificate ${certPath}: ${(e as Error).message}`);
  }
  const keySpki = spkiDer(signingKey);
  if (keySpki.byteLength !== info.spkiDer.byteLength || !timingSafeEqual(keySpki, info.spkiDer)) {
    throw new MitmCaError(`MITM CA key ${keyPath} does not match certificate ${certPath}`);
  }
  const t = signingKey.asymmetricKeyType;
  if (t !== "rsa" && t !== "ec") throw new MitmCaError(`MITM CA key ${keyPath}: unsupported key type ${t}`);
  return {
    certPath,
    keyPath,
    certPem,
    subjectDer: info.subjectDer,
    keyId: info.keyId,
    signingKey,
    notAfter: info.notAfter,
    created: false,
  };
}

/** Create folders (0700), an RSA 2048 key (native keygen) and a 10-year self-signed CA. */
async function createCa(certPath: string, keyPath: string): Promise<Ca> {
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  await mkdir(dirname(certPath), { recursive: true, mode: 0o700 });
  const { privateKey } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
  const { certPem, keyId } = selfSignedCa(privateKey, 3650);
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  // Key first: a crash in between leaves "exactly one file", which the next start reports
  // instead of silently minting a second CA users would have to trust again; a racing process
  // that sees the key alone waits for the certificate (settledPresence).
  await writeNew(keyPath, keyPem, 0o600);
  await writeNew(certPath, certPem, 0o644);
  return newCa({ certPath, keyPath, certPem, keyId, signingKey: privateKey });
}

/**
 * The handle of a CA this process has just minted (`created: true`), its subject and expiry
 * read back from `certPem`. Shared by the file CA (`keyPath` its key file) and the ephemeral
 * CA (`keyPath` empty: the key never touches disk).
 */
export function newCa(fields: Omit<Ca, "subjectDer" | "notAfter" | "created">): Ca {
  const info = readCaCert(fields.certPem);
  return { ...fields, subjectDer: info.subjectDer, notAfter: info.notAfter, created: true };
}

/** Read a regular file as UTF-8 (symlinks followed: the certificate is public); a FIFO or device is refused, never waited on. */
async function readRegularFile(path: string): Promise<string> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw new Error("not a regular file");
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}

/**
 * A self-signed CA certificate (PEM) for `privateKey`: CN {@link CA_COMMON_NAME}, CA:true,
 * keyCertSign + cRLSign, SKI/AKI = the key identifier, not-before back-dated a day, valid
 * `days` days (SPEC-network §6). Returns the certificate and its key identifier bytes.
 */
export function selfSignedCa(privateKey: KeyObject, days: number): { certPem: string; keyId: Uint8Array } {
  const spki = spkiDer(privateKey);
  const keyId = keyIdentifier(spki);
  const now = Date.now();
  const tbs = buildTbs({
    serial: randomSerial(),
    signingKey: privateKey,
    issuerDer: null,
    // Back-dated a day so clients with a slow clock accept it at once.
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + days * DAY_MS),
    subject: [{ shortName: "CN", value: CA_COMMON_NAME }],
    spki,
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
      { name: "subjectKeyIdentifier", value: octetString(keyId) },
      { name: "authorityKeyIdentifier", keyIdentifier: bytesToBinary(keyId) },
    ],
  });
  return { certPem: signCertificate(tbs, privateKey), keyId };
}

/**
 * Create `path` with `text` and an exact mode (umask-proof), never overwriting: the file is
 * written and synced under a temporary name in the same folder, then hard-linked into place
 * (`link(2)`: EEXIST when `path` exists), so `path` appears complete or not at all.
 * @throws the `link`/`open` error (`code` EEXIST when another file got there first).
 */
async function writeNew(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${crypto.randomUUID()}.tmp`;
  const fh = await open(tmp, "wx", mode);
  try {
    try {
      await fh.chmod(mode);
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
