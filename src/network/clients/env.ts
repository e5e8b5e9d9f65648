/**
 * What a client process needs to use the proxy (SPEC-network §11): the proxy variables every
 * common tool reads, and, with MITM on, the CA variables pointing at the trust bundle. Then
 * the same list rendered for a shell (`sh`, `fish`, `powershell`), a `.env` file or JSON.
 *
 * Which tool reads what (verified in BUN-NOTES.md and the client tests): curl, git and wget
 * read only lowercase `http_proxy` for http:// URLs; `HTTPS_PROXY`/`https_proxy` both work;
 * npm reads `npm_config_*`; pip reads `PIP_PROXY`/`PIP_CERT` (and `https_proxy`); Python
 * `requests` reads `REQUESTS_CA_BUNDLE`; Node ≥ 24 honours `NODE_USE_ENV_PROXY=1`, below that
 * undici's `EnvHttpProxyAgent` reads the same variables.
 */
import type { RuntimeConfig } from "../types.ts";
import { DEFAULT_PORTS } from "../config-schema.ts";
import { formatListenAddress, parseListenAddress, type ListenAddress } from "../listen-addr.ts";
import { trustBundlePath } from "./ca-bundle.ts";

/** Output formats of `codex-network-proxy env`. */
export const ENV_FORMATS = ["sh", "fish", "powershell", "dotenv", "json"] as const;
export type EnvFormat = (typeof ENV_FORMATS)[number];

/** Ports of a running instance (the `--server-info` line, SPEC-network §1). */
export interface ServerPorts {
  http: number;
  socks: number | null;
}

/** Ordered `[name, value]` pairs. */
export type EnvVars = Array<[string, string]>;

/** A bind address as clients should dial it: an unspecified address (0.0.0.0, ::) means loopback. */
function dialable(addr: ListenAddress): string {
  if (addr.host === "0.0.0.0") return formatListenAddress({ host: "127.0.0.1", port: addr.port });
  if (addr.host === "::") return formatListenAddress({ host: "::1", port: addr.port });
  return formatListenAddress(addr);
}

/**
 * The §11 variables for `cfg`, in a fixed order. Addresses come from `ports` (a running
 * instance's ephemeral ports) when given, else from the config's listener URLs; the host is
 * always the config's. CA variables appear only when `cfg.mitm.enabled`, all naming the
 * trust bundle beside the CA certificate.
 */
export function clientEnv(cfg: RuntimeConfig, ports?: ServerPorts): EnvVars {
  const http = parseListenAddress(cfg.proxyUrl, DEFAULT_PORTS.http);
  const socks = parseListenAddress(cfg.socksUrl, DEFAULT_PORTS.socks);
  if (ports) {
    http.port = ports.http;
    if (ports.socks !== null) socks.port = ports.socks;
  }
  const socksOn = ports ? ports.socks !== null : cfg.enableSocks5;
  const httpUrl = `http://${dialable(http)}`;
  const allUrl = socksOn ? `socks5h://${dialable(socks)}` : httpUrl;
  // Empty NO_PROXY (rather than unset) overrides an inherited one: loopback goes through the
  // policy too unless the config allows local binding.
  const noProxy = cfg.policy.allowLocalBinding ? "localhost,127.0.0.1,::1" : "";
  const vars: EnvVars = [
    ["HTTP_PROXY", httpUrl],
    ["HTTPS_PROXY", httpUrl],
    ["http_proxy", httpUrl],
    ["https_proxy", httpUrl],
    ["WS_PROXY", httpUrl],
    ["WSS_PROXY", httpUrl],
    ["ALL_PROXY", allUrl],
    ["all_proxy", allUrl],
    ["NO_PROXY", noProxy],
    ["no_proxy", noProxy],
    ["npm_config_proxy", httpUrl],
    ["npm_config_https_proxy", httpUrl],
    ["YARN_HTTP_PROXY", httpUrl],
    ["YARN_HTTPS_PROXY", httpUrl],
    ["PIP_PROXY", httpUrl],
    ["NODE_USE_ENV_PROXY", "1"],
  ];
  if (cfg.mitm.enabled) {
    const bundle = trustBundlePath(cfg.mitm.caCertPath);
    for (const name of CA_VARIABLES) vars.push([name, bundle]);
  }
  return vars;
}

/** Variables naming the trust bundle (SPEC-network §11). */
export const CA_VARIABLES = [
  "SSL_CERT_FILE",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "NODE_EXTRA_CA_CERTS",
  "GIT_SSL_CAINFO",
  "CARGO_HTTP_CAINFO",
  "PIP_CERT",
  "npm_config_cafile",
  "BUNDLE_SSL_CA_CERT",
  "CODEX_CA_CERTIFICATE",
] as const;

/** POSIX sh single quotes: nothing inside is special; `'` is written `'\''`. */
export function shQuote(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}

/** fish single quotes: only `\\` and `\'` are escapes inside. */
function fishQuote(v: string): string {
  return `'${v.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** PowerShell verbatim strings: `'` doubled (and the typographic single quotes PowerShell also ends strings on). */
function pwshQuote(v: string): string {
  return `'${v.replace(/['\u2018\u2019\u201a\u201b]/g, "$&$&")}'`;
}

/**
 * dotenv has no common escape syntax (Node and docker compose keep backslashes, Bun expands
 * `$` even inside single quotes, python-dotenv unescapes `\\` inside single quotes), so only
 * values every reader takes literally are written: no `$`, `\\` or line break; `'value'`
 * when it holds no `'`, else `"value"` when it holds no `"`.
 * @throws Error naming the variable when its value cannot be written that way
 */
function dotenvQuote(name: string, v: string): string {
  if (!/[$\\\n\r]/.test(v)) {
    if (!v.includes("'")) return `'${v}'`;
    if (!v.includes('"')) return `"${v}"`;
  }
  throw new Error(`${name}: value cannot be written as dotenv that every reader takes literally ($, \\, line break, or both quote kinds); use --format json or sh`);
}

/**
 * Render `vars` for `format`, one line per variable (JSON: one object), ending with a newline.
 * @throws Error for a dotenv value no dotenv reader takes literally (see dotenvQuote)
 */
export function renderEnv(vars: EnvVars, format: EnvFormat): string {
  switch (format) {
    case "sh":
      return vars.map(([k, v]) => `export ${k}=${shQuote(v)}\n`).join("");
    case "fish":
      return vars.map(([k, v]) => `set -gx ${k} ${fishQuote(v)}\n`).join("");
    case "powershell":
      return vars.map(([k, v]) => `$env:${k} = ${pwshQuote(v)}\n`).join("");
    case "dotenv":
      return vars.map(([k, v]) => `${k}=${dotenvQuote(k, v)}\n`).join("");
    case "json":
      return JSON.stringify(Object.fromEntries(vars), null, 2) + "\n";
  }
}

/**
 * Parse a `--server-info` file's line `{"http":<port>,"socks":<port|null>,"admin":<port>,"pid":<pid>}`.
 * @throws Error naming the file when it is missing, not JSON or lacks a valid `http` port
 */
export function parseServerInfo(text: string, file: string): ServerPorts {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not a server-info line (expected JSON written by --server-info)`);
  }
  const o = v as { http?: unknown; socks?: unknown };
  const port = (p: unknown) => typeof p === "number" && Number.isInteger(p) && p > 0 && p <= 65535;
  if (typeof v !== "object" || v === null || !port(o.http) || !(o.socks === null || port(o.socks))) {
    throw new Error(`${file}: not a server-info line (expected {"http":<port>,"socks":<port|null>,…})`);
  }
  return { http: o.http as number, socks: o.socks as number | null };
}
