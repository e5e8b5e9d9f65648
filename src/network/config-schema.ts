/**
 * The `[network_proxy]` table of a Codex `config.toml` as a zod schema (SPEC-network §2),
 * with the defaults of this standalone binary.
 * `config.ts` turns the parsed table into a `RuntimeConfig`.
 *
 * Written with `zod/mini` (same core, same issues, functional API): the classic API builds a
 * method-laden object per schema, which cost ~5 MiB of the proxy's idle RSS. Every message
 * a user can see is set here or rewritten in `issuesFromZod`, so no zod locale is loaded.
 */
import { isAbsolute } from "node:path";
import * as z from "zod/mini";
import { patternProblem, type PatternList } from "./patterns.ts";
import { parseListenAddress } from "./listen-addr.ts";
import type { ConfigIssue } from "./config-error.ts";
import { hookSchema } from "./hooks/config-schema.ts";

/** Default listener addresses and their default ports (SPEC-network §2). */
export const DEFAULT_PROXY_URL = "http://127.0.0.1:3128";
export const DEFAULT_ADMIN_URL = "http://127.0.0.1:8080";
export const DEFAULT_SOCKS_URL = "http://127.0.0.1:8081";
export const DEFAULT_PORTS = { http: 3128, socks: 8081, admin: 8080 } as const;
export const DEFAULT_CA_CERT_PATH = "network_proxy/mitm/ca.pem";
export const DEFAULT_CA_KEY_PATH = "network_proxy/mitm/ca.key";

/** A `string[]` of domain patterns, each checked the way `compilePatterns` will compile it. */
function patternList(list: PatternList) {
  // Refine each element (not the array) so one wrong-typed entry does not hide a bad glob.
  const pattern = z.string().check(
    z.superRefine((p: string, ctx) => {
      const problem = patternProblem(p, list);
      if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
    }),
  );
  return z._default(z.array(pattern), []);
}

/** A listener address string that `parseListenAddress` accepts. */
function listenAddress(defaultUrl: string, defaultPort: number) {
  const address = z.string().check(
    z.superRefine((s: string, ctx) => {
      try {
        parseListenAddress(s, defaultPort);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: e instanceof Error ? e.message : String(e) });
      }
    }),
  );
  return z._default(address, defaultUrl);
}

/** A boolean key with its default. */
const flag = (value: boolean) => z._default(z.boolean(), value);

const policySchema = z.strictObject({
  allowed_domains: patternList("allowed"),
  denied_domains: patternList("denied"),
  allow_local_binding: flag(false),
  allow_unix_sockets: z._default(
    z.array(z.string().check(z.refine((p: string) => isAbsolute(p), { message: "must be an absolute path" }))),
    [],
  ),
});

const nonEmptyPath = z.string().check(z.minLength(1, { message: "must not be empty" }));

const mitmSchema = z.strictObject({
  enabled: flag(false),
  inspect: flag(false),
  max_body_bytes: z._default(z.int().check(z.minimum(0)), 4096),
  ca_cert_path: z._default(nonEmptyPath, DEFAULT_CA_CERT_PATH),
  ca_key_path: z._default(nonEmptyPath, DEFAULT_CA_KEY_PATH),
  hooks: z._default(z.array(hookSchema), []),
  ca_mode: z._default(z.enum(["file", "ephemeral"]), "file"),
});

/** Schema of the `[network_proxy]` table; unknown keys are errors (beyond, §2). */
export const networkProxySchema = z.strictObject({
  enabled: flag(true),
  proxy_url: listenAddress(DEFAULT_PROXY_URL, DEFAULT_PORTS.http),
  admin_url: listenAddress(DEFAULT_ADMIN_URL, DEFAULT_PORTS.admin),
  enable_socks5: flag(true),
  socks_url: listenAddress(DEFAULT_SOCKS_URL, DEFAULT_PORTS.socks),
  enable_socks5_udp: flag(false),
  allow_upstream_proxy: flag(false),
  dangerously_allow_non_loopback_proxy: flag(false),
  dangerously_allow_non_loopback_admin: flag(false),
  mode: z._default(z.enum(["limited", "full"]), "full"),
  policy: z.prefault(policySchema, {}),
  mitm: z.prefault(mitmSchema, {}),
  admin_token_file: z.optional(nonEmptyPath),
  /**
   * Open client connections across the HTTP and SOCKS5 listeners (SPEC-network §12); more are
   * closed at once. Capped at run time by the descriptor limit (connection-cap.ts).
   */
  max_connections: z._default(z.int().check(z.minimum(1)), 8192),
}).check(
  z.superRefine((t, ctx) => {
    // §10: hooks only work on decrypted requests.
    if (t.mitm.hooks.length > 0 && !t.mitm.enabled) {
      ctx.addIssue({ code: "custom", message: "hooks require network_proxy.mitm.enabled = true", path: ["mitm", "hooks"] });
    }
  }),
);

/** The validated `[network_proxy]` table (snake_case, paths still as written). */
export type NetworkProxyTable = z.output<typeof networkProxySchema>;

/** Render a zod path as a TOML key path: `network_proxy.policy.allowed_domains[2]`. */
export function renderPath(path: ReadonlyArray<PropertyKey>, root = "network_proxy"): string {
  let out = root;
  // TOML bare keys are letters, digits, `_` and `-`; other keys are written quoted.
  for (const k of path) out += typeof k === "number" ? `[${k}]` : /^[A-Za-z0-9_-]+$/.test(String(k)) ? `.${String(k)}` : `.${JSON.stringify(String(k))}`;
  return out;
}

/** TOML-ish name of a JS value's type, for "expected boolean, got string". */
function typeName(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "float";
  if (v instanceof Date) return "datetime";
  if (typeof v === "object") return "table";
  return typeof v;
}

/** Value at a zod path inside the raw input (for the "got <type>" part of messages). */
function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = input;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** Turn zod issues into people-readable `ConfigIssue`s (one per unknown key). */
export function issuesFromZod(error: z.core.$ZodError, input: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: renderPath([...issue.path, key]), message: "unknown key" });
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_key") {
      // A record key that failed its own schema: show that schema's message.
      message = issue.issues[0]?.message ?? message;
    } else if (issue.code === "invalid_type") {
      const expected = issue.expected === "int" ? "integer" : issue.expected === "object" ? "table" : issue.expected;
      message = `expected ${expected}, got ${typeName(valueAt(input, issue.path))}`;
    } else if (issue.code === "invalid_value" && "values" in issue) {
      message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${JSON.stringify(valueAt(input, issue.path))}`;
    } else if (issue.code === "too_small" && issue.origin === "number") {
      message = `must be >= ${String(issue.minimum)}`;
    }
    out.push({ path: renderPath(issue.path), message });
  }
  return out;
}
