/**
 * Config loading for codex-network-proxy (SPEC-network §1 and §2): read the `[network_proxy]`
 * table of a Codex `config.toml` (smol-toml), validate it (zod, `config-schema.ts`), apply CLI
 * overrides, resolve relative paths, and produce the `RuntimeConfig` every module reads.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import type { Mode, RuntimeConfig } from "./types.ts";
import { ConfigError, type ConfigIssue } from "./config-error.ts";
import { DEFAULT_PORTS, issuesFromZod, networkProxySchema, type NetworkProxyTable } from "./config-schema.ts";
import { patternProblem } from "./patterns.ts";
import { parseListenAddress } from "./listen-addr.ts";
import { hookSpecOf, hookToJson } from "./hooks/config-schema.ts";
import { selectNetworkTable } from "./config-shapes/select.ts";
import { misspelledTables, TABLE, type ConfigSource } from "./config-report.ts";


/** Command-line flags that override the file (beyond, SPEC-network §1). */
export interface CliOverrides {
  /** `--mode`. */
  mode?: Mode;
  /** `--allow PATTERN`... appended to `policy.allowed_domains`. */
  allow?: string[];
  /** `--deny PATTERN`... appended to `policy.denied_domains`. */
  deny?: string[];
  /** `--http ADDR`: replaces `proxy_url`. */
  http?: string;
  /** `--socks ADDR`: replaces `socks_url`. */
  socks?: string;
  /** `--admin ADDR`: replaces `admin_url`. */
  admin?: string;
  /** `--profile NAME`: read `[permissions.NAME.network]` instead of `[network_proxy]` (§11). */
  profile?: string;
}

/** `$CODEX_HOME`, defaulting to `~/.codex`. */
export function codexHome(env: Record<string, string | undefined> = process.env): string {
  const home = env.CODEX_HOME;
  if (home !== undefined && home !== "") return resolve(home);
  return join(env.HOME || homedir(), ".codex");
}

/** The default config file: `$CODEX_HOME/config.toml` (`CODEX_HOME` defaults to `~/.codex`). */
export function defaultConfigPath(env: Record<string, string | undefined> = process.env): string {
  return join(codexHome(env), "config.toml");
}

/** Options of {@link loadConfig}. */
export interface LoadOptions {
  /**
   * The file must exist: it was named explicitly (`--config`), or it is being reloaded. A
   * missing file is then a `ConfigError` (`<file>: config file not found`) instead of the
   * defaults, so a typo in a path can't silently start an empty policy.
   */
  required?: boolean;
}

/** A loaded config and where it came from (for the startup summary line). */
export interface LoadedConfig {
  config: RuntimeConfig;
  source: ConfigSource;
}

/**
 * Read and validate `file`. A missing file means the defaults of SPEC-network §2 (relative CA
 * paths then resolve against the folder `file` would be in, `$CODEX_HOME` for the default
 * path), unless `opts.required`. `warn` hears about ignored or missing tables of a file that
 * was read. Throws `ConfigError` naming the file for a missing required file, an unreadable
 * file, bad TOML (with line/column), a table name that looks like a misspelling of
 * `network_proxy`, or a validation failure (with the key path).
 */
export async function loadConfigWithSource(
  file: string,
  overrides: CliOverrides = {},
  warn?: (message: string) => void,
  opts: LoadOptions = {},
): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new ConfigError(`${file}: cannot read config file (${code ?? "error"})`);
    if (opts.required) throw new ConfigError(`${file}: config file not found`);
    return { config: parseConfig("", file, overrides), source: { kind: "defaults", file } };
  }
  return { config: parseConfig(text, file, overrides, warn), source: { kind: "file", file } };
}

/** {@link loadConfigWithSource} without the source. */
export async function loadConfig(
  file: string,
  overrides: CliOverrides = {},
  warn?: (message: string) => void,
  opts: LoadOptions = {},
): Promise<RuntimeConfig> {
  return (await loadConfigWithSource(file, overrides, warn, opts)).config;
}

