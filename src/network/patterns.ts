/**
 * Domain pattern matching for `allowed_domains` / `denied_domains` (SPEC-network §3.2).
 *
 * Patterns are compiled once per config into: a map of exact hosts; one map keyed by domain
 * suffix holding the `*.x` (strict subdomains) and `**.x` (apex + subdomains) entries and the
 * picomatch regexes of globs whose literal tail ends in that suffix; the few globs without such
 * a tail; and a flag for the global `*`. A lookup is one Map probe per label of the host plus
 * the regexes of the globs that share one of its suffixes, whatever the number of patterns.
 */
import picomatch from "picomatch";
import { ConfigError } from "./config-error.ts";
import { isIpLiteral, normalizeHost } from "./host.ts";
import { patternShapeProblem } from "./pattern-shape.ts";

/** A compiled pattern list. */
export interface DomainMatcher {
  /** The configured pattern strings, as given (for `/patterns` and hints). */
  readonly patterns: readonly string[];
  /**
   * The configured pattern that matches a **normalised** host (see `normalizeHost`), or null.
   * When several match, any one of them is returned (exact entries are preferred).
   */
  matches(host: string): string | null;
  /**
   * The configured pattern that equals a normalised host exactly with no wildcard, or null.
   * Used by the local-literal exemption (§3.3 step 4: `*` and globs never count).
   */
  exact(host: string): string | null;
}

/** Which list a pattern belongs to: the global `*` is only valid in `allowed`. */
export type PatternList = "allowed" | "denied";

/** Glob metacharacters: a pattern holding any of these (beyond the known prefixes) is a glob. */
const GLOB_CHARS = /[*?[\]{}()!|+@\\]/;

/**
 * picomatch options: hosts have no `/`, so `*` already crosses dots; `dot` lets `*` match a
 * label-leading position, `strictBrackets` turns `[` without `]` into an error instead of a
 * literal, and negation/extglobs are off so `!x` or `+(x)` can never invert an allowlist.
 */
const PICO_OPTS = { dot: true, strictBrackets: true, nonegate: true, noextglob: true } as const;

/** A pattern after normalisation and classification. */
type Classified =
  | { kind: "all" }
  | { kind: "exact"; host: string }
  | { kind: "sub"; suffix: string }
  | { kind: "apex"; suffix: string }
  | { kind: "glob"; glob: string };

/** Lowercase, drop one `:port`, strip trailing dots, punycode plain labels: for glob patterns. */
function normalizeGlob(p: string): string {
  let s = p.toLowerCase();
  const colon = s.indexOf(":");
  if (colon >= 0 && s.indexOf(":", colon + 1) < 0) s = s.slice(0, colon);
  s = s.replace(/\.+$/, "");
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(s)) {
    s = s
      .split(".")
      .map((label) => (GLOB_CHARS.test(label) ? label : normalizeHost(label) || label))
      .join(".");
  }
  return s;
}

/** Normalise the domain part after a `*.`/`**.` prefix, or a whole non-prefixed pattern. */
function normalizeRest(rest: string): { kind: "exact"; host: string } | { kind: "glob"; glob: string } | null {
  if (rest.startsWith("[")) {
    const h = normalizeHost(rest);
    if (isIpLiteral(h)) return { kind: "exact", host: h };
  }
  if (GLOB_CHARS.test(rest)) return { kind: "glob", glob: normalizeGlob(rest) };
  const host = normalizeHost(rest);
  return host === "" ? null : { kind: "exact", host };
}

/**
 * Normalise and classify one pattern (§3.2). Throws `ConfigError` with the problem
 * (`invalid glob pattern: <p>`, `invalid host pattern: <p>`, the global wildcard in a deny list).
 */
function classify(pattern: string, list: PatternList): Classified {
  const p = pattern.trim();
  if (p === "") throw new ConfigError(`empty domain pattern`);
  const shape = patternShapeProblem(p);
  if (shape !== null) throw new ConfigError(shape);
  let out: Classified;
  if (p === "*") {
    out = { kind: "all" };
  } else {
    const prefix = p.startsWith("**.") ? "**." : p.startsWith("*.") ? "*." : "";
    const rest = normalizeRest(p.slice(prefix.length));
    if (rest === null) throw new ConfigError(`invalid host pattern: ${pattern}`);
    if (rest.kind === "glob") out = { kind: "glob", glob: prefix + rest.glob };
    else if (prefix === "*.") out = { kind: "sub", suffix: rest.host };
    else if (prefix === "**.") out = { kind: "apex", suffix: rest.host };
    else out = rest;
  }
  if (out.kind === "glob") {
    try {
      picomatch.makeRe(out.glob, PICO_OPTS);
    } catch {
      throw new ConfigError(`invalid glob pattern: ${pattern}`);
    }
  }
  if (list === "denied" && (out.kind === "all" || (out.kind === "glob" && /^[*.]+$/.test(out.glob)))) {
    throw new ConfigError(
      `unsupported global wildcard domain pattern "${pattern}" in denied_domains; ` +
        `use exact hosts or scoped wildcards like *.example.com or **.example.com`,
    );
  }
  return out;
}

