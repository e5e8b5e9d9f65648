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
import { UpstreamError } from "./upstream-error.ts";
import { TCHAR, asciiDigitsValue } from "./grammar.ts";

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
 * A response head scanned without per-field strings: the field lines are byte ranges of
 * `bytes`, the framing-relevant fields are already summarised. `reason` and `headers` are
 * built on first use (most responses are relayed as bytes and never need them).
 */
export class ScannedResponseHead implements ResponseHead {
  private _headers: Array<[string, string]> | null = null;
  /** Combined transfer-encoding values, or null when absent. */
  te: string | null = null;
  /** The content-length (all fields agreed), or -1 when absent. */
  contentLength = -1;
  /** A `connection: close` token was seen. */
  connectionClose = false;

  constructor(
    readonly version: 10 | 11,
    readonly status: number,
    /** The buffer holding the head (never reused by the reader). */
    readonly bytes: Uint8Array,
    private readonly reasonStart: number,
    private readonly reasonEnd: number,
    /** 4 numbers per field line: name start, name end, value start, value end (value trimmed). */
    readonly fields: number[],
  ) {}

  get reason(): string {
    return latin1(this.bytes, this.reasonStart, this.reasonEnd);
  }

  /** Names lowercased, values trimmed, in order (built once, on first use). */
  get headers(): Array<[string, string]> {
    if (this._headers === null) {
      const h: Array<[string, string]> = [];
      const f = this.fields;
      for (let i = 0; i < f.length; i += 4) {
        h.push([latin1(this.bytes, f[i]!, f[i + 1]!).toLowerCase(), latin1(this.bytes, f[i + 2]!, f[i + 3]!)]);
      }
      this._headers = h;
    }
    return this._headers;
  }

  toJSON(): ResponseHead {
    return { version: this.version, status: this.status, reason: this.reason, headers: this.headers };
  }
}

