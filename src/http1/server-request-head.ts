/**
 * Strict, bounded HTTP/1.1 request-head parser working on bytes (RFC 9112 §2–§6): the server
 * side of HTTP/1.1, shared by both products' listeners (the responses proxy's Bun.listen
 * server and the network proxy's HTTP listener and MITM). Proxy listeners cannot use
 * `Bun.serve` (no CONNECT, absolute-form rewritten, dot-segments normalised), and a proxy
 * that is lenient where its upstream is strict (or the reverse) is a request-smuggling vector,
 * so every rule below rejects rather than guesses.
 *
 * Decisions (documented because RFC 9112 leaves them open):
 * - Line endings: CRLF only. A bare LF (RFC 9112 §2.2 "MAY accept") and a bare CR are 400.
 * - Empty lines (CRLF) before the request line are skipped up to `maxLeadingEmptyLines`
 *   (RFC 9112 §2.2 SHOULD ignore at least one); more → 400. They count towards the head size.
 * - obs-fold (a field line starting with SP/HTAB) → 400 (RFC 9112 §5.2 allows rejecting).
 * - Whitespace between field name and colon → 400 (RFC 9112 §5.1 MUST).
 * - Field values: HTAB, SP, VCHAR and obs-text (0x80–0xFF); any other CTL (NUL, CR, DEL…) → 400.
 *   Values are decoded as latin1 so every byte maps to one code unit and can be re-encoded
 *   unchanged.
 * - Request-target: visible ASCII only (0x21–0x7E), non-empty, kept exactly as sent.
 * - Versions: exactly `HTTP/1.1` or `HTTP/1.0`. Another `HTTP/<d>.<d>` → 505 (RFC 9110
 *   §15.6.6); anything else → 400.
 * - Framing (RFC 9112 §6): more than one Content-Length field (even with equal values), a
 *   non-digit Content-Length (comma lists included), Transfer-Encoding together with
 *   Content-Length, or Transfer-Encoding in an HTTP/1.0 request → 400; any Transfer-Encoding
 *   other than one single `chunked` → 501 (RFC 9112 §6.1). A duplicate Host field → 400
 *   (RFC 9112 §3.2).
 * - Bounds (parameters, each product sets its own): head (from the first byte to the final
 *   CRLFCRLF) over `maxHeadBytes` or more than `maxFields` field lines → 431.
 *
 * Heads may arrive in pieces: an `incomplete` result carries `resumeAt`, the offset of the
 * first line not yet terminated; pass it back as `scanFrom` with the grown buffer so each
 * byte is scanned for line ends once.
 */
import { latin1 } from "./latin1.ts";
import { TCHAR, asciiDigitsValue } from "./grammar.ts";

/** Parsed body framing of a request (RFC 9112 §6.3). `length` may be 0. */
export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

/** A parsed request head. Strings are latin1-decoded bytes. */
export interface RequestHead {
  /** Method token exactly as sent (case-sensitive, RFC 9110 §9.1). */
  method: string;
  /** Request-target as sent (origin-, absolute-, authority- or asterisk-form). */
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  /** Field lines in order, names as sent, values with surrounding whitespace trimmed. */
  headers: Array<[string, string]>;
  framing: BodyFraming;
  /** Whether the client allows the connection to be reused (Connection / version default). */
  keepAlive: boolean;
}

/** Bounds of the parser. */
export interface HeadLimits {
  /** Largest head in bytes, default 32768. */
  maxHeadBytes?: number;
  /** Most field lines, default 100. */
  maxFields?: number;
  /** Most empty lines skipped before the request line, default 4. */
  maxLeadingEmptyLines?: number;
}

/** Result of `parseRequestHead`. */
export type HeadParseResult =
  | { kind: "incomplete"; resumeAt: number }
  | { kind: "error"; status: 400 | 431 | 501 | 505; message: string }
  | { kind: "ok"; head: RequestHead; headLength: number };

export const DEFAULT_MAX_HEAD_BYTES = 32768;
export const DEFAULT_MAX_FIELDS = 100;
export const DEFAULT_MAX_LEADING_EMPTY_LINES = 4;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** field-vchar / SP / HTAB (RFC 9110 §5.5), obs-text included. */
const FIELD_BYTE = new Uint8Array(256);
for (let i = 0; i < 256; i++) FIELD_BYTE[i] = (i >= 0x20 && i !== 0x7f) || i === HTAB ? 1 : 0;

const HTTP_VERSION = /^HTTP\/[0-9]\.[0-9]$/;

function fail(status: 400 | 431 | 501 | 505, message: string): { kind: "error"; status: 400 | 431 | 501 | 505; message: string } {
  return { kind: "error", status, message };
}

/**
 * Parse the request head at the start of `buf` (which may also hold body or pipelined bytes).
 * Never throws. `scanFrom` must be 0 or a `resumeAt` from an earlier call on a prefix of the
 * same bytes.
 */
