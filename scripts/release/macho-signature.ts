/**
 * Checks the embedded code signature of a thin 64-bit Mach-O executable without macOS, the way
 * the kernel and `codesign --verify --strict` do: `LC_CODE_SIGNATURE` → SuperBlob (CSMAGIC
 * 0xfade0cc0) → CodeDirectory (0xfade0c02); every code slot must be the hash of its page of the
 * file (the last page cut at `codeLimit`), `codeLimit` must reach the signature (nothing
 * unsigned in between), the special slots must hash the blobs present, and nothing may follow
 * the signature. Source: Apple's `cs_blobs.h` (xnu) layouts, all big-endian.
 *
 * Why: Apple Silicon refuses to start an arm64 binary whose signature is invalid (SIGKILL), and
 * Bun's cross-compiled darwin outputs have shipped with broken ad-hoc signatures before, so a
 * release states what it ships instead of trusting it.
 */
import { createHash } from "node:crypto";

const MH_MAGIC_64 = 0xfeedfacf;
const LC_CODE_SIGNATURE = 0x1d;
const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CSSLOT_CODEDIRECTORY = 0;
const CS_ADHOC = 0x2;
const HASH_NAMES: Record<number, string> = { 1: "sha1", 2: "sha256" };

/** What a check found; `valid` only when `problems` is empty. */
export interface SignatureReport {
  cpu: "x86_64" | "arm64" | `cpu 0x${string}`;
  signed: boolean;
  adhoc: boolean;
  identifier: string | null;
  pages: number;
  badPages: number;
  codeLimit: number;
  signatureOffset: number;
  problems: string[];
  valid: boolean;
}

/**
 * Checks `file`'s bytes. Throws only when the bytes are not a thin 64-bit little-endian Mach-O
 * (a fat/universal file or anything else); every signature defect is a `problems` entry.
 */
