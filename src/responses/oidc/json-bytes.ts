/**
 * A strict JSON (RFC 8259) reader over bytes, for token responses that carry a secret: it
 * validates the whole document and reports where each top-level member's value lies, so a
 * secret string can be decoded straight into locked memory (`decodeJsonString`) and never
 * becomes a JS string. Non-secret members may be turned into values with `JSON.parse` on their
 * span.
 *
 * Strictness follows serde_json (the reference's parser): no trailing commas, no comments,
 * strings must be valid UTF-8 without raw control characters, nesting depth at most 128,
 * only whitespace around the document.
 */

/** One top-level member of an object document: the value's kind and its byte span `[start, end)`. */
export interface JsonMember {
  kind: "string" | "number" | "object" | "array" | "true" | "false" | "null";
  /** For strings the span includes the quotes. */
  start: number;
  end: number;
  /** The key occurred more than once (serde rejects duplicate known fields). */
  duplicate: boolean;
}

/** Nesting limit of serde_json's default recursion guard. */
const MAX_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWs(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

/** Length of the UTF-8 sequence at `i` (RFC 3629, no overlongs, no surrogates), or 0 if invalid. */
function utf8SequenceLength(bytes: Uint8Array, i: number, end: number): number {
  const b = bytes[i]!;
  if (b < 0x80) return 1;
  let n: number;
  let min: number;
  let cp: number;
  if (b >= 0xc2 && b <= 0xdf) [n, min, cp] = [2, 0x80, b & 0x1f];
  else if (b >= 0xe0 && b <= 0xef) [n, min, cp] = [3, 0x800, b & 0x0f];
  else if (b >= 0xf0 && b <= 0xf4) [n, min, cp] = [4, 0x10000, b & 0x07];
  else return 0;
  if (i + n > end) return 0;
  for (let k = 1; k < n; k++) {
    const c = bytes[i + k]!;
    if ((c & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/** Read four hex digits at `i`; -1 if they are not. */
function hex4(bytes: Uint8Array, i: number, end: number): number {
  if (i + 4 > end) return -1;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const h = hexValue(bytes[i + k]!);
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  return v;
}

/**
 * Walk the string starting at the opening quote `i`; calls `put(byte)` for each decoded UTF-8
 * byte when given. Returns the index after the closing quote, or -1 when the string is invalid
 * (bad escape, lone surrogate escape, raw control character, invalid UTF-8, unterminated).
 */
function walkString(bytes: Uint8Array, i: number, end: number, put: ((b: number) => void) | null): number {
  i++;
  while (i < end) {
    const b = bytes[i]!;
    if (b === QUOTE) return i + 1;
    if (b < 0x20) return -1;
    if (b === BACKSLASH) {
      if (i + 1 >= end) return -1;
      const e = bytes[i + 1]!;
      let cp: number;
      i += 2;
      switch (e) {
        case 0x22: cp = 0x22; break;
        case 0x5c: cp = 0x5c; break;
        case 0x2f: cp = 0x2f; break;
        case 0x62: cp = 0x08; break;
        case 0x66: cp = 0x0c; break;
        case 0x6e: cp = 0x0a; break;
        case 0x72: cp = 0x0d; break;
        case 0x74: cp = 0x09; break;
        case 0x75: {
          cp = hex4(bytes, i, end);
          if (cp < 0) return -1;
          i += 4;
          if (cp >= 0xdc00 && cp <= 0xdfff) return -1;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (bytes[i] !== BACKSLASH || bytes[i + 1] !== 0x75) return -1;
            const lo = hex4(bytes, i + 2, end);
            if (lo < 0xdc00 || lo > 0xdfff) return -1;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
          break;
        }
        default:
          return -1;
      }
      if (put) putCodePoint(cp, put);
      continue;
    }
    const n = utf8SequenceLength(bytes, i, end);
    if (n === 0) return -1;
    if (put) for (let k = 0; k < n; k++) put(bytes[i + k]!);
    i += n;
  }
  return -1;
}

function putCodePoint(cp: number, put: (b: number) => void): void {
  if (cp < 0x80) put(cp);
  else if (cp < 0x800) {
    put(0xc0 | (cp >> 6));
    put(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    put(0xe0 | (cp >> 12));
    put(0x80 | ((cp >> 6) & 0x3f));
    put(0x80 | (cp & 0x3f));
  } else {
    put(0xf0 | (cp >> 18));
    put(0x80 | ((cp >> 12) & 0x3f));
    put(0x80 | ((cp >> 6) & 0x3f));
    put(0x80 | (cp & 0x3f));
  }
}

/** Index after the number at `i` (RFC 8259 §6 grammar), or -1. */
function walkNumber(bytes: Uint8Array, i: number, end: number): number {
  if (bytes[i] === 0x2d) i++;
  if (i >= end) return -1;
  if (bytes[i] === 0x30) i++;
  else if (isDigit(bytes[i]!)) while (i < end && isDigit(bytes[i]!)) i++;
  else return -1;
  if (i < end && bytes[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(bytes[i]!)) return -1;
    while (i < end && isDigit(bytes[i]!)) i++;
  }
  if (i < end && (bytes[i] === 0x65 || bytes[i] === 0x45)) {
    i++;
    if (i < end && (bytes[i] === 0x2b || bytes[i] === 0x2d)) i++;
    if (i >= end || !isDigit(bytes[i]!)) return -1;
    while (i < end && isDigit(bytes[i]!)) i++;
  }
  return i;
}

function walkLiteral(bytes: Uint8Array, i: number, end: number, word: string): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (bytes[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

function skipWs(bytes: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(bytes[i]!)) i++;
  return i;
}

/** Index after the JSON value at `i` (leading whitespace skipped), or -1. `depth` counts open containers. */
function walkValue(bytes: Uint8Array, i: number, end: number, depth: number): number {
  i = skipWs(bytes, i, end);
  if (i >= end) return -1;
  const b = bytes[i]!;
  if (b === QUOTE) return walkString(bytes, i, end, null);
  if (b === 0x2d || isDigit(b)) return walkNumber(bytes, i, end);
  if (b === 0x74) return walkLiteral(bytes, i, end, "true");
  if (b === 0x66) return walkLiteral(bytes, i, end, "false");
  if (b === 0x6e) return walkLiteral(bytes, i, end, "null");
  if (b !== 0x7b && b !== 0x5b) return -1;
  if (depth >= MAX_DEPTH) return -1;
  const isObject = b === 0x7b;
  const close = isObject ? 0x7d : 0x5d;
  i = skipWs(bytes, i + 1, end);
  if (bytes[i] === close) return i + 1;
  for (;;) {
    if (isObject) {
      const k = readKey(bytes, i, end, false);
      if (!k) return -1;
      i = k.next;
    }
    i = walkValue(bytes, i, end, depth + 1);
    if (i < 0) return -1;
    i = skipWs(bytes, i, end);
    if (bytes[i] === 0x2c) {
      i = skipWs(bytes, i + 1, end);
      continue;
    }
    return bytes[i] === close ? i + 1 : -1;
  }
}

function kindAt(b: number): JsonMember["kind"] {
  switch (b) {
    case QUOTE: return "string";
    case 0x7b: return "object";
    case 0x5b: return "array";
    case 0x74: return "true";
    case 0x66: return "false";
    case 0x6e: return "null";
    default: return "number";
  }
}

/**
 * Validate `bytes[0..end)` as one JSON document and, when it is an object, return its
 * top-level members by key (keys decoded; they are never secret). Returns `"invalid"` for a
 * document that is not JSON, `"not-object"` for valid JSON of another type.
 */
export function scanJsonObject(bytes: Uint8Array, end = bytes.length): Map<string, JsonMember> | "invalid" | "not-object" {
  // Past `end` reads give undefined, never bytes of a larger buffer.
  bytes = bytes.subarray(0, end);
  let i = skipWs(bytes, 0, end);
  if (bytes[i] !== 0x7b || i >= end) {
    const after = walkValue(bytes, i, end, 0);
    return after >= 0 && skipWs(bytes, after, end) === end ? "not-object" : "invalid";
  }
  const members = new Map<string, JsonMember>();
  i = skipWs(bytes, i + 1, end);
  if (bytes[i] === 0x7d) i++;
  else
    for (;;) {
      const k = readKey(bytes, i, end, true);
      if (!k) return "invalid";
      const start = skipWs(bytes, k.next, end);
      const next = walkValue(bytes, start, end, 1);
      if (next < 0) return "invalid";
      members.set(k.key, { kind: kindAt(bytes[start]!), start, end: next, duplicate: members.has(k.key) });
      i = skipWs(bytes, next, end);
      if (bytes[i] === 0x2c) {
        i = skipWs(bytes, i + 1, end);
        continue;
      }
      if (bytes[i] !== 0x7d) return "invalid";
      i++;
      break;
    }
  return skipWs(bytes, i, end) === end ? members : "invalid";
}

/** Read `"key"` then `:` starting at `i`; the key is decoded only when `want`. */
function readKey(bytes: Uint8Array, i: number, end: number, want: boolean): { key: string; next: number } | null {
  if (bytes[i] !== QUOTE) return null;
  const out: number[] = [];
  const next = walkString(bytes, i, end, want ? (b) => out.push(b) : null);
  if (next < 0) return null;
  const j = skipWs(bytes, next, end);
  if (bytes[j] !== 0x3a) return null;
  return { key: want ? new TextDecoder().decode(new Uint8Array(out)) : "", next: j + 1 };
}

/**
 * Decode the JSON string at `bytes[start..end)` (quotes included, already validated by
 * {@link scanJsonObject}) into `dst` as UTF-8. Returns the decoded length, or -1 when it does
 * not fit in `dst` (then `dst` is zeroed). No JS string is made.
 */
export function decodeJsonString(bytes: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let n = 0;
  let overflow = false;
  walkString(bytes, start, end, (b) => {
    if (n < dst.length) dst[n] = b;
    else overflow = true;
    n++;
  });
  if (overflow) {
    dst.fill(0);
    return -1;
  }
  return n;
}
