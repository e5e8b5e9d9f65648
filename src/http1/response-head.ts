/**
 * Strict, bounded HTTP/1.x response-head parser (RFC 9112 §4 status line, §5 field lines,
 * §6.3 message body length).
 *
 * Bounds: the head (status line + fields + empty line) is at most 64 KiB and holds at most
 * 100 field lines. Rejected: obs-fold (§5.2), bare CR or LF, whitespace before the colon
 * (§5.1), bytes outside token / field-value grammar, conflicting or malformed
 * content-length (§6.3 step 5), and any transfer-encoding other than exactly `chunked`.
 */
import { latin1 } from "./latin1.ts";
import { UpstreamError } from "./types.ts";

export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_HEAD_FIELDS = 100;

/** How the response body is delimited (RFC 9112 §6.3). */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/** A parsed response head. */
export interface ResponseHead {
  /** 10 for HTTP/1.0, 11 for HTTP/1.1. */
  version: 10 | 11;
  status: number;
  reason: string;
  /** Names lowercased, values with surrounding whitespace removed, in order. */
  headers: Array<[string, string]>;
}

const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1;
}

function protocolError(msg: string): UpstreamError {
  return new UpstreamError("protocol", `invalid response from upstream: ${msg}`);
}

/** Index of the first byte after `\r\n\r\n` in `buf` starting the search at `from`, or -1. */
export function findHeadEnd(buf: Uint8Array, from: number): number {
  let i = Math.max(0, from);
  const end = buf.length - 3;
  while (i < end) {
    const j = buf.indexOf(0x0d, i);
    if (j < 0 || j >= end) return -1;
    if (buf[j + 1] === 0x0a && buf[j + 2] === 0x0d && buf[j + 3] === 0x0a) return j + 4;
    i = j + 1;
  }
  return -1;
}


/**
 * Parse a complete head (`buf[0..end)`, ending with the empty line).
 * @throws UpstreamError kind "protocol" on any grammar violation
 */
export function parseResponseHead(buf: Uint8Array, end: number): ResponseHead {
  // Status line: HTTP-version SP 3DIGIT SP reason-phrase (the reason's SP is tolerated missing).
  if (end < 14) throw protocolError("status line too short");
  const H = 0x48, T = 0x54, P = 0x50;
  if (buf[0] !== H || buf[1] !== T || buf[2] !== T || buf[3] !== P || buf[4] !== 0x2f || buf[5] !== 0x31 || buf[6] !== 0x2e) {
    throw protocolError("not an HTTP/1.x status line");
  }
  const minor = buf[7]!;
  if ((minor !== 0x30 && minor !== 0x31) || buf[8] !== 0x20) throw protocolError("unsupported HTTP version");
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) throw protocolError("bad status code");
    status = status * 10 + d;
  }
  if (status < 100 || status > 599) throw protocolError("bad status code");
  let i = 12;
  if (buf[i] === 0x20) i++;
  else if (buf[i] !== 0x0d) throw protocolError("bad status line");
  const reasonStart = i;
  for (; buf[i] !== 0x0d; i++) {
    const c = buf[i]!;
    if (c !== 0x09 && (c < 0x20 || c === 0x7f)) throw protocolError("bad byte in reason phrase");
  }
  const reason = latin1(buf, reasonStart, i);
  if (buf[i + 1] !== 0x0a) throw protocolError("bare CR");
  i += 2;

  const headers: Array<[string, string]> = [];
  while (i < end - 2) {
    if (headers.length >= MAX_HEAD_FIELDS) throw protocolError("too many header fields");
    const first = buf[i]!;
    if (first === 0x20 || first === 0x09) throw protocolError("obs-fold in header section");
    const nameStart = i;
    while (TCHAR[buf[i]!] === 1) i++;
    if (i === nameStart || buf[i] !== 0x3a) throw protocolError("bad header field name");
    const name = latin1(buf, nameStart, i).toLowerCase();
    i++;
    while (buf[i] === 0x20 || buf[i] === 0x09) i++;
    const valueStart = i;
    let valueEnd = i;
    for (;;) {
      const c = buf[i]!;
      if (c === 0x0d) break;
      if (c !== 0x09 && (c < 0x20 || c === 0x7f)) throw protocolError("bad byte in header field value");
      i++;
      if (c !== 0x20 && c !== 0x09) valueEnd = i;
    }
    if (buf[i + 1] !== 0x0a) throw protocolError("bare CR");
    headers.push([name, latin1(buf, valueStart, valueEnd)]);
    i += 2;
  }
  return { version: minor === 0x31 ? 11 : 10, status, reason, headers };
}

