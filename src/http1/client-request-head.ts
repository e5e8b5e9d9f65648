/**
 * Request-head writer (RFC 9112 §3 request line, §5 field lines).
 *
 * The whole head is built into ONE freshly allocated Uint8Array so that a secret header
 * (the API key, SPEC §1.3) is copied byte-for-byte from its locked page into a buffer the
 * caller can zero once the socket took it. The secret bytes are never turned into a JS
 * string: they are validated and copied with a byte loop.
 */

import type { RawFields } from "./types.ts";
import { TCHAR } from "./grammar.ts";

/**
 * A header whose value must never be a JS string: written as `<name>: <prefix><value bytes>`,
 * the bytes copied from their (locked) page into the head buffer. `prefix` is not secret.
 */
export interface SecretField {
  name: string;
  prefix?: string;
  value: Uint8Array;
}

/** How the client frames the request body (RFC 9112 §6). */
export type RequestFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" };

/** Everything the head needs; strings are written as Latin-1 bytes after validation. */
export interface RequestHeadInput {
  method: string;
  /** origin-form (`/path?q`) or absolute-form (`http://h/path`) request-target. */
  target: string;
  headers: ReadonlyArray<readonly [string, string]>;
  /** More fields as byte ranges, written after `headers` (see ClientRequest.rawFields). */
  rawFields?: RawFields;
  secretHeader?: SecretField;
  /** More secret fields (MITM hook credentials), written after `secretHeader`. */
  secretHeaders?: ReadonlyArray<SecretField>;
  framing: RequestFraming;
  /** Extra fields the client owns (e.g. `proxy-authorization`), written after the caller's. */
  extra?: ReadonlyArray<readonly [string, string]>;
  /**
   * Body bytes appended after the empty line, so head and a small body go out in one write
   * (the whole buffer is zeroed after the write, body included). Must match `framing`.
   */
  inlineBody?: Uint8Array;
  /** The range of `inlineBody` to append (defaults 0 and its length). */
  inlineStart?: number;
  inlineEnd?: number;
}

/** Header names the client owns (dropped from the caller's list; see ClientRequest.headers). */
const OWNED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);


/** True when `s` is a non-empty RFC 9110 token (method, field name). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** field-value byte rule (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text; no CR, LF, NUL or other CTL. */
function isFieldByte(c: number): boolean {
  return c === 0x09 || (c >= 0x20 && c !== 0x7f && c <= 0xff);
}

function checkValue(name: string, v: string): void {
  for (let i = 0; i < v.length; i++) {
    if (!isFieldByte(v.charCodeAt(i))) {
      // The value itself is never echoed: it may be a credential.
      throw new TypeError(`invalid byte in value of request header "${name}"`);
    }
  }
}

function checkTarget(t: string): void {
  if (t.length === 0) throw new TypeError("empty request-target");
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) throw new TypeError("invalid byte in request-target");
  }
}

function put(buf: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i);
  return at + s.length;
}

/**
 * Build the request head: request line, the caller's fields (minus the framing fields the
 * client owns and any field named like a secret field: a client's own value never rides next
 * to ours), the secret fields, the framing field, the extra fields, the empty line, and
 * `inlineBody` when given.
 * @returns a new Uint8Array owned by the caller (zero it after the write when it holds a secret)
 * @throws TypeError on an invalid method, target, field name or field value (messages name the
 *   field, never its value)
 */