/** Case-insensitive compare of a name's bytes with a lower-case name (tchar bytes: `| 0x20` folds only A–Z). */
function nameIs(buf: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((buf[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}


/**
 * Merge one content-length field value into the agreed value so far (-1: none yet).
 * @throws UpstreamError kind "protocol" for a malformed or conflicting value
 */
function mergeContentLength(cl: number, v: string): number {
  if (isDigits(v)) {
    // The usual single value: no list splitting.
    const n = Number(v);
    if (cl >= 0 && cl !== n) throw protocolError("conflicting content-length");
    return n;
  }
  for (const part of v.split(",")) {
    const p = part.trim();
    if (!/^[0-9]{1,15}$/.test(p)) throw protocolError("bad content-length");
    const n = Number(p);
    if (cl >= 0 && cl !== n) throw protocolError("conflicting content-length");
    cl = n;
  }
  return cl;
}

/** Whether a `connection` field value holds the `close` token. */
function hasCloseToken(v: string): boolean {
  for (const tok of v.split(",")) if (tok.trim().toLowerCase() === "close") return true;
  return false;
}

/**
 * Parse a complete head (`buf[0..end)`, ending with the empty line).
 * @throws UpstreamError kind "protocol" on any grammar violation
 */
export function parseResponseHead(buf: Uint8Array, end: number): ResponseHead {
  // No framing summary: a CONNECT 2xx carries no body, whatever its content-length says.
  const h = scanResponseHead(buf, end, false);
  return { version: h.version, status: h.status, reason: h.reason, headers: h.headers };
}

/**
 * Validate a complete head (`buf[0..end)`) like {@link parseResponseHead} and summarise its
 * framing fields (unless `framing` is false), without a string per field.
 * @throws UpstreamError kind "protocol" on any grammar violation or bad content-length
 */
export function scanResponseHead(buf: Uint8Array, end: number, framing = true): ScannedResponseHead {
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
  const reasonEnd = i;
  if (buf[i + 1] !== 0x0a) throw protocolError("bare CR");
  i += 2;

  const fields: number[] = [];
  const head = new ScannedResponseHead(minor === 0x31 ? 11 : 10, status, buf, reasonStart, reasonEnd, fields);
  while (i < end - 2) {
    if (fields.length >= MAX_HEAD_FIELDS * 4) throw protocolError("too many header fields");
    const first = buf[i]!;
    if (first === 0x20 || first === 0x09) throw protocolError("obs-fold in header section");
    const nameStart = i;
    while (TCHAR[buf[i]!] === 1) i++;
    if (i === nameStart || buf[i] !== 0x3a) throw protocolError("bad header field name");
    const nameEnd = i;
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
    fields.push(nameStart, nameEnd, valueStart, valueEnd);
    i += 2;
    if (!framing) continue;
    const n = nameEnd - nameStart;
    if (n === 14 && nameIs(buf, nameStart, nameEnd, "content-length")) {
      const v = asciiDigitsValue(buf, valueStart, valueEnd);
      if (v >= 0) {
        if (head.contentLength >= 0 && head.contentLength !== v) throw protocolError("conflicting content-length");
        head.contentLength = v;
      } else head.contentLength = mergeContentLength(head.contentLength, latin1(buf, valueStart, valueEnd));
    } else if (n === 17 && nameIs(buf, nameStart, nameEnd, "transfer-encoding")) {
      const v = latin1(buf, valueStart, valueEnd);
      head.te = head.te === null ? v : `${head.te}, ${v}`;
    } else if (n === 10 && nameIs(buf, nameStart, nameEnd, "connection")) {
      if (hasCloseToken(latin1(buf, valueStart, valueEnd))) head.connectionClose = true;
    }
  }
  return head;
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
  let cl = -1;
  let close = false;
  for (const [n, v] of head.headers) {
    if (n === "transfer-encoding") te = te === null ? v : `${te}, ${v}`;
    else if (n === "content-length") cl = mergeContentLength(cl, v);
    else if (n === "connection" && hasCloseToken(v)) close = true;
  }
  return decideFraming(head.version, head.status, te, cl, close, requestMethod);
}

/** {@link responseFraming} of a scanned head (its framing fields are already summarised). */
export function scannedFraming(head: ScannedResponseHead, requestMethod: string): { framing: BodyFraming; reusable: boolean } {
  return decideFraming(head.version, head.status, head.te, head.contentLength, head.connectionClose, requestMethod);
}

const NONE: BodyFraming = Object.freeze({ kind: "none" }) as BodyFraming;
const CHUNKED: BodyFraming = Object.freeze({ kind: "chunked" }) as BodyFraming;

function decideFraming(
  version: 10 | 11,
  status: number,
  te: string | null,
  cl: number,
  connectionClose: boolean,
  requestMethod: string,
): { framing: BodyFraming; reusable: boolean } {
  const close = connectionClose || version === 10;
  const noBody = requestMethod === "HEAD" || status < 200 || status === 204 || status === 304;
  if (te !== null) {
    // Only exactly `chunked`: another coding would be silently lost when the caller drops
    // transfer-encoding, and HTTP/1.0 has no transfer codings at all.
    if (te.trim().toLowerCase() !== "chunked" || version === 10) throw protocolError("unsupported transfer-encoding");
    // TE with CL is a smuggling signature (§6.1): honour TE, never reuse the connection.
    return { framing: noBody ? NONE : CHUNKED, reusable: !close && cl < 0 };
  }
  if (noBody) return { framing: NONE, reusable: !close };
  if (cl >= 0) return { framing: { kind: "length", length: cl }, reusable: !close };
  return { framing: { kind: "close" }, reusable: false };
}

/**
 * Incremental head reader: feed socket chunks until it returns the head end.
 * Keeps no copy when the head arrives in one chunk (the common case).
 */
export class HeadAccumulator {
  private buf: Uint8Array | null = null;
  private len = 0;
  /** The buffer of the last completed accumulated head (its bytes, body bytes after the head included), for callers that zero it. */
  lastBuffer: Uint8Array | null = null;

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
      // The old buffer may hold body bytes of a secret response (see lastBuffer): zero it.
      this.buf!.fill(0);
      this.buf = grown;
    }
    const from = Math.max(0, this.len - 3);
    this.buf!.set(chunk, this.len);
    this.len = need;
    const end = findHeadEnd(this.buf!.subarray(0, this.len), from);
    if (end >= 0) {
      if (end > MAX_HEAD_BYTES) throw protocolError("response head too large");
      const bytes = this.buf!.subarray(0, this.len);
      this.lastBuffer = this.buf;
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
