/**
 * The `[[network_proxy.mitm.hooks]]` entries as a zod (`zod/mini`) schema (SPEC-network §10),
 * and their conversion to `HookSpec`. Every message a user can see is set here; the config
 * loader adds the file and key path (`network_proxy.mitm.hooks[0].match.methods`).
 *
 * Validated: `host` is a §3.2 pattern (optionally `:port`); `methods` and `path_prefixes` are
 * non-empty; values are literal, `literal:<v>` or `pattern:<glob>` (a bad glob is an error);
 * header names are tokens; each injected header has exactly one of `secret_file` (absolute
 * path) or `secret_env_var`, and a `prefix` without CR, LF, NUL or other controls. Framing
 * and hop-by-hop fields (`host`, `content-length`, `connection`, …) cannot be injected.
 */
import { isAbsolute } from "node:path";
import * as z from "zod/mini";
import { patternProblem } from "../patterns.ts";
import type { HookSpec, InjectSpec, SecretSource, ValueRule } from "./spec.ts";
import { parseValueRule } from "./values.ts";

/** RFC 9110 token (method, field name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field names a hook may not inject: the proxy and the HTTP/1.1 client own them. */
const NOT_INJECTABLE = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
]);

const token = (what: string) =>
  z.string().check(z.refine((s: string) => TOKEN.test(s), { message: `must be an HTTP ${what} (RFC 9110 token)` }));

/** A value rule string, checked the way `parseValueRule` will read it. */
const valueRule = z.string().check(
  z.superRefine((v: string, ctx) => {
    const r = parseValueRule(v);
    if (typeof r === "string") ctx.addIssue({ code: "custom", message: r });
  }),
);
const valueRules = z.array(valueRule).check(z.minLength(1, { message: "must list at least one accepted value" }));

const hostPattern = z.string().check(
  z.superRefine((p: string, ctx) => {
    const problem = patternProblem(p, "allowed");
    if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
  }),
);

const matchSchema = z.strictObject({
  methods: z.array(token("method")).check(z.minLength(1, { message: "must not be empty" })),
  path_prefixes: z
    .array(z.string().check(z.refine((p: string) => p.startsWith("/"), { message: 'must start with "/"' })))
    .check(z.minLength(1, { message: "must not be empty" })),
  query: z._default(z.record(z.string().check(z.minLength(1, { message: "empty parameter name" })), valueRules), {}),
  headers: z._default(z.record(token("field name"), valueRules), {}),
});

/** Visible ASCII, space and tab: a prefix is part of one field value (RFC 9110 §5.5). */
const PREFIX = /^[\t\x20-\x7e]*$/;

const injectSchema = z
  .strictObject({
    name: token("field name").check(
      z.refine((n: string) => !NOT_INJECTABLE.has(n.toLowerCase()), { message: "cannot inject this field (the proxy owns it)" }),
    ),
    prefix: z._default(z.string().check(z.refine((p: string) => PREFIX.test(p), { message: "must be visible ASCII, spaces or tabs" })), ""),
    secret_file: z.optional(
      z.string().check(z.refine((p: string) => isAbsolute(p), { message: "must be an absolute path" })),
    ),
    secret_env_var: z.optional(
      z.string().check(z.refine((n: string) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n), { message: "must be an environment variable name" })),
    ),
  })
  .check(
    z.superRefine((v, ctx) => {
      if ((v.secret_file === undefined) === (v.secret_env_var === undefined)) {
        ctx.addIssue({ code: "custom", message: "exactly one of secret_file or secret_env_var is required", path: [] });
      }
    }),
  );

const actionsSchema = z.strictObject({
  strip_request_headers: z._default(z.array(token("field name")), []),
  inject_request_headers: z._default(z.array(injectSchema), []),
});

/** One `[[network_proxy.mitm.hooks]]` table. */
export const hookSchema = z.strictObject({
  name: z.optional(z.string().check(z.minLength(1, { message: "must not be empty" }))),
  host: hostPattern,
  match: matchSchema,
  actions: z.prefault(actionsSchema, {}),
});

/** The validated TOML shape of one hook. */
export type HookTable = z.output<typeof hookSchema>;

const toRule = (raw: string): ValueRule => parseValueRule(raw) as ValueRule;

/** A validated hook table → `HookSpec` (methods upper-case, header names lower-case). */
export function hookSpecOf(t: HookTable): HookSpec {
  return {
    name: t.name ?? null,
    host: t.host,
    match: {
      methods: t.match.methods.map((m) => m.toUpperCase()),
      pathPrefixes: [...t.match.path_prefixes],
      query: Object.entries(t.match.query).map(([k, v]) => [k, v.map(toRule)]),
      headers: Object.entries(t.match.headers).map(([k, v]) => [k.toLowerCase(), v.map(toRule)]),
    },
    actions: {
      stripRequestHeaders: t.actions.strip_request_headers.map((h) => h.toLowerCase()),
      injectRequestHeaders: t.actions.inject_request_headers.map(
        (i): InjectSpec => ({
          name: i.name,
          prefix: i.prefix,
          source: (i.secret_file !== undefined ? { kind: "file", path: i.secret_file } : { kind: "env", name: i.secret_env_var! }) as SecretSource,
        }),
      ),
    },
  };
}

/** A value rule back in its TOML spelling. */
function ruleText(r: ValueRule): string {
  return r.kind === "pattern" ? `pattern:${r.glob}` : r.value.startsWith("pattern:") || r.value.startsWith("literal:") ? `literal:${r.value}` : r.value;
}

/**
 * A hook in the TOML shape of `/config` and `check-config`: the secret's *source*
 * (`secret_file` path or `secret_env_var` name), never a value.
 */
export function hookToJson(h: HookSpec): Record<string, unknown> {
  return {
    ...(h.name === null ? {} : { name: h.name }),
    host: h.host,
    match: {
      methods: [...h.match.methods],
      path_prefixes: [...h.match.pathPrefixes],
      query: Object.fromEntries(h.match.query.map(([k, v]) => [k, v.map(ruleText)])),
      headers: Object.fromEntries(h.match.headers.map(([k, v]) => [k, v.map(ruleText)])),
    },
    actions: {
      strip_request_headers: [...h.actions.stripRequestHeaders],
      inject_request_headers: h.actions.injectRequestHeaders.map((i) => ({
        name: i.name,
        prefix: i.prefix,
        ...(i.source.kind === "file" ? { secret_file: i.source.path } : { secret_env_var: i.source.name }),
      })),
    },
  };
}