/**
 * Parse config text as if read from `file` (used for messages and to resolve relative paths:
 * they are relative to `dirname(file)`). Only the `[network_proxy]` table is read (or, §11,
 * the `network` object of a `.json` file, or `[permissions.<profile>.network]` with
 * `overrides.profile`: config-shapes/); other tables are ignored, except one whose name looks
 * like a misspelling of `network_proxy` (an error naming both). `warn` hears about ignored
 * tables and a TOML file without `[network_proxy]`. Throws `ConfigError` whose message is one line per problem:
 * `<file>:<line>:<col>: invalid TOML: <what>` or `<file>: <key path>: <problem>`.
 */
export function parseConfig(text: string, file: string, overrides: CliOverrides = {}, warn?: (message: string) => void): RuntimeConfig {
  const json = file.endsWith(".json");
  let doc: Record<string, unknown>;
  try {
    doc = json ? parseJsonDocument(text, file) : (parseToml(text) as Record<string, unknown>);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (e instanceof TomlError) {
      // smol-toml's message carries a code excerpt after a blank line; keep the first line.
      const what = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new ConfigError(`${file}:${e.line}:${e.column}: invalid TOML: ${what}`, [
        { path: `line ${e.line}`, message: what },
      ]);
    }
    throw new ConfigError(`${file}: invalid TOML`);
  }
  const selected = selectNetworkTable(doc, { json, profile: overrides.profile });
  for (const w of selected.warnings) warn?.(`${file}: ${w}`);
  if (selected.issues.length > 0) fail(file, selected.issues);
  if (!json && overrides.profile === undefined) {
    // A near-miss table name would be ignored and leave the defaults in force: an error naming both.
    const misspelled = misspelledTables(doc);
    if (misspelled.length > 0) {
      fail(file, misspelled.map((name) => ({ path: name, message: `table [${name}] is not read: did you mean [${TABLE}]?` })));
    }
    if (doc.network_proxy === undefined) warn?.(`${file} has no [${TABLE}] table; the defaults apply`);
  }
  const raw = selected.raw;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || raw instanceof Date) {
    fail(file, [{ path: "network_proxy", message: "expected a table" }]);
  }
  const parsed = networkProxySchema.safeParse(raw);
  if (!parsed.success) fail(file, issuesFromZod(parsed.error, raw).map((i) => ({ ...i, path: selected.sourcePath(i.path) })));
  checkOverrides(file, overrides);
  return toRuntime(parsed.data, dirname(resolve(file)), overrides);
}

