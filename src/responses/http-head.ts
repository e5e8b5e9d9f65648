/**
 * Strict, bounded HTTP/1.1 request-head parser for the responses proxy's listener
 * (RFC 9112 §2–§6). The listener is our own (Bun.listen) because Bun.serve rewrites an
 * absolute-form target (`POST http://x/v1/responses`) into origin-form, which SPEC §1.4
 * requires us to reject; here the request-target is kept exactly as sent.
 *
 * Lines must end in CRLF (a bare LF or CR is an error), obs-fold is rejected, and framing
 * ambiguities that enable request smuggling (TE + CL, conflicting CL, TE other than a single
 * `chunked`) are errors.
 */

/** Message framing of a request body (RFC 9112 §6). */
export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

/** A parsed request head. Header names as sent; values are latin1 strings with OWS trimmed. */
export interface RequestHead {
  method: string;
  /** The request-target exactly as sent (origin-form, absolute-form, `*`, ...). */
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: Array<[string, string]>;
  framing: BodyFraming;
  keepAlive: boolean;
  expectContinue: boolean;
  /** An `Upgrade` header was present (e.g. a WebSocket attempt). */
  upgrade: boolean;
}

export type HeadParseResult =
  | { kind: "incomplete" }
  | { kind: "error"; status: 400 | 431 | 501 | 505; message: string }
  | { kind: "ok"; head: RequestHead; headLength: number };

export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_FIELDS = 100;

const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!TCHAR[s.charCodeAt(i)]) return false;
  return true;
}

/** Index of the CRLFCRLF ending the head in `buf[0..len)`, searching from `from`; -1 if absent. */
export function findHeadEnd(buf: Uint8Array, len: number, from: number): number {
  for (let i = Math.max(0, from); i + 3 < len; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

const bad = (message: string, status: 400 | 431 | 501 | 505 = 400): HeadParseResult => ({ kind: "error", status, message });

/**
 * Parse the head in `buf[0..len)`. `scanFrom` lets the caller resume the CRLFCRLF search
 * where the previous attempt stopped (bytes may arrive one at a time).
 */
export function parseRequestHead(buf: Uint8Array, len: number, scanFrom = 0): HeadParseResult {
  // RFC 9112 §2.2: ignore at least one empty line before the request-line.
  let start = 0;
  while (start + 1 < len && buf[start] === 13 && buf[start + 1] === 10 && start < 4) start += 2;
  const end = findHeadEnd(buf, len, Math.max(start, scanFrom - 3));
  if (end < 0) return len > MAX_HEAD_BYTES ? bad("request head too large", 431) : { kind: "incomplete" };
  if (end + 4 > MAX_HEAD_BYTES) return bad("request head too large", 431);
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
  const lines = text.split("\r\n");
  const requestLine = lines[0]!;
  const sp1 = requestLine.indexOf(" ");
  const sp2 = requestLine.lastIndexOf(" ");
  if (sp1 <= 0 || sp2 === sp1) return bad("malformed request line");
  const method = requestLine.slice(0, sp1);
  const target = requestLine.slice(sp1 + 1, sp2);
  const versionText = requestLine.slice(sp2 + 1);
  if (!isToken(method)) return bad("invalid method");
  if (target.length === 0) return bad("empty request target");
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return bad("invalid request target");
  }
  if (versionText !== "HTTP/1.1" && versionText !== "HTTP/1.0") {
    return /^HTTP\/[0-9]\.[0-9]$/.test(versionText) ? bad("HTTP version not supported", 505) : bad("malformed request line");
  }
  if (lines.length - 1 > MAX_FIELDS) return bad("too many header fields", 431);
  const headers: Array<[string, string]> = [];
  let contentLength: number | undefined;
  let te: string | undefined;
  let connection = "";
  let expectContinue = false;
  let upgrade = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) return bad(line.length && (line[0] === " " || line[0] === "\t") ? "obsolete line folding" : "malformed header field");
    const name = line.slice(0, colon);
    if (!isToken(name)) return bad("invalid header field name");
    let a = colon + 1;
    let b = line.length;
    while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++;
    while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--;
    const value = line.slice(a, b);
    for (let j = 0; j < value.length; j++) {
      const c = value.charCodeAt(j);
      if ((c < 0x20 && c !== 9) || c === 0x7f) return bad("invalid header field value");
    }
    const lower = name.toLowerCase();
    headers.push([name, value]);
    switch (lower) {
      case "content-length": {
        for (const part of value.split(",")) {
          const v = part.trim();
          if (!/^[0-9]{1,15}$/.test(v)) return bad("invalid content-length");
          const n = Number(v);
          if (contentLength !== undefined && contentLength !== n) return bad("conflicting content-length");
          contentLength = n;
        }
        break;
      }
      case "transfer-encoding":
        te = te === undefined ? value : `${te}, ${value}`;
        break;
      case "connection":
        connection += `,${value.toLowerCase()}`;
        break;
      case "expect":
        if (value.toLowerCase() === "100-continue") expectContinue = true;
        break;
      case "upgrade":
        upgrade = true;
        break;
    }
  }
  let framing: BodyFraming = { kind: "none" };
  if (te !== undefined) {
    if (contentLength !== undefined) return bad("both transfer-encoding and content-length");
    if (te.trim().toLowerCase() !== "chunked") return bad("unsupported transfer-encoding", 501);
    framing = { kind: "chunked" };
  } else if (contentLength !== undefined && contentLength > 0) {
    framing = { kind: "length", length: contentLength };
  }
  const tokens = connection.split(",").map((t) => t.trim());
  const keepAlive = versionText === "HTTP/1.1" ? !tokens.includes("close") : tokens.includes("keep-alive");
  return {
    kind: "ok",
    head: { method, target, version: versionText, headers, framing, keepAlive, expectContinue, upgrade },
    headLength: end + 4,
  };
}
