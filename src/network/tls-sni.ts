/**
 * A small, bounded TLS ClientHello reader: is this the start of a TLS handshake, and which
 * host does its `server_name` extension name (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2,
 * RFC 6066 §3). Used by full-mode CONNECT tunnels to catch an SNI that differs from the
 * CONNECT target (SPEC-network §4, beyond: `sni_mismatch`) and by the SOCKS5 listener to
 * recognise a ClientHello among a client's first bytes.
 *
 * The ClientHello may span several handshake records; at most `maxBytes` (default 20 KiB)
 * of record bytes are examined. Nothing is decrypted and nothing is copied except when a
 * hello spans records.
 */
import { concatBytes } from "./bytes.ts";

/** Outcome of {@link parseClientHello}. */
export type ClientHelloResult =
  /** More bytes are needed to decide. */
  | { kind: "incomplete" }
  /** The bytes do not start with a TLS handshake record. */
  | { kind: "not_tls" }
  /** A TLS handshake record that is not a well-formed ClientHello, or one over the bound. */
  | { kind: "invalid"; message: string }
  /**
   * A complete ClientHello. `sni`: the host_name, ASCII-lowercased without trailing dots, or
   * null when the extension is absent. `length`: record bytes that carried it.
   */
  | { kind: "client_hello"; sni: string | null; length: number };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const DEFAULT_MAX_BYTES = 20 * 1024;

/**
 * Quick test for the first bytes of a TLS handshake record: true, false, or null when fewer
 * than 3 bytes are available.
 */
export function looksLikeTlsHandshake(buf: Uint8Array): boolean | null {
  if (buf.byteLength >= 1 && buf[0] !== RECORD_HANDSHAKE) return false;
  if (buf.byteLength >= 2 && buf[1] !== 0x03) return false;
  if (buf.byteLength < 3) return null;
  return buf[2]! <= 0x04;
}

/** Read the ClientHello at the start of `buf`. Never throws. */
export function parseClientHello(buf: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): ClientHelloResult {
  const looks = looksLikeTlsHandshake(buf);
  if (looks === false) return { kind: "not_tls" };
  if (looks === null) return { kind: "incomplete" };

  // Gather the handshake message from consecutive handshake records.
  let off = 0;
  let msg: Uint8Array | null = null;
  const parts: Uint8Array[] = [];
  let have = 0;
  let need = -1; // total handshake bytes (4 + body) once the header is known
  while (true) {
    if (off + 5 > buf.byteLength) return off + 5 > maxBytes ? tooBig() : { kind: "incomplete" };
    if (buf[off] !== RECORD_HANDSHAKE || buf[off + 1] !== 0x03) {
      return { kind: "invalid", message: "ClientHello interrupted by a non-handshake record" };
    }
    const recLen = (buf[off + 3]! << 8) | buf[off + 4]!;
    if (recLen === 0 || recLen > 16384) return { kind: "invalid", message: "bad TLS record length" };
    if (off + 5 + recLen > maxBytes) return tooBig();
    if (off + 5 + recLen > buf.byteLength) return { kind: "incomplete" };
    const frag = buf.subarray(off + 5, off + 5 + recLen);
    off += 5 + recLen;
    parts.push(frag);
    have += frag.byteLength;
    if (need < 0 && have >= 4) {
      const first = concatBytes(parts);
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: "invalid", message: "first handshake message is not a ClientHello" };
      need = 4 + ((first[1]! << 16) | (first[2]! << 8) | first[3]!);
      if (need > maxBytes) return tooBig();
    }
    if (need >= 0 && have >= need) {
      msg = (concatBytes(parts)).subarray(0, need);
      break;
    }
  }
  const sni = readSni(msg);
  if (typeof sni === "object" && sni !== null) return sni;
  return { kind: "client_hello", sni, length: off };
}

function tooBig(): ClientHelloResult {
  return { kind: "invalid", message: "ClientHello larger than the inspection bound" };
}

/** Parse the ClientHello body (after the 4-byte handshake header) for the SNI host_name. */
function readSni(msg: Uint8Array): string | null | { kind: "invalid"; message: string } {
  const bad = (message: string) => ({ kind: "invalid" as const, message });
  const end = msg.byteLength;
  let p = 4 + 2 + 32; // header, legacy_version, random
  if (p + 1 > end) return bad("truncated ClientHello");
  p += 1 + msg[p]!; // legacy_session_id
  if (p + 2 > end) return bad("truncated ClientHello");
  p += 2 + ((msg[p]! << 8) | msg[p + 1]!); // cipher_suites
  if (p + 1 > end) return bad("truncated ClientHello");
  p += 1 + msg[p]!; // legacy_compression_methods
  if (p === end) return null; // no extensions (old clients)
  if (p + 2 > end) return bad("truncated ClientHello");
  const extEnd = p + 2 + ((msg[p]! << 8) | msg[p + 1]!);
  if (extEnd !== end) return bad("bad ClientHello extensions length");
  p += 2;
  let sni: string | null = null;
  let seen = false;
  while (p < extEnd) {
    if (p + 4 > extEnd) return bad("truncated extension");
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const len = (msg[p + 2]! << 8) | msg[p + 3]!;
    p += 4;
    if (p + len > extEnd) return bad("truncated extension");
    if (type === EXT_SERVER_NAME) {
      if (seen) return bad("duplicate server_name extension");
      seen = true;
      const r = readServerNameList(msg.subarray(p, p + len));
      if (typeof r === "object" && r !== null) return r;
      sni = r;
    }
    p += len;
  }
  return sni;
}

/** RFC 6066 §3 ServerNameList: the first host_name entry. */
function readServerNameList(ext: Uint8Array): string | null | { kind: "invalid"; message: string } {
  const bad = (message: string) => ({ kind: "invalid" as const, message });
  if (ext.byteLength < 2) return bad("truncated server_name");
  const listEnd = 2 + ((ext[0]! << 8) | ext[1]!);
  if (listEnd !== ext.byteLength) return bad("bad server_name list length");
  let p = 2;
  while (p < listEnd) {
    if (p + 3 > listEnd) return bad("truncated server_name");
    const nameType = ext[p]!;
    const len = (ext[p + 1]! << 8) | ext[p + 2]!;
    p += 3;
    if (p + len > listEnd) return bad("truncated server_name");
    if (nameType === 0) {
      if (len === 0) return bad("empty server_name");
      let s = "";
      for (let i = p; i < p + len; i++) {
        const c = ext[i]!;
        // host_name is ASCII without NUL or controls (RFC 6066 §3).
        if (c <= 0x20 || c >= 0x7f) return bad("invalid byte in server_name");
        s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
      }
      return s.replace(/\.+$/, "");
    }
    p += len;
  }
  return null;
}
