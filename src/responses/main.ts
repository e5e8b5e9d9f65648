/**
 * Entry point of codex-responses-api-proxy. Startup order is SPEC §1.2:
 * hardening (first import) → arguments → key from stdin → --upstream-url → --dump-dir →
 * bind, server-info, listening line. Fatal errors: `Error: <message>` on stderr, exit 1.
 */
import "../hardening/pre-main.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createHttp1Client } from "../http1/client.ts";
import { loadLibc, type Libc } from "../hardening/libc.ts";
import { parseCli, parseUpstreamUrl } from "./cli.ts";
import { createDumper, ensureDumpDir } from "./dump.ts";
import { readLockedKey } from "./locked-key.ts";
import { accessLogger, startResponsesProxy } from "./server.ts";
import { batchedStderr, createLogger } from "../log.ts";
import { raiseDescriptorLimit } from "../hardening/fd-limit.ts";
import { DEFAULT_MAX_CONNECTIONS, effectiveMaxConnections } from "../net/connection-cap.ts";
import { EXCHANGE_CHILD_ENV } from "./oidc/child-protocol.ts";
import { runExchangeChild } from "./oidc/exchange-child.ts";
import { prepareWorkloadIdentity, startWorkloadIdentity, type PreparedWorkloadIdentity } from "./oidc/start.ts";
import type { TokenSourceHandle } from "./oidc/token-source.ts";

/** Grace period for in-flight streams after SIGTERM/SIGINT (SPEC §1.5, beyond). */
const SHUTDOWN_GRACE_MS = 10_000;

function fatal(message: string): never {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  if (cli.kind === "help" || cli.kind === "version") {
    process.stdout.write(cli.text);
    process.exit(0);
  }
  if (cli.kind === "usage-error") {
    process.stderr.write(cli.text);
    process.exit(2);
  }
  const args = cli.args;

  let key;
  // Workload identity (SPEC §1.8): its checks, then the request token instead of a key.
  let oidc: PreparedWorkloadIdentity | undefined;
  let libc: Libc | null = null;
  try {
    libc = loadLibc();
    if (args.githubOidc) oidc = prepareWorkloadIdentity(args, libc);
    else key = readLockedKey(libc);
  } catch (e) {
    fatal(e instanceof Error ? e.message : String(e));
  }

  const upstream = parseUpstreamUrl(args.upstreamUrl);
  if (typeof upstream === "string") fatal(upstream);

  // One sink for every line after this point, so they keep their order.
  const sink = batchedStderr();
  const log = createLogger({ format: args.logFormat, level: args.logLevel, sink });
  const logError = (line: string) => log.error(line);
  let dumper = null;
  if (args.dumpDir !== undefined) {
    try {
      await ensureDumpDir(args.dumpDir);
    } catch (e) {
      fatal(`creating --dump-dir ${args.dumpDir}: ${e instanceof Error ? e.message : String(e)}`);
    }
    dumper = createDumper(args.dumpDir, logError);
  }

  // Keep-alive pool sized for many concurrent streams (SPEC §1.6): with the default 16, a
  // burst of 32 clients makes the pool close and redial upstream connections constantly.
  // The proxy variables are read once (a snapshot): the client then chooses the proxy once
  // per upstream instead of reading the environment on every request.
  const proxyEnv: Record<string, string | undefined> = {};
  for (const name of ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"]) proxyEnv[name] = process.env[name];
  const client = createHttp1Client({ maxIdlePerOrigin: 256, proxyEnv });
  let credentials: TokenSourceHandle | undefined;
  if (oidc) {
    try {
      credentials = await startWorkloadIdentity({ ...oidc, client, libc, logError });
    } catch (e) {
      fatal(e instanceof Error ? e.message : String(e));
    }
  }
  // Signal handlers go in before the listening line is printed: whoever reads that line may
  // signal at once, and a handler installed later would miss it (default action, exit 143).
  let server: ReturnType<typeof startResponsesProxy> | undefined;
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    void (server ? server.stop(SHUTDOWN_GRACE_MS) : Promise.resolve()).finally(() => {
      credentials?.stop();
      client.close();
      process.exit(0);
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  // SPEC-network §12 (which applies here): the soft descriptor limit is raised to the hard one,
  // and the connection cap stays below it.
  const fdLimit = raiseDescriptorLimit(logError);
  try {
    server = startResponsesProxy({
      bounds: { maxConnections: effectiveMaxConnections(DEFAULT_MAX_CONNECTIONS, fdLimit) },
      port: args.port,
      httpShutdown: args.httpShutdown,
      upstream,
      authorization: key?.value,
      credentials,
      client,
      dumper,
      logError,
      onAccess: accessLogger(log) ?? undefined,
      onShutdown: () => setImmediate(() => process.exit(0)),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
      fatal(`binding 127.0.0.1:${args.port}: address already in use; set by --port (choose another port, or 0 for an ephemeral one)`);
    }
    fatal(`binding 127.0.0.1:${args.port}: ${e instanceof Error ? e.message : String(e)}`);
  }

  if (args.serverInfo !== undefined) {
    try {
      mkdirSync(dirname(args.serverInfo), { recursive: true });
      writeFileSync(args.serverInfo, `{"port":${server.port},"pid":${process.pid}}\n`);
    } catch (e) {
      fatal(`writing --server-info ${args.serverInfo}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // The reference's readiness line, byte-exact in text format (SPEC §1.1: scripts wait for it);
  // a JSON log stream gets it as a JSON line like every other line.
  const listening = `responses-api-proxy listening on 127.0.0.1:${server.port}`;
  // Always written, whatever --log-level says: whoever started the proxy waits for it.
  if (args.logFormat === "json") createLogger({ format: "json", sink }).info(listening);
  else sink(listening);
}

/**
 * The token-exchange child of workload identity mode (SPEC §1.8; oidc/child-exchanger.ts):
 * the same executable, selected by an environment variable that only the proxy sets.
 */
function exchangeChild(job: string): void {
  const libc = loadLibc();
  if (!libc) process.exit(1);
  void runExchangeChild(libc, job).then((code) => process.exit(code));
}

// No top-level await, so the entry also works if bundled as CommonJS (`--bytecode` defaults to it).
const exchangeJob = process.env[EXCHANGE_CHILD_ENV];
if (exchangeJob !== undefined) exchangeChild(exchangeJob);
else main().catch((e) => fatal(e instanceof Error ? e.message : String(e)));
