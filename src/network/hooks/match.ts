/**
 * The MITM hook matcher (SPEC-network §10): which hosts are hooked, and which hook (if any)
 * applies to one decrypted request. Pure and compiled once per config: host patterns through
 * the §3.2 compiler (one matcher for "is this host hooked", one per hook), value rules to
 * tests, methods to sets.
 *
 * A request matches a hook when its host and port, method, raw path prefix, query and headers
 * all match; the first hook in config order wins. An ambiguous path (values.ts) matches no
 * hook. When none matches, the result names the closest hook (the one on the same host that
 * got furthest through the checks) and the first check it failed, for the block's hint.
 */
import { compilePatterns, type DomainMatcher } from "../patterns.ts";
import { hookLabel, type HookSpec } from "./spec.ts";
import { compileValueRules, isAmbiguousPath, parseQuery, type ValueTest } from "./values.ts";

/** What the matcher needs of a decrypted request. */
export interface HookRequest {
  /** Normalised host (SPEC-network §3.1). */
  host: string;
  port: number;
  /** Method as sent (upper-case compare). */
  method: string;
  /** Raw origin-form request-target (`/path?query`), as the client sent it. */
  target: string;
  /** Header fields as received (any name case). */
  headers: ReadonlyArray<readonly [string, string]>;
}

/** One compiled hook. */
export interface CompiledHook {
  /** Position in `network_proxy.mitm.hooks`. */
  readonly index: number;
  /** `name`, or `hooks[<index>]`. */
  readonly label: string;
  readonly spec: HookSpec;
  readonly host: DomainMatcher;
  readonly methods: ReadonlySet<string>;
  readonly query: ReadonlyArray<readonly [string, ValueTest]>;
  readonly headers: ReadonlyArray<readonly [string, ValueTest]>;
}

/** The first check a request failed against a hook. */
export type HookMiss = "method" | "ambiguous_path" | "path" | "query" | "header";

/** Result of matching one request. */
export type HookMatch =
  | { kind: "match"; hook: CompiledHook }
  /** The host is hooked but no hook accepts the request. `closest` is null only without any hook on this host and port. */
  | { kind: "none"; closest: CompiledHook | null; miss: HookMiss | null; detail: string };

/** The compiled hooks of one config. */
export interface HookTable {
  readonly hooks: readonly CompiledHook[];
  /** True when any hook's host pattern matches this normalised host on this port (§10 "hooked"). */
  isHooked(host: string, port: number): boolean;
  /** The hook that applies to `req` (first match in config order), or why none does. */
  match(req: HookRequest): HookMatch;
}

/** Compile hooks (already validated by the config schema). Throws `ConfigError` for a bad host pattern. */
export function compileHooks(specs: readonly HookSpec[]): HookTable {
  const hooks: CompiledHook[] = specs.map((spec, index) => ({
    index,
    label: hookLabel(spec, index),
    spec,
    host: compilePatterns([spec.host], "allowed"),
    methods: new Set(spec.match.methods.map((m) => m.toUpperCase())),
    query: spec.match.query.map(([name, rules]) => [name, compileValueRules(rules)] as const),
    headers: spec.match.headers.map(([name, rules]) => [name.toLowerCase(), compileValueRules(rules)] as const),
  }));
  const anyHost = compilePatterns(
    specs.map((s) => s.host),
    "allowed",
  );
  return {
    hooks,
    isHooked: (host, port) => hooks.length > 0 && anyHost.matches(host, port) !== null,
    match: (req) => matchHooks(hooks, req),
  };
}

/** Order of the checks; a later miss means the hook came closer. */
const DEPTH: Record<HookMiss, number> = { method: 0, ambiguous_path: 1, path: 1, query: 2, header: 3 };

function matchHooks(hooks: readonly CompiledHook[], req: HookRequest): HookMatch {
  let closest: CompiledHook | null = null;
  let closestMiss: HookMiss | null = null;
  let closestDetail = "";
  // A fragment is never sent upstream (the forwarder cuts it): neither is it matched.
  const hash = req.target.indexOf("#");
  const target = hash < 0 ? req.target : req.target.slice(0, hash);
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? "" : target.slice(q + 1);
  const ambiguous = !path.startsWith("/") || isAmbiguousPath(path);
  let query: Array<[string, string]> | null | undefined;
  const method = req.method.toUpperCase();
  for (const hook of hooks) {
    if (hook.host.matches(req.host, req.port) === null) continue;
    const miss = firstMiss(hook, method, path, ambiguous, req, () => (query === undefined ? (query = parseQuery(rawQuery)) : query));
    if (miss === null) return { kind: "match", hook };
    if (closest === null || DEPTH[miss.miss] > DEPTH[closestMiss!]) {
      closest = hook;
      closestMiss = miss.miss;
      closestDetail = miss.detail;
    }
  }
  return { kind: "none", closest, miss: closestMiss, detail: closestDetail };
}

function firstMiss(
  hook: CompiledHook,
  method: string,
  path: string,
  ambiguous: boolean,
  req: HookRequest,
  query: () => Array<[string, string]> | null,
): { miss: HookMiss; detail: string } | null {
  if (!hook.methods.has(method)) return { miss: "method", detail: `allows methods ${[...hook.methods].join(", ")}` };
  if (ambiguous) {
    return { miss: "ambiguous_path", detail: "the request path is ambiguous (dot segment, backslash, malformed or encoded /, \\ or %) and matches no hook" };
  }
  if (!hook.spec.match.pathPrefixes.some((p) => path.startsWith(p))) {
    return { miss: "path", detail: `allows paths starting with ${hook.spec.match.pathPrefixes.join(", ")}` };
  }
  if (hook.query.length > 0) {
    const params = query();
    for (const [name, accepts] of hook.query) {
      if (!allAccepted(params, name, accepts, false)) return { miss: "query", detail: `requires query parameter ${JSON.stringify(name)} with an accepted value` };
    }
  }
  for (const [name, accepts] of hook.headers) {
    if (!allAccepted(req.headers, name, accepts, true)) return { miss: "header", detail: `requires header ${JSON.stringify(name)} with an accepted value` };
  }
  return null;
}

/**
 * Whether `name` occurs in `fields` at least once and every occurrence has an accepted value
 * (§10: a second, unchecked value must not slip through). Null fields (an undecodable query)
 * accept nothing.
 */
function allAccepted(
  fields: ReadonlyArray<readonly [string, string]> | null,
  name: string,
  accepts: ValueTest,
  foldCase: boolean,
): boolean {
  if (fields === null) return false;
  let seen = false;
  for (const [k, v] of fields) {
    const same = foldCase ? k.length === name.length && k.toLowerCase() === name : k === name;
    if (!same) continue;
    if (!accepts(v)) return false;
    seen = true;
  }
  return seen;
}

/**
 * The hint of a `mitm_hook_denied` block (§4 `hint`, §10 "hint naming the closest hook"):
 * which hook came closest and what it needs. Never contains the query or header values of the
 * request (they may carry credentials).
 */
export function hookHint(m: Extract<HookMatch, { kind: "none" }>): string {
  if (m.closest === null) return "no MITM hook covers this host and port (network_proxy.mitm.hooks)";
  return `no MITM hook matched; closest is "${m.closest.label}" (network_proxy.mitm.hooks[${m.closest.index}]), which ${m.detail}`;
}
