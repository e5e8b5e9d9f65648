/**
 * Command line of codex-responses-api-proxy (SPEC §1.1).
 *
 * Hand-rolled rather than citty's `parseArgs`: citty silently accepts unknown flags, has no
 * number type, and also accepts `--no-<flag>` negations and camelCase aliases, while the
 * reference (clap) rejects all of those with a usage error (exit 2).
 */
import { VERSION_TEXT } from "../version.ts";

/** Parsed options. `port` 0 = ephemeral. */
export interface ResponsesProxyArgs {
  port: number;
  serverInfo?: string;
  httpShutdown: boolean;
  upstreamUrl: string;
  dumpDir?: string;
}

/** Result of parsing: run, print help/version (exit 0), or a usage error (exit 2). */
export type CliOutcome =
  | { kind: "run"; args: ResponsesProxyArgs }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "usage-error"; text: string };

export const DEFAULT_UPSTREAM_URL = "https://api.openai.com/v1/responses";
export const PROGRAM = "codex-responses-api-proxy";
export const USAGE = `Usage: ${PROGRAM} [--port <PORT>] [--server-info <FILE>] [--http-shutdown] [--upstream-url <URL>] [--dump-dir <DIR>]`;

export const HELP = `Strict proxy that forwards only POST /v1/responses to the upstream, adding Authorization: Bearer <key>.
The key is read from stdin (e.g. printenv OPENAI_API_KEY | ${PROGRAM}).

${USAGE}

Options:
      --port <PORT>          Port to bind on 127.0.0.1 (absent or 0: ephemeral)
      --server-info <FILE>   Once listening, write {"port":<u16>,"pid":<u32>} and a newline to FILE
      --http-shutdown        Enable GET /shutdown (200, then exit 0)
      --upstream-url <URL>   Absolute URL to forward to [default: ${DEFAULT_UPSTREAM_URL}]
      --dump-dir <DIR>       Write a request and a response JSON file per forwarded call into DIR
  -h, --help                 Print help
      --version              Print version
`;

type Spec = { takesValue: boolean; key: keyof ResponsesProxyArgs };
const FLAGS: Record<string, Spec> = {
  "--port": { takesValue: true, key: "port" },
  "--server-info": { takesValue: true, key: "serverInfo" },
  "--http-shutdown": { takesValue: false, key: "httpShutdown" },
  "--upstream-url": { takesValue: true, key: "upstreamUrl" },
  "--dump-dir": { takesValue: true, key: "dumpDir" },
};

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
  const out: ResponsesProxyArgs = { port: 0, httpShutdown: false, upstreamUrl: DEFAULT_UPSTREAM_URL };
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
      out.httpShutdown = true;
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
    } else {
      (out as unknown as Record<string, string>)[spec.key] = value;
    }
  }
  return { kind: "run", args: out };
}

function valueName(flag: string): string {
  return flag === "--port" ? "PORT" : flag === "--upstream-url" ? "URL" : flag === "--dump-dir" ? "DIR" : "FILE";
}

/**
 * Parse `--upstream-url` per SPEC §1.2 step 4: the URL, or the error message (without the
 * `Error: ` prefix) — unparsable → `parsing --upstream-url: …`, no host → `upstream URL must include a host`.
 */
export function parseUpstreamUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `parsing --upstream-url: ${/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) ? "invalid URL" : "relative URL without a base"}`;
  }
  if (!url.hostname) return "upstream URL must include a host";
  return url;
}
