/**
 * The MITM hooks of a config after validation (SPEC-network §10), as plain data: what
 * `RuntimeConfig.mitm.hooks` holds. No secret is held here, only where to read it from (so
 * `/config` and `check-config` can show the source). A leaf module: types only.
 */

/** A value rule of `match.query` / `match.headers` (§10: literal, `literal:<v>` or `pattern:<glob>`). */
export type ValueRule = { kind: "literal"; value: string } | { kind: "pattern"; glob: string };

/** Where an injected header's secret comes from. */
export type SecretSource = { kind: "file"; path: string } | { kind: "env"; name: string };

/** One `inject_request_headers` entry. */
export interface InjectSpec {
  /** Header name as written (RFC 9110 token). */
  name: string;
  /** Written before the secret, e.g. `Bearer ` (visible ASCII and spaces; may be empty). */
  prefix: string;
  source: SecretSource;
}

/** One `[[network_proxy.mitm.hooks]]` entry. */
export interface HookSpec {
  /** `name`, or null when not given (logs then say `hooks[<index>]`). */
  name: string | null;
  /** A §3.2 host pattern, optionally with `:port`, as written. */
  host: string;
  match: {
    /** Upper-case methods, non-empty. */
    methods: string[];
    /** Raw path prefixes, each starting with `/`, non-empty list. */
    pathPrefixes: string[];
    /** Query parameter name (form-decoded) → accepted values; every listed name must occur. */
    query: Array<[string, ValueRule[]]>;
    /** Header name (lower-case) → accepted values; every listed name must occur. */
    headers: Array<[string, ValueRule[]]>;
  };
  actions: {
    /** Lower-case header names to remove. */
    stripRequestHeaders: string[];
    injectRequestHeaders: InjectSpec[];
  };
}

/** The label of a hook in logs, metrics and hints: its name, else `hooks[<index>]`. */
export function hookLabel(spec: HookSpec, index: number): string {
  return spec.name ?? `hooks[${index}]`;
}