/** A `.json` config: an object (empty text = a missing file = `{}`). @throws ConfigError */
function parseJsonDocument(text: string, file: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: invalid JSON: ${(e as Error).message}`, [{ path: "(document)", message: "invalid JSON" }]);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) fail(file, [{ path: "(document)", message: "expected a JSON object" }]);
  return doc as Record<string, unknown>;
}

function fail(file: string, issues: ConfigIssue[]): never {
  throw new ConfigError(issues.map((i) => `${file}: ${i.path}: ${i.message}`).join("\n"), issues);
}

/** Validate flag values with the same rules as the file, reported under the flag's name. */
function checkOverrides(file: string, o: CliOverrides): void {
  const issues: ConfigIssue[] = [];
  if (o.mode !== undefined && o.mode !== "limited" && o.mode !== "full") {
    issues.push({ path: "--mode", message: `expected "limited" or "full", got ${JSON.stringify(o.mode)}` });
  }
  for (const [flag, list, items] of [
    ["--allow", "allowed", o.allow],
    ["--deny", "denied", o.deny],
  ] as const) {
    for (const p of items ?? []) {
      const problem = patternProblem(p, list);
      if (problem !== null) issues.push({ path: flag, message: problem });
    }
  }
  for (const [flag, value, port] of [
    ["--http", o.http, DEFAULT_PORTS.http],
    ["--socks", o.socks, DEFAULT_PORTS.socks],
    ["--admin", o.admin, DEFAULT_PORTS.admin],
  ] as const) {
    if (value === undefined) continue;
    try {
      parseListenAddress(value, port);
    } catch (e) {
      issues.push({ path: flag, message: (e as Error).message });
    }
  }
  if (issues.length > 0) fail(file, issues);
}

/** A configured path made absolute: `~/…` from the home folder, other relative paths from `baseDir`. */
function resolvePath(baseDir: string, p: string): string {
  if (p === "~" || p.startsWith("~/")) return join(process.env.HOME || homedir(), p.slice(2));
  return resolve(baseDir, p);
}

/** Snake-case table + overrides → `RuntimeConfig` with absolute paths. */
function toRuntime(t: NetworkProxyTable, baseDir: string, o: CliOverrides): RuntimeConfig {
  return {
    enabled: t.enabled,
    mode: o.mode ?? t.mode,
    proxyUrl: o.http ?? t.proxy_url,
    adminUrl: o.admin ?? t.admin_url,
    enableSocks5: t.enable_socks5,
    socksUrl: o.socks ?? t.socks_url,
    enableSocks5Udp: t.enable_socks5_udp,
    allowUpstreamProxy: t.allow_upstream_proxy,
    dangerouslyAllowNonLoopbackProxy: t.dangerously_allow_non_loopback_proxy,
    dangerouslyAllowNonLoopbackAdmin: t.dangerously_allow_non_loopback_admin,
    policy: {
      allowedDomains: [...t.policy.allowed_domains, ...(o.allow ?? [])],
      deniedDomains: [...t.policy.denied_domains, ...(o.deny ?? [])],
      allowLocalBinding: t.policy.allow_local_binding,
      allowUnixSockets: [...t.policy.allow_unix_sockets],
    },
    mitm: {
      enabled: t.mitm.enabled,
      inspect: t.mitm.inspect,
      maxBodyBytes: t.mitm.max_body_bytes,
      caCertPath: resolvePath(baseDir, t.mitm.ca_cert_path),
      caKeyPath: resolvePath(baseDir, t.mitm.ca_key_path),
      hooks: t.mitm.hooks.map(hookSpecOf),
      caMode: t.mitm.ca_mode,
    },
    adminTokenFile: t.admin_token_file === undefined ? null : resolvePath(baseDir, t.admin_token_file),
    maxConnections: t.max_connections,
  };
}

/**
 * The defaults of SPEC-network §2 as a `RuntimeConfig`, relative paths resolved against
 * `baseDir` (default `$CODEX_HOME`). Handy for tests and `init`.
 */
export function defaultConfig(baseDir: string = codexHome()): RuntimeConfig {
  return parseConfig("", join(baseDir, "config.toml"));
}

/**
 * The effective config in the `{"network_proxy":{…}}` shape of `GET /config` (SPEC-network §7):
 * snake_case keys as in the TOML, CA paths absolute, `admin_token_file` path or null (the token
 * itself is never read here), hooks with their secret sources (`secret_file` path or
 * `secret_env_var` name), never a secret value.
 */
export function configToJson(cfg: RuntimeConfig): { network_proxy: Record<string, unknown> } {
  return {
    network_proxy: {
      enabled: cfg.enabled,
      proxy_url: cfg.proxyUrl,
      admin_url: cfg.adminUrl,
      enable_socks5: cfg.enableSocks5,
      socks_url: cfg.socksUrl,
      enable_socks5_udp: cfg.enableSocks5Udp,
      allow_upstream_proxy: cfg.allowUpstreamProxy,
      dangerously_allow_non_loopback_proxy: cfg.dangerouslyAllowNonLoopbackProxy,
      dangerously_allow_non_loopback_admin: cfg.dangerouslyAllowNonLoopbackAdmin,
      max_connections: cfg.maxConnections,
      mode: cfg.mode,
      policy: {
        allowed_domains: [...cfg.policy.allowedDomains],
        denied_domains: [...cfg.policy.deniedDomains],
        allow_local_binding: cfg.policy.allowLocalBinding,
        allow_unix_sockets: [...cfg.policy.allowUnixSockets],
      },
      mitm: {
        enabled: cfg.mitm.enabled,
        inspect: cfg.mitm.inspect,
        max_body_bytes: cfg.mitm.maxBodyBytes,
        ca_cert_path: cfg.mitm.caCertPath,
        ca_key_path: cfg.mitm.caKeyPath,
        hooks: cfg.mitm.hooks.map(hookToJson),
        ca_mode: cfg.mitm.caMode,
      },
      admin_token_file: cfg.adminTokenFile,
    },
  };
}