/** 1 to 15 ASCII digits (a content-length value that is a safe integer). */
function isDigits(v: string): boolean {
  if (v.length === 0 || v.length > 15) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Decide the body framing (RFC 9112 §6.3) and whether the connection may be reused.
 * @param requestMethod the request's method (HEAD responses have no body)
 * @throws UpstreamError kind "protocol" for unusable framing
 */
export function responseFraming(head: ResponseHead, requestMethod: string): { framing: BodyFraming; reusable: boolean } {
  let te: string | null = null;
  let cl: string | null = null;
  let close = head.version === 10;
  for (const [n, v] of head.headers) {
    if (n === "transfer-encoding") te = te === null ? v : `${te}, ${v}`;
    else if (n === "content-length") {
      if (isDigits(v)) {
        // The usual single value: no list splitting.
        if (cl !== null && Number(cl) !== Number(v)) throw protocolError("conflicting content-length");
        cl = v;
        continue;
      }
      for (const part of v.split(",")) {
        const p = part.trim();
        if (!/^[0-9]{1,15}$/.test(p)) throw protocolError("bad content-length");
        if (cl !== null && Number(cl) !== Number(p)) throw protocolError("conflicting content-length");
        cl = p;
      }
    } else if (n === "connection") {
      for (const tok of v.split(",")) if (tok.trim().toLowerCase() === "close") close = true;
    }
  }
  const noBody = requestMethod === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304;
  if (te !== null) {
    // Only exactly `chunked`: another coding would be silently lost when the caller drops
    // transfer-encoding, and HTTP/1.0 has no transfer codings at all.
    if (te.trim().toLowerCase() !== "chunked" || head.version === 10) throw protocolError("unsupported transfer-encoding");
    // TE with CL is a smuggling signature (§6.1): honour TE, never reuse the connection.
    if (cl !== null) close = true;
    return { framing: noBody ? { kind: "none" } : { kind: "chunked" }, reusable: !close };
  }
  if (noBody) return { framing: { kind: "none" }, reusable: !close };
  if (cl !== null) return { framing: { kind: "length", length: Number(cl) }, reusable: !close };
  return { framing: { kind: "close" }, reusable: false };
}

/**
 * Incremental head reader: feed socket chunks until it returns the head end.
 * Keeps no copy when the head arrives in one chunk (the common case).
 */
export class HeadAccumulator {
  private buf: Uint8Array | null = null;
  private len = 0;

  /**
   * @returns null while incomplete, else the bytes holding the head and the index where the
   *   head ends (bytes after it belong to the body)
   * @throws UpstreamError kind "protocol" when the head exceeds 64 KiB
   */
  push(chunk: Uint8Array): { bytes: Uint8Array; end: number } | null {
    if (this.buf === null && this.len === 0) {
      const end = findHeadEnd(chunk, 0);
      if (end >= 0) {
        if (end > MAX_HEAD_BYTES) throw protocolError("response head too large");
        return { bytes: chunk, end };
      }
      if (chunk.length > MAX_HEAD_BYTES) throw protocolError("response head too large");
      this.buf = new Uint8Array(Math.max(4096, chunk.length * 2));
    }
    const need = this.len + chunk.length;
    if (need > this.buf!.length) {
      const grown = new Uint8Array(Math.min(Math.max(need, this.buf!.length * 2), MAX_HEAD_BYTES + chunk.length));
      grown.set(this.buf!.subarray(0, this.len));
      this.buf = grown;
    }
    const from = Math.max(0, this.len - 3);
    this.buf!.set(chunk, this.len);
    this.len = need;
    const end = findHeadEnd(this.buf!.subarray(0, this.len), from);
    if (end >= 0) {
      if (end > MAX_HEAD_BYTES) throw protocolError("response head too large");
      const bytes = this.buf!.subarray(0, this.len);
      this.buf = null;
      this.len = 0;
      return { bytes, end };
    }
    if (this.len > MAX_HEAD_BYTES) throw protocolError("response head too large");
    return null;
  }

  /** Bytes of an incomplete head received so far. */
  get pending(): number {
    return this.len;
  }
}