export function parseRequestHead(buf: Uint8Array, limits?: HeadLimits, scanFrom = 0): HeadParseResult {
  return parseHead(buf, limits, scanFrom, false) as HeadParseResult;
}

/** Both parsers: `raw` keeps the fields as byte ranges. */
function parseHead(buf: Uint8Array, limits: HeadLimits | undefined, scanFrom: number, raw: boolean): HeadParseResult | RawHeadParseResult {
  const maxHead = limits?.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  const maxFields = limits?.maxFields ?? DEFAULT_MAX_FIELDS;
  const maxLead = 2 * (limits?.maxLeadingEmptyLines ?? DEFAULT_MAX_LEADING_EMPTY_LINES);
  const len = buf.byteLength;

  // Phase 1: find the end of the head, scanning only bytes not scanned before. Leading empty
  // lines are skipped; the bound keeps this O(1) per call.
  let lead = 0;
  while (lead + 1 < len && buf[lead] === CR && buf[lead + 1] === LF) {
    lead += 2;
    if (lead > maxLead) return fail(400, "too many empty lines before the request line");
  }
  let lineStart = Math.max(scanFrom, lead);
  let end = -1;
  const scanLimit = Math.min(len, maxHead);
  while (lineStart < scanLimit) {
    const lf = buf.indexOf(LF, lineStart);
    if (lf < 0 || lf >= scanLimit) break;
    if (lf === 0 || buf[lf - 1] !== CR) return fail(400, "bare LF in request head");
    if (lf - 1 === lineStart) {
      end = lf + 1; // the empty line that ends the head
      break;
    }
    lineStart = lf + 1;
  }
  if (end < 0) {
    if (len >= maxHead) return fail(431, "request head too large");
    return { kind: "incomplete", resumeAt: lineStart };
  }
  return parseComplete(buf, end, maxFields, raw);
}

/**
 * A parsed request head without per-field strings: the field lines as byte ranges of the
 * buffer it was parsed from (a listener can copy them onward as bytes and build strings only
 * when it needs them, see {@link fieldStrings}). Validation is exactly that of parseRequestHead.
 */
export interface RawRequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  framing: BodyFraming;
  keepAlive: boolean;
  /** The buffer the head was parsed from (the ranges below index into it). */
  bytes: Uint8Array;
  /** 4 numbers per field line, in order: name start, name end, value start, value end (value trimmed). */
  fields: number[];
  /** `Expect: 100-continue` was sent (RFC 9110 §10.1.1). */
  expectContinue: boolean;
  /** An `Upgrade` field was present. */
  upgrade: boolean;
}

/** Result of `parseRequestHeadRaw`. */
export type RawHeadParseResult =
  | { kind: "incomplete"; resumeAt: number }
  | { kind: "error"; status: 400 | 431 | 501 | 505; message: string }
  | { kind: "ok"; head: RawRequestHead; headLength: number };

/**
 * As {@link parseRequestHead}, but the fields stay byte ranges of `buf` (no string per field).
 * The ranges stay valid only as long as the caller does not reuse `buf`.
 */
export function parseRequestHeadRaw(buf: Uint8Array, limits?: HeadLimits, scanFrom = 0): RawHeadParseResult {
  return parseHead(buf, limits, scanFrom, true) as RawHeadParseResult;
}

/** Field lines of a raw head as `[name as sent, value]` strings (latin1). */
export function fieldStrings(bytes: Uint8Array, fields: number[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < fields.length; i += 4) {
    out.push([latin1(bytes, fields[i]!, fields[i + 1]!), latin1(bytes, fields[i + 2]!, fields[i + 3]!)]);
  }
  return out;
}

/**
 * Whether `bytes[start..end)` is `lowerName` compared case-insensitively (`lowerName` is
 * lower-case letters, digits and `-`; the caller's bytes are tchars, so `| 0x20` only folds A–Z).
 */
export function nameIs(bytes: Uint8Array, start: number, end: number, lowerName: string): boolean {
  if (end - start !== lowerName.length) return false;
  for (let i = 0; i < lowerName.length; i++) {
    if ((bytes[start + i]! | 0x20) !== lowerName.charCodeAt(i)) return false;
  }
  return true;
}