export function checkMachOSignature(file: Uint8Array): SignatureReport {
  const le = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 32 || le.getUint32(0, true) !== MH_MAGIC_64) throw new Error("not a thin 64-bit little-endian Mach-O file");
  const cputype = le.getUint32(4, true);
  const cpu = cputype === 0x01000007 ? "x86_64" : cputype === 0x0100000c ? "arm64" : (`cpu 0x${cputype.toString(16)}` as const);
  const ncmds = le.getUint32(16, true);
  const report: SignatureReport = { cpu, signed: false, adhoc: false, identifier: null, pages: 0, badPages: 0, codeLimit: 0, signatureOffset: 0, problems: [], valid: false };
  let off = 32;
  let sig: { dataoff: number; datasize: number } | null = null;
  for (let i = 0; i < ncmds && off + 8 <= file.length; i++) {
    const cmd = le.getUint32(off, true);
    const size = le.getUint32(off + 4, true);
    if (cmd === LC_CODE_SIGNATURE) sig = { dataoff: le.getUint32(off + 8, true), datasize: le.getUint32(off + 12, true) };
    if (size < 8) break;
    off += size;
  }
  if (!sig) {
    report.problems.push("no LC_CODE_SIGNATURE load command (unsigned)");
    return report;
  }
  report.signatureOffset = sig.dataoff;
  if (sig.dataoff + sig.datasize > file.length) {
    report.problems.push(`signature runs past the end of the file (${sig.dataoff}+${sig.datasize} > ${file.length})`);
    return report;
  }
  const be = new DataView(file.buffer, file.byteOffset + sig.dataoff, sig.datasize);
  if (be.getUint32(0) !== CSMAGIC_EMBEDDED_SIGNATURE) {
    report.problems.push("LC_CODE_SIGNATURE does not point at an embedded-signature SuperBlob");
    return report;
  }
  report.signed = true;
  const count = be.getUint32(8);
  const blobs = new Map<number, number>();
  for (let i = 0; i < count; i++) blobs.set(be.getUint32(12 + i * 8), be.getUint32(16 + i * 8));
  const cdOff = blobs.get(CSSLOT_CODEDIRECTORY);
  if (cdOff === undefined || be.getUint32(cdOff) !== CSMAGIC_CODEDIRECTORY) {
    report.problems.push("no CodeDirectory in the SuperBlob");
    return report;
  }
  const flags = be.getUint32(cdOff + 12);
  const hashOffset = be.getUint32(cdOff + 16);
  const identOffset = be.getUint32(cdOff + 20);
  const nSpecialSlots = be.getUint32(cdOff + 24);
  const nCodeSlots = be.getUint32(cdOff + 28);
  const codeLimit = be.getUint32(cdOff + 32);
  const hashSize = be.getUint8(cdOff + 36);
  const hashType = be.getUint8(cdOff + 37);
  const pageSize = 2 ** be.getUint8(cdOff + 39);
  report.adhoc = (flags & CS_ADHOC) !== 0;
  report.codeLimit = codeLimit;
  report.pages = nCodeSlots;
  const identStart = sig.dataoff + cdOff + identOffset;
  report.identifier = new TextDecoder().decode(file.subarray(identStart, file.indexOf(0, identStart)));
  const algo = HASH_NAMES[hashType];
  if (!algo) {
    report.problems.push(`unknown CodeDirectory hash type ${hashType}`);
    return report;
  }
  const hashAt = (rel: number) => file.subarray(sig.dataoff + cdOff + rel, sig.dataoff + cdOff + rel + hashSize);
  const digest = (bytes: Uint8Array) => createHash(algo).update(bytes).digest().subarray(0, hashSize);
  if (codeLimit !== sig.dataoff) report.problems.push(`codeLimit ${codeLimit} != signature offset ${sig.dataoff}: ${Math.abs(sig.dataoff - codeLimit)} bytes outside the signed range`);
  if (nCodeSlots !== Math.ceil(codeLimit / pageSize)) report.problems.push(`${nCodeSlots} code slots for a codeLimit of ${codeLimit} (page ${pageSize})`);
  for (let i = 0; i < nCodeSlots; i++) {
    const page = file.subarray(i * pageSize, Math.min((i + 1) * pageSize, codeLimit));
    if (!Buffer.from(digest(page)).equals(Buffer.from(hashAt(hashOffset + i * hashSize)))) report.badPages++;
  }
  if (report.badPages) report.problems.push(`${report.badPages} of ${nCodeSlots} page hashes do not match`);
  // Special slot n (requirements = 2, entitlements = 5, DER entitlements = 7) sits n hashes
  // before hashOffset and holds the hash of that blob, or zeros when the blob is absent.
  for (let n = 1; n <= nSpecialSlots; n++) {
    const want = hashAt(hashOffset - n * hashSize);
    const blobOff = blobs.get(n);
    if (blobOff === undefined) {
      if (want.some((b) => b !== 0)) report.problems.push(`special slot -${n} names a blob that is not there`);
      continue;
    }
    const blob = file.subarray(sig.dataoff + blobOff, sig.dataoff + blobOff + be.getUint32(blobOff + 4));
    if (!Buffer.from(digest(blob)).equals(Buffer.from(want))) report.problems.push(`special slot -${n} hash does not match its blob`);
  }
  const end = sig.dataoff + sig.datasize;
  if (file.length > end) report.problems.push(`${file.length - end} bytes after the signature (codesign --strict rejects a stale tail)`);
  report.valid = report.problems.length === 0;
  return report;
}

if (import.meta.main) {
  let bad = 0;
  for (const path of process.argv.slice(2)) {
    const r = checkMachOSignature(new Uint8Array(await Bun.file(path).arrayBuffer()));
    if (!r.valid) bad++;
    const state = r.valid ? `valid ${r.adhoc ? "ad-hoc " : ""}signature` : `INVALID signature: ${r.problems.join("; ")}`;
    process.stdout.write(`${path}: ${r.cpu}, ${state} (${r.pages} pages, identifier ${r.identifier ?? "-"})\n`);
  }
  process.exit(bad ? 1 : 0);
}
