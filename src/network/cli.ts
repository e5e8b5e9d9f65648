/**
 * Command line of codex-network-proxy (SPEC-network §1):
 * ```
 * codex-network-proxy [run] [--config FILE] [--mode limited|full] [--allow PATTERN]... [--deny PATTERN]...
 *                     [--http ADDR] [--socks ADDR] [--admin ADDR] [--server-info FILE]
 *                     [--log-format text|json] [--log-level LEVEL]
 * codex-network-proxy init [--config FILE]
 * codex-network-proxy check-config [--config FILE] [override flags]
 * codex-network-proxy env [--config FILE] [--server-info FILE] [--format sh|fish|powershell|dotenv|json]
 * codex-network-proxy exec [--config FILE] [override flags] -- COMMAND [ARGS...]
 * ```
 * Commands are declared with citty (definitions, `--help` text). Parsing is strict through
 * `node:util` parseArgs, because citty accepts unknown flags silently and keeps only the
 * last of repeated flags: an unknown flag, a missing value or a bad value is a usage error,
 * exit 2. Config errors exit 1 (`Error: <message>` on stderr). Only `--help`, `--version`,
 * `init` and `check-config` write to stdout.
 */
import { parseArgs as parseArgv } from "node:util";
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { defineCommand, renderUsage, type ArgsDef, type CommandDef } from "citty";
import { batchedStderr, createLogger, parseLogLevel, type LogFormat, type Logger, type LogLevel } from "../log.ts";
import type { Mode } from "./types.ts";
import { configToJson, defaultConfigPath, loadConfigWithSource, type CliOverrides, type LoadedConfig } from "./config.ts";
import { configSummary } from "./config-report.ts";
import { compilePolicy } from "./policy.ts";
import { writeFileAtomic } from "./clients/atomic-write.ts";
import { clientEnv, ENV_FORMATS, parseServerInfo, renderEnv, shQuote, type EnvFormat, type ServerPorts } from "./clients/env.ts";
import { PACKAGE_VERSION, VERSION_TEXT } from "../version.ts";

/** Where a CLI run writes (tests capture these). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
}

const defaultIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
};

const configArg: ArgsDef = {
  config: { type: "string", valueHint: "FILE", description: "config.toml, or a .json file {\"network\":{…}} (default $CODEX_HOME/config.toml)" },
  profile: { type: "string", valueHint: "NAME", description: "read [permissions.NAME.network] of config.toml instead of [network_proxy]" },
};
const logArgs: ArgsDef = {
  "log-format": { type: "enum", options: ["text", "json"], description: "log line format on stderr (default text)" },
  "log-level": { type: "string", valueHint: "LEVEL", description: "error, warn, info (default) or debug" },
};
const overrideArgs: ArgsDef = {
  mode: { type: "enum", options: ["limited", "full"], description: "override network_proxy.mode" },
  allow: { type: "string", valueHint: "PATTERN", description: "append to allowed_domains (repeatable)" },
  deny: { type: "string", valueHint: "PATTERN", description: "append to denied_domains (repeatable)" },
  http: { type: "string", valueHint: "ADDR", description: "HTTP proxy listen address (127.0.0.1:0 = ephemeral)" },
  socks: { type: "string", valueHint: "ADDR", description: "SOCKS5 listen address" },
  admin: { type: "string", valueHint: "ADDR", description: "admin API listen address" },
};

const runArgs: ArgsDef = {
  ...configArg,
  ...overrideArgs,
  "server-info": { type: "string", valueHint: "FILE", description: 'write {"http","socks","admin","pid"} once listening' },
  ...logArgs,
};
const initArgs: ArgsDef = { ...configArg, ...logArgs };
const checkArgs: ArgsDef = { ...configArg, ...overrideArgs, ...logArgs };
const envArgs: ArgsDef = {
  ...configArg,
  "server-info": { type: "string", valueHint: "FILE", description: "ports of a running instance (its --server-info file)" },
  format: { type: "enum", options: [...ENV_FORMATS], description: "sh (default), fish, powershell, dotenv or json" },
};
const execArgs: ArgsDef = { ...configArg, ...overrideArgs, ...logArgs };

const runCmd = defineCommand({ meta: { name: "run", description: "run the proxy (default)" }, args: runArgs });
const initCmd = defineCommand({ meta: { name: "init", description: "create the MITM CA if missing and print how to trust it" }, args: initArgs });
const checkCmd = defineCommand({ meta: { name: "check-config", description: "validate the config and print it as JSON" }, args: checkArgs });
const envCmd = defineCommand({ meta: { name: "env", description: "print the variables that point clients at the proxy (eval \"$(codex-network-proxy env)\")" }, args: envArgs });
const execCmd = defineCommand({
  meta: { name: "exec", description: "run a command behind a fresh proxy on ephemeral ports: exec [flags] -- COMMAND [ARGS...]" },
  args: execArgs,
});
const mainCmd = defineCommand({
  meta: { name: "codex-network-proxy", version: PACKAGE_VERSION, description: "local egress policy proxy (HTTP, SOCKS5, admin API)" },
  args: runArgs,
  subCommands: { run: runCmd, init: initCmd, "check-config": checkCmd, env: envCmd, exec: execCmd },
});

class UsageError extends Error {}

type Parsed = Record<string, string | string[] | boolean | undefined>;

/** Strict parse of `argv` against a citty args definition. @throws UsageError */
function strictParse(argv: string[], def: ArgsDef): Parsed {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
  };
  for (const [name, a] of Object.entries(def)) {
    options[name] = { type: a.type === "boolean" ? "boolean" : "string", multiple: name === "allow" || name === "deny" };
  }
  let values: Parsed;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgv({ args: argv, options, strict: true, allowPositionals: true }) as {
      values: Parsed;
      positionals: string[];
    });
  } catch (err) {
    // node:util messages mention "Unknown option '--x'" etc.; keep them, they name the flag.
    throw new UsageError((err as Error).message.split(". ")[0]!.replace(/^TypeError \[\w+\]: /, ""));
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  for (const [name, a] of Object.entries(def)) {
    const v = values[name];
    if (a.type === "enum" && typeof v === "string" && !a.options!.includes(v)) {
      throw new UsageError(`invalid value for --${name}: ${v} (expected ${a.options!.join(" or ")})`);
    }
  }
  return values;
}