function parseComplete(buf: Uint8Array, end: number, maxFields: number, raw: boolean): HeadParseResult | RawHeadParseResult {
  let p = 0;
  while (buf[p] === CR && buf[p + 1] === LF) p += 2;

  // request-line = method SP request-target SP HTTP-version CRLF
  const mStart = p;
  while (TCHAR[buf[p]!]) p++;
  if (p === mStart || buf[p] !== SP) return fail(400, "invalid request line");
  const method = latin1(buf, mStart, p);
  p++;
  const tStart = p;
  while (buf[p]! > 0x20 && buf[p]! < 0x7f) p++;
  if (p === tStart || buf[p] !== SP) return fail(400, "invalid request line");
  const target = latin1(buf, tStart, p);
  p++;
  const vStart = p;
  while (buf[p] !== CR) p++;
  if (buf[p + 1] !== LF) return fail(400, "bare CR in request head");
  let version: RequestHead["version"];
  // The two accepted versions are recognised from the bytes (no string per request).
  if (p - vStart === 8 && buf[vStart] === 0x48 && buf[vStart + 1] === 0x54 && buf[vStart + 2] === 0x54 && buf[vStart + 3] === 0x50 &&
    buf[vStart + 4] === 0x2f && buf[vStart + 5] === 0x31 && buf[vStart + 6] === 0x2e && (buf[vStart + 7] === 0x31 || buf[vStart + 7] === 0x30)) {
    version = buf[vStart + 7] === 0x31 ? "HTTP/1.1" : "HTTP/1.0";
  } else {
    const v = latin1(buf, vStart, p);
    if (HTTP_VERSION.test(v)) return fail(505, "unsupported HTTP version");
    return fail(400, v.startsWith("HTTP/") ? "unsupported HTTP version" : "invalid request line");
  }
  p += 2;

  const fields: number[] = [];
  let clCount = 0;
  let clValue = -1;
  let te: string | null = null;
  let hostCount = 0;
  let connection = "";
  let expectContinue = false;
  let upgrade = false;
  while (p < end - 2) {
    if (buf[p] === SP || buf[p] === HTAB) return fail(400, "obsolete line folding in request head");
    if (fields.length >= maxFields * 4) return fail(431, "too many header fields");
    const nStart = p;
    while (TCHAR[buf[p]!]) p++;
    if (p === nStart || buf[p] !== COLON) return fail(400, "invalid header field name");
    const nEnd = p;
    p++;
    while (buf[p] === SP || buf[p] === HTAB) p++;
    const valStart = p;
    while (FIELD_BYTE[buf[p]!]) p++;
    if (buf[p] !== CR) return fail(400, "invalid header field value");
    if (buf[p + 1] !== LF) return fail(400, "bare CR in request head");
    let valEnd = p;
    while (valEnd > valStart && (buf[valEnd - 1] === SP || buf[valEnd - 1] === HTAB)) valEnd--;
    p += 2;
    fields.push(nStart, nEnd, valStart, valEnd);

    // Only names of a length that can be one of those below are compared.
    const n = nEnd - nStart;
    if (n === 14 && nameIs(buf, nStart, nEnd, "content-length")) {
      clCount++;
      clValue = asciiDigitsValue(buf, valStart, valEnd);
    } else if (n === 17 && nameIs(buf, nStart, nEnd, "transfer-encoding")) {
      const value = latin1(buf, valStart, valEnd);
      te = te === null ? value : `${te},${value}`;
    } else if (n === 4 && nameIs(buf, nStart, nEnd, "host")) {
      hostCount++;
    } else if (n === 10 && nameIs(buf, nStart, nEnd, "connection")) {
      const value = latin1(buf, valStart, valEnd);
      connection = connection ? `${connection},${value}` : value;
    } else if (n === 6 && nameIs(buf, nStart, nEnd, "expect")) {
      if (nameIs(buf, valStart, valEnd, "100-continue")) expectContinue = true;
    } else if (n === 7 && nameIs(buf, nStart, nEnd, "upgrade")) {
      upgrade = true;
    }
  }

  if (hostCount > 1) return fail(400, "duplicate Host header");
  let framing: BodyFraming = NO_BODY;
  if (te !== null) {
    if (clCount > 0) return fail(400, "both Transfer-Encoding and Content-Length");
    if (version === "HTTP/1.0") return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    const codings = te.split(",").map((s) => s.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== "chunked") return fail(501, "unsupported Transfer-Encoding");
    framing = { kind: "chunked" };
  } else if (clCount > 1) {
    return fail(400, "duplicate Content-Length");
  } else if (clCount === 1) {
    if (clValue < 0) return fail(400, "invalid Content-Length");
    framing = { kind: "length", length: clValue };
  }

  let keepAlive = version === "HTTP/1.1";
  if (connection) {
    for (const tok of connection.split(",")) {
      const t = tok.trim().toLowerCase();
      if (t === "close") {
        keepAlive = false;
        break;
      }
      if (t === "keep-alive") keepAlive = true;
    }
  }
  if (raw) {
    const head: RawRequestHead = { method, target, version, framing, keepAlive, bytes: buf, fields, expectContinue, upgrade };
    return { kind: "ok", head, headLength: end };
  }
  return { kind: "ok", head: { method, target, version, headers: fieldStrings(buf, fields), framing, keepAlive }, headLength: end };
}

/** `{ kind: "none" }` shared by every body-less head (never mutated). */
const NO_BODY: BodyFraming = Object.freeze({ kind: "none" }) as BodyFraming;


/** First value of header `name` (give it lower-case; matched case-insensitively), or undefined. */
export function headerValue(headers: Array<[string, string]>, name: string): string | undefined {
  for (const [k, v] of headers) if (k.length === name.length && k.toLowerCase() === name) return v;
  return undefined;
}
