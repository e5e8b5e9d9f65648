/**
 * The request pieces a MITM hook compares (SPEC-network §10): value rules (literal,
 * `literal:<v>`, `pattern:<glob>`), the ambiguous-path test and form-decoding of the query.
 * Pure functions, compiled once per config; no request string is re-parsed per hook.
 */
import picomatch from "picomatch";
import type { ValueRule } from "./spec.ts";

/** A compiled value rule: true when a (decoded) value is accepted. */
export type ValueTest = (value: string) => boolean;

/**
 * `/` of a value stands in for this in globs: picomatch treats `/` as a path separator that
 * `*` never crosses, while a header or query value is no path. A lone surrogate never comes out
 * of UTF-8 decoding (bad bytes become U+FFFD), so no real value can contain it.
 */
const SLASH = "\uD800";
const PICO_OPTS = { dot: true, strictBrackets: true, nonegate: true, noextglob: true } as const;

/**
 * Parse a configured value (§10): `pattern:<glob>` → a glob (`*` and `?` match any character,
 * `/` included; `[…]` classes), `literal:<v>` → exactly `v`, anything else → exactly itself.
 * Returns the rule, or a problem text (`invalid glob pattern: <glob>`).
 */
export function parseValueRule(raw: string): ValueRule | string {
  if (raw.startsWith("pattern:")) {
    const glob = raw.slice(8);
    try {
      picomatch.makeRe(glob.replaceAll("/", SLASH), PICO_OPTS);
    } catch {
      return `invalid glob pattern: ${glob}`;
    }
    return { kind: "pattern", glob };
  }
  return { kind: "literal", value: raw.startsWith("literal:") ? raw.slice(8) : raw };
}

/** Compile value rules into one test (any rule accepting = accepted). */
export function compileValueRules(rules: readonly ValueRule[]): ValueTest {
  const literals = new Set<string>();
  const globs: RegExp[] = [];
  for (const r of rules) {
    if (r.kind === "literal") literals.add(r.value);
    else globs.push(picomatch.makeRe(r.glob.replaceAll("/", SLASH), PICO_OPTS));
  }
  if (globs.length === 0) return (v) => literals.has(v);
  return (v) => {
    if (literals.has(v)) return true;
    const s = v.includes("/") ? v.replaceAll("/", SLASH) : v;
    for (const re of globs) if (re.test(s)) return true;
    return false;
  };
}

/** `%2f` `%5c` `%25` (any case) — an encoded `/`, `\` or `%` makes a path ambiguous. */
const ENCODED_SEPARATOR = /%(?:2f|5c|25)/i;
/** A `%` not followed by two hex digits. */
const MALFORMED_PERCENT = /%(?![0-9a-f]{2})/i;
/**
 * A `.` or `..` segment, raw or with its dots percent-encoded (`%2e`, any case), also when a
 * `;` parameter follows (`..;/`: servlet containers treat it as `..`).
 */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:[/;]|$)/i;

/**
 * Whether a raw path (request-target before `?`) is ambiguous and so never matches a hook
 * (§10): a `.` or `..` segment (raw or percent-encoded), a backslash, a malformed `%`, or an
 * encoded `/`, `\` or `%` (and, beyond the list, `..;`). Origins and frameworks disagree about such paths, so a prefix check
 * on them proves nothing about the resource the origin will serve.
 */
export function isAmbiguousPath(path: string): boolean {
  if (path.includes("\\")) return true;
  if (!path.includes("%") && !path.includes(".")) return false;
  return ENCODED_SEPARATOR.test(path) || MALFORMED_PERCENT.test(path) || DOT_SEGMENT.test(path);
}

const HEX = /^[0-9a-fA-F]{2}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Form-decode one query component (`application/x-www-form-urlencoded`: `+` is a space,
 * `%XX` a byte, the bytes UTF-8). Null when a `%` is malformed or the bytes are not UTF-8.
 */
export function formDecode(s: string): string | null {
  if (!s.includes("%")) return s.includes("+") ? s.replaceAll("+", " ") : s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c === 0x2b) bytes.push(0x20);
    else if (c < 0x80) bytes.push(c);
    else return null; // a request-target holds visible ASCII only
  }
  try {
    return utf8.decode(new Uint8Array(bytes));
  } catch {
    return null;
  }
}

/**
 * The query of a request-target as decoded `[name, value]` pairs in order (`a` without `=`
 * has the value ""; empty pieces of `&&` are skipped). Null when any piece does not decode:
 * a hook with query rules then does not match (a value it cannot read is not accepted).
 */
export function parseQuery(query: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  if (query === "") return out;
  for (const piece of query.split("&")) {
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    const name = formDecode(eq < 0 ? piece : piece.slice(0, eq));
    const value = eq < 0 ? "" : formDecode(piece.slice(eq + 1));
    if (name === null || value === null) return null;
    out.push([name, value]);
  }
  return out;
}