export function buildRequestHead(input: RequestHeadInput): Uint8Array {
  const { method, target, framing } = input;
  if (!isToken(method)) throw new TypeError("invalid request method");
  checkTarget(target);
  const secrets: ReadonlyArray<SecretField> | null =
    input.secretHeaders && input.secretHeaders.length > 0
      ? input.secretHeader
        ? [input.secretHeader, ...input.secretHeaders]
        : input.secretHeaders
      : input.secretHeader
        ? [input.secretHeader]
        : null;
  const secretNames = secrets === null ? null : secrets.map((f) => f.name.toLowerCase());
  const fields: Array<readonly [string, string]> = [];
  for (const h of input.headers) {
    const lower = h[0].toLowerCase();
    if (OWNED.has(lower)) continue;
    if (secretNames !== null && secretNames.includes(lower)) continue;
    if (!isToken(h[0])) throw new TypeError("invalid request header name");
    checkValue(h[0], h[1]);
    fields.push(h);
  }
  if (framing.kind === "length") {
    if (!Number.isSafeInteger(framing.length) || framing.length < 0) throw new TypeError("invalid content-length");
    fields.push(["content-length", String(framing.length)]);
  } else if (framing.kind === "chunked") {
    fields.push(["transfer-encoding", "chunked"]);
  }
  for (const h of input.extra ?? []) {
    if (!isToken(h[0])) throw new TypeError("invalid request header name");
    checkValue(h[0], h[1]);
    fields.push(h);
  }

  let size = method.length + 1 + target.length + 11; // " HTTP/1.1\r\n"
  for (const [n, v] of fields) size += n.length + 2 + v.length + 2;
  const raw = input.rawFields;
  if (raw) size += rawFieldsSize(raw, input.headers, secretNames);
  if (secrets !== null) {
    for (const f of secrets) {
      if (!isToken(f.name)) throw new TypeError("invalid secret header name");
      const prefix = f.prefix ?? "";
      checkValue(f.name, prefix);
      const sv = f.value;
      for (let i = 0; i < sv.length; i++) {
        if (!isFieldByte(sv[i]!)) throw new TypeError(`invalid byte in value of request header "${f.name}"`);
      }
      size += f.name.length + 2 + prefix.length + sv.length + 2;
    }
  }
  size += 2;
  const inline = input.inlineBody;
  const inStart = input.inlineStart ?? 0;
  const inEnd = input.inlineEnd ?? inline?.length ?? 0;
  if (inline && (framing.kind !== "length" || framing.length !== inEnd - inStart || inStart < 0 || inEnd > inline.length)) {
    throw new TypeError("inline body does not match the framing");
  }
  if (inline) size += inEnd - inStart;

  // A dedicated (not pooled) buffer: zeroing it must not touch anyone else's bytes.
  const buf = new Uint8Array(size);
  let at = put(buf, 0, method);
  buf[at++] = 0x20;
  at = put(buf, at, target);
  at = put(buf, at, " HTTP/1.1\r\n");
  // Secret first after the request line is no better or worse than last; keep the caller's order
  // and put it right after the caller's fields so `host` stays first when the caller put it first.
  const callerCount = fields.length - (framing.kind === "none" ? 0 : 1) - (input.extra?.length ?? 0);
  for (let i = 0; i < fields.length; i++) {
    if (i === callerCount) {
      if (raw) at = putRaw(buf, at, raw, input.headers, secretNames);
      if (secrets !== null) for (const f of secrets) at = putSecret(buf, at, f);
    }
    const [n, v] = fields[i]!;
    at = put(buf, at, n);
    buf[at++] = 0x3a;
    buf[at++] = 0x20;
    at = put(buf, at, v);
    buf[at++] = 0x0d;
    buf[at++] = 0x0a;
  }
  if (callerCount === fields.length) {
    if (raw) at = putRaw(buf, at, raw, input.headers, secretNames);
    if (secrets !== null) for (const f of secrets) at = putSecret(buf, at, f);
  }
  buf[at++] = 0x0d;
  buf[at++] = 0x0a;
  if (inline) {
    if (inStart === 0 && inEnd === inline.length) buf.set(inline, at);
    // A small range is copied by a loop: a view of a fresh socket chunk costs more than the copy.
    else if (inEnd - inStart <= 1024) for (let i = inStart; i < inEnd; i++) buf[at++] = inline[i]!;
    else buf.set(inline.subarray(inStart, inEnd), at);
  }
  return buf;
}