/**
 * The problem with one pattern, or null when it compiles. Config validation uses this to
 * report the key path of the offending entry.
 */
export function patternProblem(pattern: string, list: PatternList): string | null {
  try {
    classify(pattern, list);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Compile a pattern list once (SPEC-network §3.2): `example.com` exact, `*.example.com`
 * strict subdomains at any depth, `**.example.com` apex + subdomains, `*` every host (allowed
 * list only), other globs with `*` crossing dots; case-insensitive, duplicates harmless.
 * Throws `ConfigError` (`invalid glob pattern: <p>` etc.) on the first bad pattern.
 */
export function compilePatterns(patterns: string[], list: PatternList): DomainMatcher {
  const exact = new Map<string, string>();
  // Keyed by a domain suffix: the `*.x` / `**.x` entry for x, and the globs whose literal tail
  // ends in ".x" (a host can only match them when x is one of its dot-suffixes).
  const suffixes = new Map<string, SuffixEntry>();
  const entry = (key: string): SuffixEntry => {
    let e = suffixes.get(key);
    if (e === undefined) suffixes.set(key, (e = { sub: null, apex: null, globs: [] }));
    return e;
  };
  const unindexed: Glob[] = [];
  let all: string | null = null;
  for (const pattern of patterns) {
    const c = classify(pattern, list);
    switch (c.kind) {
      case "all":
        all ??= pattern;
        break;
      case "exact":
        if (!exact.has(c.host)) exact.set(c.host, pattern);
        break;
      case "sub":
        entry(c.suffix).sub ??= pattern;
        break;
      case "apex":
        entry(c.suffix).apex ??= pattern;
        break;
      case "glob": {
        const g = { re: picomatch.makeRe(c.glob, PICO_OPTS), pattern };
        const key = globSuffixKey(c.glob);
        if (key === null) unindexed.push(g);
        else entry(key).globs.push(g);
        break;
      }
    }
  }
  const frozen = Object.freeze([...patterns]);

  return {
    patterns: frozen,
    exact: (host) => exact.get(host) ?? null,
    matches(host: string): string | null {
      if (host === "") return null;
      const e = exact.get(host) ?? suffixes.get(host)?.apex;
      if (e != null) return e;
      let candidates: Glob[] | null = null;
      if (suffixes.size > 0) {
        for (let i = host.indexOf("."); i >= 0; i = host.indexOf(".", i + 1)) {
          const s = suffixes.get(host.slice(i + 1));
          if (s === undefined) continue;
          const hit = s.sub ?? s.apex;
          if (hit !== null) return hit;
          if (s.globs.length > 0) candidates = candidates === null ? s.globs : candidates.concat(s.globs);
        }
      }
      if (candidates !== null) for (const g of candidates) if (g.re.test(host)) return g.pattern;
      for (const g of unindexed) if (g.re.test(host)) return g.pattern;
      return all;
    },
  };
}

interface Glob {
  re: RegExp;
  pattern: string;
}

interface SuffixEntry {
  sub: string | null;
  apex: string | null;
  globs: Glob[];
}

/**
 * The index key of a glob: its literal tail (after the last metacharacter) from the tail's
 * first dot on, e.g. `region*.v2.argotunnel.com` → `v2.argotunnel.com`. Any host the glob
 * matches ends with the tail, so it has the key as a dot-suffix. Null when the tail holds no
 * dot (`*.example.*`, `api-?`): such globs are tested against every host.
 */
function globSuffixKey(glob: string): string | null {
  let last = -1;
  for (let i = 0; i < glob.length; i++) if (GLOB_CHARS.test(glob[i])) last = i;
  const tail = glob.slice(last + 1);
  const dot = tail.indexOf(".");
  if (dot < 0 || dot === tail.length - 1) return null;
  return tail.slice(dot + 1);
}