/**
 * Check a listen-address flag: `[scheme://]host:port` or `[v6]:port`, port 0–65535 in
 * decimal. Stricter than the config file (where a bad port falls back to the default),
 * because a typo on the command line should not silently bind elsewhere.
 * @throws UsageError
 */
export function checkAddressFlag(flag: string, value: string): void {
  let v = value.trim();
  const scheme = v.indexOf("://");
  if (scheme >= 0) v = v.slice(scheme + 3);
  const slash = v.indexOf("/");
  if (slash >= 0) v = v.slice(0, slash);
  const at = v.lastIndexOf("@");
  if (at >= 0) v = v.slice(at + 1);
  let host: string;
  let port: string;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    host = end > 1 ? v.slice(1, end) : "";
    port = end > 0 && v[end + 1] === ":" ? v.slice(end + 2) : "";
  } else {
    const c = v.lastIndexOf(":");
    host = c >= 0 ? v.slice(0, c) : v;
    port = c >= 0 ? v.slice(c + 1) : "";
    if (host.includes(":")) throw new UsageError(`invalid --${flag} address: ${value} (write IPv6 as [addr]:port)`);
  }
  if (host === "") throw new UsageError(`invalid --${flag} address: ${value} (missing host)`);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new UsageError(`invalid --${flag} address: ${value} (expected host:port with a port from 0 to 65535)`);
  }
}

/** `--profile` alone (commands without override flags). */
function profileFrom(v: Parsed): CliOverrides {
  return typeof v.profile === "string" ? { profile: v.profile } : {};
}

function overridesFrom(v: Parsed): CliOverrides {
  const o: CliOverrides = profileFrom(v);
  if (typeof v.mode === "string") o.mode = v.mode as Mode;
  if (Array.isArray(v.allow)) o.allow = v.allow;
  if (Array.isArray(v.deny)) o.deny = v.deny;
  for (const k of ["http", "socks", "admin"] as const) {
    const a = v[k];
    if (typeof a === "string") {
      checkAddressFlag(k, a);
      o[k] = a;
    }
  }
  return o;
}

