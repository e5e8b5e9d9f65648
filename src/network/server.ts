/**
 * Starts the whole network proxy (SPEC-network §1, §7, §8): the context, the MITM engine when
 * `mitm.enabled`, the HTTP proxy listener, the SOCKS5 listener when `enable_socks5`, the admin
 * API, and the reloader (file watch, SIGHUP, POST /reload). Returns one handle; `stop()` (or
 * `await using`) undoes everything.
 *
 * Startup lines (stderr, via the logger): `HTTP proxy listening on <addr>`,
 * `SOCKS5 proxy listening on <addr>`, `admin API listening on <addr>`.
 * Listener addresses are bound once: a reload that changes them logs a warning (restart to
 * apply); everything else in a reload applies to the next connection / request.
 */
import { statSync } from "node:fs";
import type { Logger } from "../log.ts";
import { createLogger } from "../log.ts";
import type { Dialer, MitmEngine, NetworkContext, RuntimeConfig } from "./types.ts";
import type { DelegatingListener } from "./listen-delegate.ts";
import type { Resolver } from "./policy.ts";
import type { BlockRecorder } from "./recorder.ts";
import { loadConfig, type CliOverrides } from "./config.ts";
import { clampListenAddress, formatListenAddress, parseListenAddress } from "./listen-addr.ts";
import { DEFAULT_ADMIN_URL, DEFAULT_PORTS, DEFAULT_PROXY_URL, DEFAULT_SOCKS_URL } from "./config-schema.ts";
import { createNetworkContext, type NetworkContextHandle } from "./context.ts";
import { readAdminToken, startAdminServer } from "./admin.ts";
import { createReloader, type ReloadResult, type Reloader } from "./reload.ts";
import { startHttpProxyListener } from "./http/listener.ts";
import { startSocks5Listener } from "./socks5/listener.ts";
import { createConnectionCap, effectiveMaxConnections, type ConnectionCap } from "../net/connection-cap.ts";
import { raiseDescriptorLimit } from "../hardening/fd-limit.ts";

/** Options of {@link startNetworkProxy}. */
export interface NetworkProxyOptions {
  /** The validated config to start with. */
  config: RuntimeConfig;
  /** Config file to watch and reload, or null (then a reload re-applies `config`, resetting `/mode`). */
  configFile: string | null;
  /** CLI overrides re-applied on every reload (they win over the file, §1). */
  overrides?: CliOverrides;
  /** DNS resolver (tests inject one mapping test names to 127.0.0.1). */
  resolver?: Resolver;
  dialer?: Dialer;
  log?: Logger;
  /**
   * Reload on SIGHUP, and on SIGTERM/SIGINT stop with a grace of `shutdownGraceMs` (default
   * true). Tests running several proxies in one process pass false.
   */
  handleSignals?: boolean;
  /** Grace (ms) open connections get on SIGTERM/SIGINT before they are closed; default 2000. */
  shutdownGraceMs?: number;
  /** Watch the config file (default true when `configFile` is set). */
  watch?: boolean;
  /**
   * The process's descriptor limit for the connection cap (§12); default: the soft
   * RLIMIT_NOFILE after raising it to the hard limit. null = unknown (no ceiling).
   */
  fdLimit?: number | null;
  /** The `/blocked` recorder (default a fresh ring buffer); `exec` passes one that also tallies. */
  recorder?: BlockRecorder;
}

