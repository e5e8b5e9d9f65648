/**
 * Domain pattern matching for `allowed_domains`, `denied_domains` and MITM hook hosts
 * (SPEC-network §3.2).
 *
 * (beyond) A pattern may end in `:port` (`[v6]:port` for IPv6): it then matches that port only;
 * without a port it matches every port. Patterns are grouped by port (one group for "every
 * port", one per named port); each group is compiled once per config into: a map of exact hosts; one map keyed by domain
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
   * The configured pattern that matches a **normalised** host (see `normalizeHost`) on `port`,
   * or null. Patterns without a port match every port. When several match, any one of them is
   * returned (port-less and exact entries are preferred).
   */
  matches(host: string, port: number): string | null;
  /**
   * The configured pattern that equals a normalised host exactly with no wildcard (and names
   * `port` or no port), or null. Used by the local-literal exemption (§3.3 step 4: `*` and globs
   * never count).
   */
  exact(host: string, port: number): string | null;
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

/** Lowercase, strip trailing dots, punycode plain labels: for glob patterns (port already split off). */
function normalizeGlob(p: string): string {
  let s = p.toLowerCase();
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
 * Split the optional port off a pattern (§3.2, beyond): `host:443`, `*.x.com:8443`,
 * `[v6]:443`. A bracketed IPv6 literal without `:port` and a bare IPv6 literal (several
 * colons) have no port. Returns the host part (brackets kept) and the port or null.
 * Throws `ConfigError` (`invalid port in pattern: <p>`) for a port that is not 1..65535.
 */
export function splitPatternPort(pattern: string): { host: string; port: number | null } {
  const p = pattern.trim();
  let host = p;
  let port: string | null = null;
  if (p.startsWith("[")) {
    const end = p.indexOf("]");
    if (end > 0 && end < p.length - 1) {
      if (p[end + 1] !== ":") throw new ConfigError(`invalid host pattern: ${pattern}`);
      host = p.slice(0, end + 1);
      port = p.slice(end + 2);
    }
  } else {
    const colon = p.indexOf(":");
    if (colon >= 0 && p.indexOf(":", colon + 1) < 0) {
      host = p.slice(0, colon);
      port = p.slice(colon + 1);
    }
  }
  if (port === null) return { host, port: null };
  const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : 0;
  if (n < 1 || n > 65535) throw new ConfigError(`invalid port in pattern: ${pattern}`);
  return { host, port: n };
}

/**
 * Normalise and classify one pattern (§3.2) and split off its port. Throws `ConfigError` with
 * the problem (`invalid glob pattern: <p>`, `invalid host pattern: <p>`, `invalid port in
 * pattern: <p>`, the global wildcard in a deny list).
 */
function classify(pattern: string, list: PatternList): Classified & { port: number | null } {
  const trimmed = pattern.trim();
  if (trimmed === "") throw new ConfigError(`empty domain pattern`);
  const shape = patternShapeProblem(trimmed);
  if (shape !== null) throw new ConfigError(shape);
  const split = splitPatternPort(pattern);
  const p = split.host;
  if (p === "") throw new ConfigError(`invalid host pattern: ${pattern}`);
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
  return { ...out, port: split.port };
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
 * list only), other globs with `*` crossing dots; an optional `:port` (`[v6]:port`) limits a
 * pattern to that port; case-insensitive, duplicates harmless.
 * Throws `ConfigError` (`invalid glob pattern: <p>` etc.) on the first bad pattern.
 */
export function compilePatterns(patterns: string[], list: PatternList): DomainMatcher {
  const anyPort: Array<Classified & { pattern: string }> = [];
  const byPort = new Map<number, Array<Classified & { pattern: string }>>();
  for (const pattern of patterns) {
    const c = classify(pattern, list);
    if (c.port === null) anyPort.push({ ...c, pattern });
    else {
      let g = byPort.get(c.port);
      if (g === undefined) byPort.set(c.port, (g = []));
      g.push({ ...c, pattern });
    }
  }
  const any = compileGroup(anyPort);
  const ported = new Map<number, HostMatcher>();
  for (const [port, group] of byPort) ported.set(port, compileGroup(group));
  const frozen = Object.freeze([...patterns]);
  // The common case (no port-scoped pattern) costs nothing more than before.
  if (ported.size === 0) return { patterns: frozen, matches: (host) => any.matches(host), exact: (host) => any.exact(host) };
  return {
    patterns: frozen,
    matches: (host, port) => any.matches(host) ?? ported.get(port)?.matches(host) ?? null,
    exact: (host, port) => any.exact(host) ?? ported.get(port)?.exact(host) ?? null,
  };
}

/** One port group of a pattern list: host matching only. */
interface HostMatcher {
  matches(host: string): string | null;
  exact(host: string): string | null;
}

/** Compile the classified patterns of one port group (see the module comment). */
function compileGroup(classified: Array<Classified & { pattern: string }>): HostMatcher {
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
  for (const c of classified) {
    const pattern = c.pattern;
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
  return {
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