function loggerFrom(v: Parsed, io: CliIo, defaultLevel: LogLevel = "info"): Logger {
  let level: LogLevel = defaultLevel;
  if (typeof v["log-level"] === "string") {
    try {
      level = parseLogLevel(v["log-level"]);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const format = (v["log-format"] as LogFormat | undefined) ?? "text";
  return createLogger({ format, level, sink: (line) => io.stderr(line + "\n") });
}

/**
 * Load the config named by `--config` (which must then exist) or the default path (missing →
 * defaults); warnings go to `log`.
 */
function loadFromFlags(v: Parsed, io: CliIo, log: Logger, overrides: CliOverrides = {}): Promise<LoadedConfig & { file: string }> {
  const named = typeof v.config === "string";
  const file = named ? (v.config as string) : defaultConfigPath(io.env);
  return loadConfigWithSource(file, overrides, (m) => log.warn(m), { required: named }).then((l) => ({ ...l, file }));
}

/** `JSON.stringify` of the server-info line (SPEC-network §1), keys in this order. */
export function serverInfoLine(ports: { http: number; socks: number | null; admin: number }, pid: number): string {
  return JSON.stringify({ http: ports.http, socks: ports.socks, admin: ports.admin, pid }) + "\n";
}

async function writeServerInfo(file: string, line: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // Write then rename, so a watcher never reads a half-written line.
  await writeFileAtomic(file, line, 0o644);
}

/** `run`: start everything, wait for SIGTERM/SIGINT, stop, return the exit code. */
async function cmdRun(v: Parsed, io: CliIo): Promise<number> {
  const overrides = overridesFrom(v);
  const log = loggerFrom(v, io);
  const { config, source, file } = await loadFromFlags(v, io, log, overrides);
  if (!config.enabled) {
    io.stderr("network_proxy.enabled is false; not starting listeners\n");
    return 0;
  }
  // Loaded here, not at the top: `init` and `check-config` need none of the listener code.
  const { startNetworkProxy } = await import("./server.ts");
  const summary = configSummary(source, config);
  log.info(summary.msg, summary.fields);
  const proxy = await startNetworkProxy({ config, configFile: file, overrides, log });
  // A fault in one connection's code must not take every other connection down (the listeners
  // already catch per-connection errors; this is the last line of defence). Logged, not hidden.
  process.on("uncaughtException", (err) => log.error("internal error; still serving", { error: err.message }));
  process.on("unhandledRejection", (err) =>
    log.error("internal error (promise); still serving", { error: err instanceof Error ? err.message : String(err) }),
  );
  const done = Promise.withResolvers<number>();
  const onSignal = (sig: string) => {
    log.info(`received ${sig}; shutting down`);
    proxy.stop().then(
      () => done.resolve(0),
      () => done.resolve(0),
    );
  };
  const onTerm = () => onSignal("SIGTERM");
  const onInt = () => onSignal("SIGINT");
  process.once("SIGTERM", onTerm);
  process.once("SIGINT", onInt);
  if (typeof v["server-info"] === "string") {
    try {
      await writeServerInfo(v["server-info"], serverInfoLine(proxy.ports, process.pid));
    } catch (err) {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      await proxy.stop();
      throw new Error(`writing --server-info: ${(err as Error).message}`);
    }
  }
  return done.promise;
}

/** `init`: ensure the MITM folder and CA exist; print where it is and how to trust it. */
async function cmdInit(v: Parsed, io: CliIo): Promise<number> {
  const log = loggerFrom(v, io);
  const { config } = await loadFromFlags(v, io, log, profileFrom(v));
  const { caCertPath, caKeyPath } = config.mitm;
  if (config.mitm.caMode === "ephemeral") {
    io.stdout(
      `network_proxy.mitm.ca_mode is "ephemeral": nothing to create; every run makes a fresh CA and writes its certificate to ${caCertPath} and the trust bundle beside it.\n` +
        `Point clients at a running proxy with:  eval "$(codex-network-proxy env${typeof v.config === "string" ? ` --config ${shQuote(v.config)}` : ""})"\n`,
    );
    return 0;
  }
  // 0700 like `run` (SPEC-network §6): the folder holds the CA key.
  await mkdir(dirname(caCertPath), { recursive: true, mode: 0o700 });
  if (dirname(caKeyPath) !== dirname(caCertPath)) await mkdir(dirname(caKeyPath), { recursive: true, mode: 0o700 });
  // Loaded here only: the X.509 stack is not needed by the proxy unless MITM is on (server.ts).
  const [{ loadOrCreateCa }, { trustHintLines }] = await Promise.all([import("./mitm/ca.ts"), import("./mitm/trust-hints.ts")]);
  const ca = await loadOrCreateCa(caCertPath, caKeyPath, { create: true });
  const { writeTrustBundle } = await import("./clients/ca-bundle.ts");
  const bundle = await writeTrustBundle(ca.certPath, ca.certPem, io.env);
  io.stdout(
    [
      `MITM CA certificate: ${ca.certPath} (${ca.created ? "created" : "already present"})`,
      `MITM CA private key: ${ca.keyPath}`,
      "",
      "Clients must trust this certificate for limited-mode HTTPS (network_proxy.mitm.enabled = true):",
      ...trustHintLines(ca.certPath),
      "",
      `Trust bundle (system roots + this CA): ${bundle.path}`,
      `Point a shell's clients at the proxy (proxy variables, and the bundle when mitm.enabled):`,
      `  eval "$(codex-network-proxy env${typeof v.config === "string" ? ` --config ${shQuote(v.config)}` : ""})"`,
      "",
    ].join("\n"),
  );
  return 0;
}

/**
 * `check-config`: load, validate (patterns compiled too), print the effective config on
 * stdout and the startup summary line on stderr.
 */
async function cmdCheck(v: Parsed, io: CliIo): Promise<number> {
  const overrides = overridesFrom(v);
  const log = loggerFrom(v, io);
  const { config, source } = await loadFromFlags(v, io, log, overrides);
  compilePolicy(config);
  const summary = configSummary(source, config);
  log.info(summary.msg, summary.fields);
  io.stdout(JSON.stringify(configToJson(config), null, 2) + "\n");
  return 0;
}

/** `env`: print the §11 client variables for the config (ports of a running instance with --server-info). */
async function cmdEnv(v: Parsed, io: CliIo): Promise<number> {
  const named = typeof v.config === "string";
  const file = named ? (v.config as string) : defaultConfigPath(io.env);
  const { config } = await loadConfigWithSource(file, profileFrom(v), (m) => io.stderr(`warning: ${m}\n`), { required: named });
  let ports: ServerPorts | undefined;
  if (typeof v["server-info"] === "string") {
    const info = v["server-info"];
    const text = await readFile(info, "utf8").catch((e: NodeJS.ErrnoException) => {
      throw new Error(`${info}: cannot read server-info file (${e.code ?? "error"}); is the proxy running with --server-info?`);
    });
    ports = parseServerInfo(text, info);
  }
  io.stdout(renderEnv(clientEnv(config, ports), (v.format as EnvFormat | undefined) ?? "sh"));
  return 0;
}

/** `exec`: the command after `--` behind a fresh proxy (clients/exec.ts). Logs default to warnings only. */
async function cmdExec(v: Parsed, io: CliIo, command: string[]): Promise<number> {
  if (command.length === 0) throw new UsageError("exec needs a command after --");
  const overrides = overridesFrom(v);
  const log = loggerFrom(v, io, "warn");
  const { config } = await loadFromFlags(v, io, log, overrides);
  if (!config.enabled) throw new Error("network_proxy.enabled is false; not running the command without its proxy");
  const { runExec } = await import("./clients/exec.ts");
  return runExec({ config, overrides, command, env: io.env, log, stderr: io.stderr });
}

const COMMANDS: Record<string, { def: ArgsDef; cmd: CommandDef<any>; fn: (v: Parsed, io: CliIo, rest: string[]) => Promise<number> }> = {
  run: { def: runArgs, cmd: runCmd, fn: cmdRun },
  init: { def: initArgs, cmd: initCmd, fn: cmdInit },
  "check-config": { def: checkArgs, cmd: checkCmd, fn: cmdCheck },
  env: { def: envArgs, cmd: envCmd, fn: cmdEnv },
  exec: { def: execArgs, cmd: execCmd, fn: cmdExec },
};

/**
 * Run the CLI with `argv` (without the executable). Resolves to the exit code: 0 success
 * (for `run`: after SIGTERM/SIGINT), 1 config or startup error, 2 usage error.
 */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  if (io === defaultIo) {
    // Every stderr line (log lines, `Error:` lines) through one batching writer, in order: a
    // write per line costs a syscall per decision and access line (see batchedStderr).
    const line = batchedStderr();
    io = {
      ...io,
      stderr: (t) => {
        if (t !== "") line(t.endsWith("\n") ? t.slice(0, -1) : t);
      },
    };
  }
  const name = argv[0] !== undefined && argv[0] in COMMANDS ? argv[0] : "run";
  let rest = name === argv[0] ? argv.slice(1) : argv;
  const command = COMMANDS[name]!;
  // exec: everything after the first `--` is the command, never our flags.
  let tail: string[] = [];
  if (name === "exec" && rest.includes("--")) {
    tail = rest.slice(rest.indexOf("--") + 1);
    rest = rest.slice(0, rest.indexOf("--"));
  }
  let values: Parsed;
  try {
    values = strictParse(rest, command.def);
  } catch (err) {
    io.stderr(`error: ${(err as Error).message}\nRun 'codex-network-proxy --help' for usage.\n`);
    return 2;
  }
  if (values.help) {
    const usage = await renderUsage(name === argv[0] ? command.cmd : mainCmd, name === argv[0] ? mainCmd : undefined);
    io.stdout(usage.replace(/\x1b\[[0-9;]*m/g, "") + "\n");
    return 0;
  }
  if (values.version) {
    io.stdout(`codex-network-proxy ${VERSION_TEXT}\n`);
    return 0;
  }
  try {
    return await command.fn(values, io, tail);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\nRun 'codex-network-proxy --help' for usage.\n`);
      return 2;
    }
    io.stderr(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
