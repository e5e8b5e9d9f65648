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
  // The hooks whose host pattern matches a (host, port), in config order. Hosts repeat (a MITM
  // tunnel serves one host), so the answer is kept in a bounded map instead of testing every
  // hook's pattern per request (bench-policy.ts measures it). Keyed by the host string itself
  // (JSC caches a string's hash; a composed key would be hashed anew each time), then the port.
  const byHost = new Map<string, Array<{ port: number; hooks: readonly CompiledHook[] }>>();
  const candidates = (host: string, port: number): readonly CompiledHook[] => {
    let ports = byHost.get(host);
    if (ports !== undefined) for (const e of ports) if (e.port === port) return e.hooks;
    const found = anyHost.matches(host, port) === null ? NONE : hooks.filter((h) => h.host.matches(host, port) !== null);
    if (ports === undefined) {
      if (byHost.size >= MAX_CACHED_HOSTS) byHost.clear();
      byHost.set(host, (ports = []));
    }
    if (ports.length < MAX_PORTS_PER_HOST) ports.push({ port, hooks: found });
    return found;
  };
  return {
    hooks,
    isHooked: (host, port) => hooks.length > 0 && candidates(host, port).length > 0,
    match: (req) => matchHooks(candidates(req.host, req.port), req),
  };
}

const NONE: readonly CompiledHook[] = Object.freeze([]);
/** Hosts kept in the host → hooks map before it starts over, and ports kept per host. */
const MAX_CACHED_HOSTS = 4096;
const MAX_PORTS_PER_HOST = 8;

/** Order of the checks; a later miss means the hook came closer. */
const DEPTH: Record<HookMiss, number> = { method: 0, ambiguous_path: 1, path: 1, query: 2, header: 3 };

/** Match `req` against the hooks of its host (`candidates`, config order). */
function matchHooks(candidates: readonly CompiledHook[], req: HookRequest): HookMatch {
  if (candidates.length === 0) return { kind: "none", closest: null, miss: null, detail: "" };
  // A fragment is never sent upstream (the forwarder cuts it): neither is it matched.
  const hash = req.target.indexOf("#");
  const target = hash < 0 ? req.target : req.target.slice(0, hash);
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? "" : target.slice(q + 1);
  const ambiguous = !path.startsWith("/") || isAmbiguousPath(path);
  let query: Array<[string, string]> | null | undefined;
  const method = req.method.toUpperCase();
  const failed: { name: string } = { name: "" };
  let closest: CompiledHook | null = null;
  let closestMiss: HookMiss | null = null;
  let closestName = "";
  for (const hook of candidates) {
    let miss: HookMiss | null;
    if (!hook.methods.has(method)) miss = "method";
    else if (ambiguous) miss = "ambiguous_path";
    else if (!hook.spec.match.pathPrefixes.some((p) => path.startsWith(p))) miss = "path";
    else {
      if (hook.query.length > 0 && query === undefined) query = parseQuery(rawQuery);
      miss = fieldsMiss(hook, query ?? null, req.headers, failed);
    }
    if (miss === null) return { kind: "match", hook };
    if (closest === null || DEPTH[miss] > DEPTH[closestMiss!]) {
      closest = hook;
      closestMiss = miss;
      closestName = failed.name;
    }
  }
  return { kind: "none", closest, miss: closestMiss, detail: missDetail(closest!, closestMiss!, closestName) };
}

/** The query and header checks of a hook; `failed.name` names the field that failed. */
function fieldsMiss(
  hook: CompiledHook,
  query: Array<[string, string]> | null,
  headers: ReadonlyArray<readonly [string, string]>,
  failed: { name: string },
): HookMiss | null {
  for (const [name, accepts] of hook.query) {
    if (!allAccepted(query, name, accepts, false)) {
      failed.name = name;
      return "query";
    }
  }
  for (const [name, accepts] of hook.headers) {
    if (!allAccepted(headers, name, accepts, true)) {
      failed.name = name;
      return "header";
    }
  }
  return null;
}

/** What the closest hook needs, for the hint (built only for a request no hook accepted). */
function missDetail(hook: CompiledHook, miss: HookMiss, name: string): string {
  switch (miss) {
    case "method":
      return `allows methods ${[...hook.methods].join(", ")}`;
    case "ambiguous_path":
      return "the request path is ambiguous (dot segment, backslash, malformed or encoded /, \\ or %) and matches no hook";
    case "path":
      return `allows paths starting with ${hook.spec.match.pathPrefixes.join(", ")}`;
    case "query":
      return `requires query parameter ${JSON.stringify(name)} with an accepted value`;
    case "header":
      return `requires header ${JSON.stringify(name)} with an accepted value`;
  }
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
