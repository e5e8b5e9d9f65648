/**
 * Command line of codex-responses-api-proxy (SPEC §1.1).
 *
 * Hand-rolled rather than citty's `parseArgs`: citty silently accepts unknown flags, has no
 * number type, and also accepts `--no-<flag>` negations and camelCase aliases, while the
 * reference (clap) rejects all of those with a usage error (exit 2).
 */
import { parseLogLevel, type LogFormat, type LogLevel } from "../log.ts";
import { VERSION_TEXT } from "../version.ts";

/** Parsed options. `port` 0 = ephemeral. */
export interface ResponsesProxyArgs {
  port: number;
  serverInfo?: string;
  httpShutdown: boolean;
  upstreamUrl: string;
  dumpDir?: string;
  /** `--log-level` (beyond): `warn` silences the access lines. Default `info`. */
  logLevel: LogLevel;
  /** `--log-format` (beyond): `text` (default) or `json` lines on stderr. */
  logFormat: LogFormat;
  /** `--github-oidc` and its four companions (SPEC §1.8); all five or none. */
  githubOidc?: true;
  oidcAudience?: string;
  identityProviderId?: string;
  serviceAccountId?: string;
  githubOidcRequestUrl?: string;
}

/** Result of parsing: run, print help/version (exit 0), or a usage error (exit 2). */
export type CliOutcome =
  | { kind: "run"; args: ResponsesProxyArgs }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "usage-error"; text: string };

export const DEFAULT_UPSTREAM_URL = "https://api.openai.com/v1/responses";
export const PROGRAM = "codex-responses-api-proxy";
/** The §1.8 flag group, in the order the usage line and a missing-flag error list it. */
const OIDC_GROUP = "--github-oidc --oidc-audience <A> --identity-provider-id <ID> --service-account-id <ID> --github-oidc-request-url <URL>";
export const USAGE = `Usage: ${PROGRAM} [--port <PORT>] [--server-info <FILE>] [--http-shutdown] [--upstream-url <URL>] [--dump-dir <DIR>] [--log-level <LEVEL>] [--log-format <FORMAT>] [${OIDC_GROUP}]`;

export const HELP = `Strict proxy that forwards only POST /v1/responses to the upstream, adding Authorization: Bearer <key>.
The key is read from stdin (e.g. printenv OPENAI_API_KEY | ${PROGRAM}).

${USAGE}

Options:
      --port <PORT>          Port to bind on 127.0.0.1 (absent or 0: ephemeral)
      --server-info <FILE>   Once listening, write {"port":<u16>,"pid":<u32>} and a newline to FILE
      --http-shutdown        Enable GET /shutdown (200, then exit 0)
      --upstream-url <URL>   Absolute URL to forward to [default: ${DEFAULT_UPSTREAM_URL}]
      --dump-dir <DIR>       Write a request and a response JSON file per forwarded call into DIR
      --log-level <LEVEL>    error, warn, info (default: one access line per request) or debug
      --log-format <FORMAT>  text (default) or json lines on stderr
  -h, --help                 Print help
      --version              Print version

Workload identity (GitHub Actions without a stored key):
      --github-oidc                     Read a GitHub OIDC request token on stdin instead of a key,
                                        exchange the runner's OIDC JWT at OpenAI for a short-lived
                                        access token and renew it ahead of expiry (needs the four below
                                        and the default --upstream-url)
      --oidc-audience <A>               Audience requested from GitHub for the JWT
      --identity-provider-id <ID>       OpenAI workload identity provider id
      --service-account-id <ID>         OpenAI service account id
      --github-oidc-request-url <URL>   GitHub's token URL: $ACTIONS_ID_TOKEN_REQUEST_URL (HTTPS)

  GitHub Actions step (the job needs \`permissions: id-token: write\`):
    printenv ACTIONS_ID_TOKEN_REQUEST_TOKEN | env -u ACTIONS_ID_TOKEN_REQUEST_TOKEN \\
      -u ACTIONS_ID_TOKEN_REQUEST_URL ${PROGRAM} --github-oidc \\
      --github-oidc-request-url "$ACTIONS_ID_TOKEN_REQUEST_URL" --oidc-audience <A> \\
      --identity-provider-id <ID> --service-account-id <ID> --server-info /tmp/proxy.json &
`;