/** A running network proxy. */
export interface NetworkProxy {
  /** Bound ports; `socks` is null when SOCKS5 is disabled. */
  readonly ports: { http: number; socks: number | null; admin: number };
  /** The `max_connections` cap shared by the HTTP and SOCKS5 listeners (max, open, refused). */
  readonly connections: ConnectionCap;
  readonly context: NetworkContextHandle;
  readonly reloader: Reloader;
  /** Same as POST /reload. Never throws. */
  reload(): Promise<ReloadResult>;
  /**
   * Stop accepting on every listener and stop the admin API at once, let open proxy
   * connections (tunnels included) run for up to `graceMs` (default 0), close the rest, then
   * stop the reloader and the MITM engine (SPEC-network §1). Calling it again returns the
   * same promise (the first call's grace applies).
   */
  stop(opts?: { graceMs?: number }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Identity of the MITM setup of a config: a reload rebuilds the engine only when it changes (paths or replaced CA files). */
function mitmKey(cfg: RuntimeConfig): string {
  if (!cfg.mitm.enabled) return "";
  const stamp = (p: string) => {
    try {
      const s = statSync(p);
      return `${s.ino}:${s.mtimeMs}`;
    } catch {
      return "missing";
    }
  };
  return [cfg.mitm.caCertPath, stamp(cfg.mitm.caCertPath), cfg.mitm.caKeyPath, stamp(cfg.mitm.caKeyPath)].join("\0");
}

/**
 * Where a listener address was set, so a bind failure can name it: the flag when it was given,
 * else the config key (`default` when the value is the built-in one).
 */
interface AddressSetting {
  flag: string;
  key: string;
  fromFlag: boolean;
  isDefault: boolean;
}

/**
 * Run a listener start, turning a bind failure into an error naming the listener and address;
 * a busy port (EADDRINUSE) says so in words and names the flag or key that set the address.
 */
async function bind<T>(what: string, addr: { host: string; port: number }, setting: AddressSetting, start: () => T | Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `cannot listen on ${formatListenAddress(addr)} (${what})`;
    if (code === "EADDRINUSE") {
      const by = setting.fromFlag
        ? `set by ${setting.flag} (choose another address there or in ${setting.key})`
        : `set by ${setting.key}${setting.isDefault ? " (its default)" : ""} (choose another address there or with ${setting.flag})`;
      throw new Error(`${where}: address already in use; ${by}`);
    }
    const why = code ? `${code}: ${(err as Error).message}` : (err as Error).message;
    throw new Error(`${where}: ${why}`);
  }
}

/**
 * Build the MITM engine for `cfg`, or null when MITM is off. Creates the CA when neither
 * file exists (§6), or mints an ephemeral one, and writes the trust bundle (§11).
 * @throws MitmCaError when the CA can't be loaded or created
 */
async function buildMitm(ctx: NetworkContextHandle, cfg: RuntimeConfig): Promise<MitmEngine | null> {
  if (!cfg.mitm.enabled) return null;
  // Loaded on first use: the MITM stack (node-forge X.509) costs ~10 MiB of memory that a
  // proxy without MITM never needs (idle RSS target, SPEC-network §1).
  const [{ prepareCa }, { createMitmEngine }] = await Promise.all([import("./mitm/ca-setup.ts"), import("./mitm/engine.ts")]);
  const ca = await prepareCa(cfg.mitm, ctx.log);
  const engine = createMitmEngine(ctx, ca);
  try {
    // Leaf key generation runs in the background; a failure should surface at startup/reload.
    await engine.ready;
  } catch (err) {
    engine.stop();
    throw err;
  }
  return engine;
}

/**
 * Start every listener of the proxy.
 * @throws ConfigError / MitmCaError / bind errors (EADDRINUSE); whatever was started is stopped first
 */
export async function startNetworkProxy(opts: NetworkProxyOptions): Promise<NetworkProxy> {
  const log = opts.log ?? createLogger();
  const listenerStops: Array<(graceMs: number) => Promise<void>> = [];
  const initial = opts.config;
  const ctx = createNetworkContext({ config: initial, resolver: opts.resolver, dialer: opts.dialer, log, recorder: opts.recorder });
  const fdLimit = opts.fdLimit !== undefined ? opts.fdLimit : raiseDescriptorLimit((m) => log.warn(m));
  // One cap across the HTTP and SOCKS5 listeners (the admin API is not counted), set at start.
  const cap = createConnectionCap({
    max: effectiveMaxConnections(initial.maxConnections, fdLimit),
    warn: (line) => log.warn(line),
    onRefused: () => ctx.metrics.connectionRefused(),
  });
  // Runs last (cleanups run in reverse): hook secrets are zeroed once nothing can use them.
  const cleanups: Array<() => unknown> = [() => ctx.dispose()];
  let graceMs = 0;
  const undo = async () => {
    // Listeners first and together: all stop accepting now and share one grace period; the
    // MITM engine and the reloader stay up until the connections that use them are gone.
    await Promise.all(listenerStops.splice(0).map((fn) => fn(graceMs).catch(() => {})));
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.debug("stop step failed", { error: err instanceof Error ? err.message : String(err) });
      }
    }
    cleanups.length = 0;
  };

  try {
    let token = initial.adminTokenFile ? readAdminToken(initial.adminTokenFile, (m) => log.warn(m)) : null;
    let mitm = await buildMitm(ctx, initial);
    let mitmFor = mitmKey(initial);
    ctx.setMitm(mitm);
    cleanups.push(() => ctx.mitm()?.stop());

    const unixForce = initial.policy.allowUnixSockets.length > 0;
    /** Parse, clamp (§1: loopback unless allowed; forced with unix sockets) and bind one proxy listener. */
    const setting = (flag: "http" | "socks" | "admin", key: string, value: string, defaultValue: string): AddressSetting => ({
      flag: `--${flag}`,
      key: `network_proxy.${key}`,
      fromFlag: opts.overrides?.[flag] !== undefined,
      isDefault: value === defaultValue,
    });
    const listen = async (
      what: string,
      url: string,
      defaultPort: number,
      where: AddressSetting,
      start: (c: NetworkContext, a: { host: string; port: number }, o: { cap: ConnectionCap }) => DelegatingListener,
    ) => {
      const addr = clampListenAddress(
        parseListenAddress(url, defaultPort),
        { allowNonLoopback: initial.dangerouslyAllowNonLoopbackProxy, forceLoopback: unixForce, what },
        log,
      );
      const listener = await bind(what, addr, where, () => start(ctx, addr, { cap }));
      listenerStops.push((graceMs) => listener.stop({ graceMs }));
      log.info(`${what} listening on ${formatListenAddress({ host: addr.host, port: listener.port })}`);
      return listener.port;
    };
    const httpWhere = setting("http", "proxy_url", initial.proxyUrl, DEFAULT_PROXY_URL);
    const httpPort = await listen("HTTP proxy", initial.proxyUrl, DEFAULT_PORTS.http, httpWhere, startHttpProxyListener);
    const socksPort = initial.enableSocks5
      ? await listen("SOCKS5 proxy", initial.socksUrl, DEFAULT_PORTS.socks, setting("socks", "socks_url", initial.socksUrl, DEFAULT_SOCKS_URL), startSocks5Listener)
      : null;

    const file = opts.configFile;
    const reloader = createReloader({
      file: file ?? "",
      watch: file !== null && (opts.watch ?? true),
      sighup: opts.handleSignals ?? true,
      log,
      metrics: ctx.metrics,
      current: () => ctx.loadedConfig(),
      // Required on reload: a file deleted or renamed after start keeps the last good config
      // (§8) instead of silently turning into the defaults.
      load: async () => (file === null ? initial : await loadConfig(file, opts.overrides, (m) => log.warn(m), { required: true })),
      async apply(next) {
        // Prepare everything that can fail first; commit only when all of it worked.
        const nextToken = next.adminTokenFile ? readAdminToken(next.adminTokenFile, (m) => log.warn(m)) : null;
        const key = mitmKey(next);
        const nextMitm = key === mitmFor ? mitm : await buildMitm(ctx, next);
        try {
          ctx.setConfig(next);
        } catch (err) {
          if (nextMitm !== mitm) nextMitm?.stop();
          throw err;
        }
        if (nextMitm !== mitm) {
          mitm?.stop();
          mitm = nextMitm;
          mitmFor = key;
          ctx.setMitm(mitm);
        }
        token = nextToken;
        const prev = initial;
        if (
          next.proxyUrl !== prev.proxyUrl ||
          next.socksUrl !== prev.socksUrl ||
          next.adminUrl !== prev.adminUrl ||
          next.enableSocks5 !== prev.enableSocks5 ||
          next.maxConnections !== prev.maxConnections
        ) {
          log.warn("listener settings changed in the config; restart the proxy to apply them");
        }
      },
    });
    cleanups.push(() => reloader.stop());

    const adminAddr = clampListenAddress(
      parseListenAddress(initial.adminUrl, DEFAULT_PORTS.admin),
      { allowNonLoopback: initial.dangerouslyAllowNonLoopbackAdmin, forceLoopback: unixForce, what: "admin API" },
      log,
    );
    const admin = await bind("admin API", adminAddr, setting("admin", "admin_url", initial.adminUrl, DEFAULT_ADMIN_URL), () =>
      startAdminServer(ctx, adminAddr, {
        reload: () => reloader.reload("admin"),
        lastReloadError: () => reloader.lastError(),
        token: () => token,
      }),
    );
    // Stops with the proxy listeners (all stop listening at once); it does not wait for the grace.
    listenerStops.push(() => admin.stop());
    log.info(`admin API listening on ${formatListenAddress({ host: adminAddr.host, port: admin.port })}`);

    let stopping: Promise<void> | null = null;
    const stop = (stopOpts: { graceMs?: number } = {}) => {
      if (!stopping) {
        graceMs = Math.max(0, stopOpts.graceMs ?? 0);
        stopping = undo();
      }
      return stopping;
    };
    if (opts.handleSignals ?? true) {
      // SIGTERM/SIGINT: the CLI (cli.ts) waits for stop() and exits 0; this handler, installed
      // first, makes that stop graceful. stop() is idempotent, so the CLI's own call joins it.
      const shutdownGraceMs = opts.shutdownGraceMs ?? 2000;
      const onSignal = () => void stop({ graceMs: shutdownGraceMs });
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
      cleanups.push(() => {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      });
    }
    return {
      ports: { http: httpPort, socks: socksPort, admin: admin.port },
      connections: cap,
      context: ctx,
      reloader,
      reload: () => reloader.reload("admin"),
      stop,
      [Symbol.asyncDispose]: () => stop(),
    };
  } catch (err) {
    await undo();
    throw err;
  }
}