/** Lower-case name matching on bytes (tchar bytes: `| 0x20` folds only A–Z). */
function rawNameIs(b: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if ((b[start + i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Whether raw field `i` is skipped: a framing field the client owns, or named in `headers` or as a secret. */
function skipRaw(
  b: Uint8Array,
  ns: number,
  ne: number,
  headers: ReadonlyArray<readonly [string, string]>,
  secretNames: readonly string[] | null,
): boolean {
  const n = ne - ns;
  if (n === 14 || n === 17 || n === 10) {
    for (const o of OWNED) if (rawNameIs(b, ns, ne, o)) return true;
  }
  if (secretNames !== null) for (const s of secretNames) if (rawNameIs(b, ns, ne, s)) return true;
  for (const h of headers) if (h[0].length === n && rawNameIs(b, ns, ne, h[0].toLowerCase())) return true;
  return false;
}

/**
 * Bytes the kept raw fields take in the head; validates them.
 * @throws TypeError for an invalid name or value (naming no value)
 */
function rawFieldsSize(raw: RawFields, headers: ReadonlyArray<readonly [string, string]>, secretNames: readonly string[] | null): number {
  const { bytes: b, fields: f } = raw;
  let size = 0;
  for (let i = 0; i < f.length; i += 4) {
    const ns = f[i]!, ne = f[i + 1]!;
    if (skipRaw(b, ns, ne, headers, secretNames)) continue;
    if (ne === ns) throw new TypeError("invalid request header name");
    for (let j = ns; j < ne; j++) {
      const c = b[j]!;
      if (c >= 128 || TCHAR[c] === 0) throw new TypeError("invalid request header name");
    }
    const vs = f[i + 2]!, ve = f[i + 3]!;
    for (let j = vs; j < ve; j++) {
      if (!isFieldByte(b[j]!)) throw new TypeError(`invalid byte in value of request header "${latin1Name(b, ns, ne)}"`);
    }
    size += ne - ns + ve - vs + 4;
  }
  return size;
}

function latin1Name(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Write the kept raw fields as `lower-case-name: value\r\n` (byte loops: fields are short). */
function putRaw(
  buf: Uint8Array,
  at: number,
  raw: RawFields,
  headers: ReadonlyArray<readonly [string, string]>,
  secretNames: readonly string[] | null,
): number {
  const { bytes: b, fields: f } = raw;
  for (let i = 0; i < f.length; i += 4) {
    const ns = f[i]!, ne = f[i + 1]!;
    if (skipRaw(b, ns, ne, headers, secretNames)) continue;
    for (let j = ns; j < ne; j++) {
      const c = b[j]!;
      buf[at++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    buf[at++] = 0x3a;
    buf[at++] = 0x20;
    const vs = f[i + 2]!, ve = f[i + 3]!;
    if (ve - vs > 64) {
      buf.set(b.subarray(vs, ve), at);
      at += ve - vs;
    } else for (let j = vs; j < ve; j++) buf[at++] = b[j]!;
    buf[at++] = 0x0d;
    buf[at++] = 0x0a;
  }
  return at;
}

function putSecret(buf: Uint8Array, at: number, h: SecretField): number {
  at = put(buf, at, h.name);
  buf[at++] = 0x3a;
  buf[at++] = 0x20;
  if (h.prefix) at = put(buf, at, h.prefix);
  buf.set(h.value, at);
  at += h.value.length;
  buf[at++] = 0x0d;
  buf[at++] = 0x0a;
  return at;
}

/**
 * Check a caller-supplied request-target (ClientRequest.target): origin-form starting with
 * `/` (RFC 9112 §3.2.1), or `*` for OPTIONS only (asterisk-form, §3.2.4); visible ASCII
 * only. The target is not echoed in the message (it may carry a token in its query).
 * @throws TypeError when the target is not acceptable
 */
export function checkOriginTarget(target: string, method: string): void {
  if (target === "*") {
    if (method !== "OPTIONS") throw new TypeError("request-target * is only valid for OPTIONS");
    return;
  }
  if (!target.startsWith("/")) throw new TypeError("request-target must start with /");
  checkTarget(target);
}

/**
 * The origin-form request-target (RFC 9112 §3.2.1): `target` verbatim when given, else path
 * and query as in `url.href`.
 */
export function originForm(url: URL, target?: string): string {
  return target ?? url.pathname + url.search;
}

/**
 * The absolute-form request-target for a proxy (RFC 9112 §3.2.2): no userinfo, no fragment;
 * `target` (verbatim) replaces path and query when given, and `*` leaves the authority
 * alone (§3.2.4: the last proxy turns `OPTIONS scheme://authority` into `OPTIONS *`).
 */
export function absoluteForm(url: URL, target?: string): string {
  const origin = `${url.protocol}//${url.host}`;
  if (target === undefined) return `${origin}${url.pathname}${url.search}`;
  return target === "*" ? origin : origin + target;
}