type Spec = { takesValue: boolean; key: keyof ResponsesProxyArgs };
const FLAGS: Record<string, Spec> = {
  "--port": { takesValue: true, key: "port" },
  "--server-info": { takesValue: true, key: "serverInfo" },
  "--http-shutdown": { takesValue: false, key: "httpShutdown" },
  "--upstream-url": { takesValue: true, key: "upstreamUrl" },
  "--dump-dir": { takesValue: true, key: "dumpDir" },
  "--log-level": { takesValue: true, key: "logLevel" },
  "--log-format": { takesValue: true, key: "logFormat" },
  "--github-oidc": { takesValue: false, key: "githubOidc" },
  "--oidc-audience": { takesValue: true, key: "oidcAudience" },
  "--identity-provider-id": { takesValue: true, key: "identityProviderId" },
  "--service-account-id": { takesValue: true, key: "serviceAccountId" },
  "--github-oidc-request-url": { takesValue: true, key: "githubOidcRequestUrl" },
};

/** The §1.8 group: each flag requires the four others (clap `requires`). */
const OIDC_FLAGS = ["--github-oidc", "--oidc-audience", "--identity-provider-id", "--service-account-id", "--github-oidc-request-url"];

function usageError(message: string): CliOutcome {
  return { kind: "usage-error", text: `error: ${message}\n\n${USAGE}\n\nFor more information, try '--help'.\n` };
}

/**
 * Parse `argv` (without the executable and script). Only long options (plus `-h`);
 * `--flag value` and `--flag=value`; a flag given twice, an unknown flag, a positional
 * argument, a missing value or a port that is not a u16 is a usage error.
 */
export function parseCli(argv: readonly string[]): CliOutcome {
  const seen = new Set<string>();
  const out: ResponsesProxyArgs = { port: 0, httpShutdown: false, upstreamUrl: DEFAULT_UPSTREAM_URL, logLevel: "info", logFormat: "text" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") return { kind: "help", text: HELP };
    if (arg === "--version") return { kind: "version", text: `${PROGRAM} ${VERSION_TEXT}\n` };
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const spec = FLAGS[name];
    if (!spec) {
      return usageError(arg.startsWith("-") ? `unexpected argument '${name}' found` : `unexpected argument '${arg}' found`);
    }
    if (seen.has(name)) return usageError(`the argument '${name}' cannot be used multiple times`);
    seen.add(name);
    if (!spec.takesValue) {
      if (eq > 0) return usageError(`unexpected value '${arg.slice(eq + 1)}' for '${name}' found; no more were expected`);
      (out as unknown as Record<string, boolean>)[spec.key] = true;
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) return usageError(`a value is required for '${name} <${valueName(name)}>' but none was supplied`);
      value = argv[++i]!;
    }
    if (spec.key === "port") {
      if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
        return usageError(`invalid value '${value}' for '--port <PORT>': not a valid port number (0-65535)`);
      }
      out.port = Number(value);
    } else if (spec.key === "logLevel") {
      try {
        out.logLevel = parseLogLevel(value);
      } catch {
        return usageError(`invalid value '${value}' for '--log-level <LEVEL>': expected error, warn, info or debug`);
      }
    } else if (spec.key === "logFormat") {
      if (value !== "text" && value !== "json") return usageError(`invalid value '${value}' for '--log-format <FORMAT>': expected text or json`);
      out.logFormat = value;
    } else {
      (out as unknown as Record<string, string>)[spec.key] = value;
    }
  }
  const missing = OIDC_FLAGS.some((f) => seen.has(f)) ? OIDC_FLAGS.filter((f) => !seen.has(f)) : [];
  if (missing.length > 0) {
    const list = missing.map((f) => (FLAGS[f]!.takesValue ? `  ${f} <${valueName(f)}>\n` : `  ${f}\n`)).join("");
    return { kind: "usage-error", text: `error: the following required arguments were not provided:\n${list}\n${USAGE}\n\nFor more information, try '--help'.\n` };
  }
  return { kind: "run", args: out };
}

const VALUE_NAMES: Record<string, string> = {
  "--port": "PORT",
  "--upstream-url": "URL",
  "--dump-dir": "DIR",
  "--server-info": "FILE",
  "--oidc-audience": "A",
  "--identity-provider-id": "ID",
  "--service-account-id": "ID",
  "--github-oidc-request-url": "URL",
  "--log-level": "LEVEL",
  "--log-format": "FORMAT",
};

function valueName(flag: string): string {
  return VALUE_NAMES[flag] ?? "VALUE";
}

/**
 * Parse `--upstream-url` per SPEC §1.2 step 4: the URL, or the error message (without the
 * `Error: ` prefix) — unparsable → `parsing --upstream-url: …`, no host → `upstream URL must include a host`,
 * a scheme other than http/https → `upstream URL must be http or https` (issue 13: `ftp://`
 * or `ws://` used to start and fail every request with an empty 500).
 */
export function parseUpstreamUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `parsing --upstream-url: ${/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) ? "invalid URL" : "relative URL without a base"}`;
  }
  if (!url.hostname) return "upstream URL must include a host";
  if (url.protocol !== "http:" && url.protocol !== "https:") return "upstream URL must be http or https";
  return url;
}
