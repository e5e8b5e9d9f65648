/**
 * `codex-network-proxy exec [run flags] -- <command> [args…]` (SPEC-network §11): start the
 * proxy on ephemeral ports, run the command with the client environment (`env.ts`) and the
 * inherited stdin/stdout/stderr, stop the proxy when it exits, print the blocked-request
 * summary on stderr, and exit with the command's status (128+n when a signal ended it).
 *
 * SIGINT, SIGTERM and SIGHUP sent to us are forwarded to the command (which decides when to
 * end); the proxy keeps serving it until it has exited. When stdin is a terminal, SIGINT and
 * SIGHUP are not forwarded: the terminal already sent them to the command's process group. In limited mode with MITM off in the
 * config, MITM is switched on with an ephemeral CA whose certificate and trust bundle live in
 * a temporary folder removed afterwards (the reference does the same for Codex's children);
 * a config that enables MITM keeps its own CA settings. Cooperative: a program may ignore the
 * variables; README "Enforcing exec" shows how to make it the only way out.
 */
import { constants as osConstants } from "node:os";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../log.ts";
import type { RuntimeConfig } from "../types.ts";
import type { CliOverrides } from "../config.ts";
import { clientEnv } from "./env.ts";
import { createBlockTally } from "./block-summary.ts";

/** Options of {@link runExec}. */
export interface ExecOptions {
  /** The loaded config (CLI overrides already applied). */
  config: RuntimeConfig;
  /** Flags given: an explicit `--http/--socks/--admin` is kept, otherwise ports are ephemeral. */
  overrides: CliOverrides;
  /** The command and its arguments (non-empty). */
  command: string[];
  /** Environment the command inherits before the proxy variables are laid over it. */
  env: Record<string, string | undefined>;
  log: Logger;
  /** Where the summary goes (stderr). */
  stderr(text: string): void;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * The config `exec` runs: ephemeral listeners unless given on the command line; in limited
 * mode without MITM, MITM on with an ephemeral CA in `caDir`. Pure.
 */
export function execConfig(cfg: RuntimeConfig, o: CliOverrides, caDir: string): RuntimeConfig {
  const out: RuntimeConfig = {
    ...cfg,
    proxyUrl: o.http ?? "http://127.0.0.1:0",
    socksUrl: o.socks ?? "http://127.0.0.1:0",
    adminUrl: o.admin ?? "http://127.0.0.1:0",
  };
  if (cfg.mode === "limited" && !cfg.mitm.enabled) {
    out.mitm = { ...cfg.mitm, enabled: true, caMode: "ephemeral", caCertPath: join(caDir, "ca.pem"), caKeyPath: join(caDir, "ca.key") };
  }
  return out;
}

/** Exit status of a finished child the way a shell reports it: the code, or 128+n for signal n. */
export function exitStatus(code: number | null, signal: string | number | null): number {
  if (typeof signal === "number") return 128 + signal;
  if (signal) return 128 + ((osConstants.signals as Record<string, number>)[signal] ?? 0);
  return code ?? 1;
}

/**
 * Run the command behind a fresh proxy; resolves to its exit status (127 when it cannot be
 * started: not found or not executable, reported on stderr).
 * @throws whatever startNetworkProxy throws (bind errors, CA errors), before the command runs
 */
export async function runExec(opts: ExecOptions): Promise<number> {
  const caDir = await mkdtemp(join(tmpdir(), "codex-network-proxy-exec-"));
  try {
    const cfg = execConfig(opts.config, opts.overrides, caDir);
    const tally = createBlockTally();
    const { startNetworkProxy } = await import("../server.ts");
    const proxy = await startNetworkProxy({ config: cfg, configFile: null, log: opts.log, handleSignals: false, watch: false, recorder: tally.recorder });
    let status: number;
    try {
      const env = { ...opts.env };
      for (const [k, v] of clientEnv(cfg, proxy.ports)) env[k] = v;
      status = await runChild(opts.command, env, opts.stderr);
    } finally {
      await proxy.stop();
    }
    opts.stderr(tally.render((reason, req, host) => proxy.context.explain(reason, req, host)));
    return status;
  } finally {
    await rm(caDir, { recursive: true, force: true });
  }
}

/** Spawn with inherited stdio, forward signals while it runs, resolve to its exit status. */
async function runChild(command: string[], env: Record<string, string | undefined>, stderr: (t: string) => void): Promise<number> {
  // On a terminal, Ctrl-C (SIGINT) and a hangup (SIGHUP) already reach the whole foreground
  // process group, the command included: forwarding them too would deliver each twice and
  // cut short the command's own clean-up. We still catch them, so the proxy outlives the
  // command. SIGTERM (sent to us alone, e.g. by `kill` or a supervisor) is always forwarded.
  const onTerminal = process.stdin.isTTY === true;
  let child: ReturnType<typeof Bun.spawn> | null = null;
  let pending: (typeof FORWARDED)[number] | null = null;
  // Installed before the spawn: a signal that arrives while the command starts is not lost.
  const forward = new Map(
    FORWARDED.map((sig) => {
      const fn = () => {
        if (onTerminal && sig !== "SIGTERM") return;
        if (child) child.kill(sig);
        else pending = sig;
      };
      return [sig, fn] as const;
    }),
  );
  for (const [sig, fn] of forward) process.on(sig, fn);
  try {
    try {
      child = Bun.spawn(command, { env, stdin: "inherit", stdout: "inherit", stderr: "inherit" });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      stderr(`codex-network-proxy exec: cannot run ${command[0]}: ${code === "ENOENT" ? "command not found" : (e as Error).message}\n`);
      return code === "EACCES" ? 126 : 127;
    }
    if (pending) child.kill(pending);
    await child.exited;
    return exitStatus(child.exitCode, child.signalCode);
  } finally {
    for (const [sig, fn] of forward) process.off(sig, fn);
  }
}
