/**
 * The `[network_proxy]` table of a Codex `config.toml` as a zod schema (SPEC-network §2),
 * with the defaults of this standalone binary.
 * `config.ts` turns the parsed table into a `RuntimeConfig`.
 */
import { isAbsolute } from "node:path";
import { z } from "zod";
import { patternProblem, type PatternList } from "./patterns.ts";
import { parseListenAddress } from "./listen-addr.ts";
import type { ConfigIssue } from "./config-error.ts";

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
  const pattern = z.string().superRefine((p, ctx) => {
    const problem = patternProblem(p, list);
    if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
  });
  return z.array(pattern).default([]);
}

/** A listener address string that `parseListenAddress` accepts. */
function listenAddress(defaultUrl: string, defaultPort: number) {
  return z
    .string()
    .default(defaultUrl)
    .superRefine((s, ctx) => {
      try {
        parseListenAddress(s, defaultPort);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: e instanceof Error ? e.message : String(e) });
      }
    });
}

const policySchema = z.strictObject({
  allowed_domains: patternList("allowed"),
  denied_domains: patternList("denied"),
  allow_local_binding: z.boolean().default(false),
  allow_unix_sockets: z
    .array(
      z.string().refine((p) => isAbsolute(p), {
        message: "must be an absolute path",
      }),
    )
    .default([]),
});

const nonEmptyPath = z.string().min(1, { message: "must not be empty" });

const mitmSchema = z.strictObject({
  enabled: z.boolean().default(false),
  inspect: z.boolean().default(false),
  max_body_bytes: z.number().int().min(0).default(4096),
  ca_cert_path: nonEmptyPath.default(DEFAULT_CA_CERT_PATH),
  ca_key_path: nonEmptyPath.default(DEFAULT_CA_KEY_PATH),
});

/** Schema of the `[network_proxy]` table; unknown keys are errors (beyond, §2). */
export const networkProxySchema = z.strictObject({
  enabled: z.boolean().default(true),
  proxy_url: listenAddress(DEFAULT_PROXY_URL, DEFAULT_PORTS.http),
  admin_url: listenAddress(DEFAULT_ADMIN_URL, DEFAULT_PORTS.admin),
  enable_socks5: z.boolean().default(true),
  socks_url: listenAddress(DEFAULT_SOCKS_URL, DEFAULT_PORTS.socks),
  enable_socks5_udp: z.boolean().default(false),
  allow_upstream_proxy: z.boolean().default(false),
  dangerously_allow_non_loopback_proxy: z.boolean().default(false),
  dangerously_allow_non_loopback_admin: z.boolean().default(false),
  mode: z.enum(["limited", "full"]).default("full"),
  policy: policySchema.prefault({}),
  mitm: mitmSchema.prefault({}),
  admin_token_file: nonEmptyPath.optional(),
});

/** The validated `[network_proxy]` table (snake_case, paths still as written). */
export type NetworkProxyTable = z.output<typeof networkProxySchema>;

/** Render a zod path as a TOML key path: `network_proxy.policy.allowed_domains[2]`. */
export function renderPath(path: ReadonlyArray<PropertyKey>, root = "network_proxy"): string {
  let out = root;
  for (const k of path) out += typeof k === "number" ? `[${k}]` : `.${String(k)}`;
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
export function issuesFromZod(error: z.ZodError, input: unknown): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: renderPath([...issue.path, key]), message: "unknown key" });
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type") {
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
