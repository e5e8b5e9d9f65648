/**
 * The network context every listener receives (types.ts `NetworkContext`): the current
 * config and compiled policy, the `/mode` override, the MITM engine, the resolver and dialer,
 * the `/blocked` recorder and the metrics.
 *
 * `evaluate` runs the pure policy (SPEC-network §3.3) on a snapshot of the current state,
 * then writes exactly one decision line (§9), counts it in the metrics and records blocks in
 * the ring buffer (§7). It fails closed: any fault is a `policy_denied` deny.
 *
 * State changes only through the handle: `setConfig` (a reload: recompiles the policy and
 * drops the `/mode` override, §8), `setMode` (POST /mode), `setMitm`.
 */
import type { Logger } from "../log.ts";
import { createLogger } from "../log.ts";
import type { BlockReason, DenySource } from "./reasons.ts";
import { recordedProtocol } from "./reasons.ts";
import type { Dialer, MitmEngine, Mode, NetworkContext, PolicyRequest, RuntimeConfig, Verdict } from "./types.ts";
import {
  compilePolicy,
  createSystemResolver,
  evaluatePolicy,
  explainDeny,
  type CompiledPolicy,
  type Resolver,
} from "./policy.ts";
import { createDialer } from "./dialer.ts";
import { cachingResolver } from "./resolver-cache.ts";
import { normalizeHost } from "./host.ts";
import { createRecorder, type BlockRecorder } from "./recorder.ts";
import { createMetrics, type ProxyMetrics } from "./metrics.ts";
import { logDecision } from "./decision-log.ts";
import type { Libc } from "../hardening/libc.ts";
import { createSecretStore, type HookSecrets, type SecretStore } from "./hooks/secret-store.ts";

/** Options of {@link createNetworkContext}. */
export interface NetworkContextOptions {
  /** Validated config (loadConfig / parseConfig). Its patterns are compiled here. */
  config: RuntimeConfig;
  /** DNS resolver (default: the system resolver with a 2 s timeout, answers reused for 5 s). Tests map names to 127.0.0.1. */
  resolver?: Resolver;
  /** Outbound dialer (default: createDialer()). */
  dialer?: Dialer;
  /** Logger (default: text lines on stderr, level info). */
  log?: Logger;
  /** MITM engine, or null/absent when MITM is off. Can be set later with `setMitm`. */
  mitm?: MitmEngine | null;
  /** Keep an existing recorder (its entries survive a context rebuild). */
  recorder?: BlockRecorder;
  /** Keep existing metrics. */
  metrics?: ProxyMetrics;
  /**
   * The C library for reading MITM hook secrets into locked memory (SPEC-network §10); default
   * `loadLibc()`, loaded only when a config injects a secret. Null = the no-libc fallback.
   */
  libc?: Libc | null;
}

/** A NetworkContext plus the controls the admin API, the reloader and the server use. */
export interface NetworkContextHandle extends NetworkContext {
  /**
   * Install a new config (a reload): compiles the policy first, so on error (ConfigError,
   * e.g. an invalid glob) nothing changes. Clears the `/mode` override (§8).
   */
  setConfig(cfg: RuntimeConfig): void;
  /** The config as loaded, without the `/mode` override. */
  loadedConfig(): RuntimeConfig;
  /** Set the mode until the next reload (POST /mode). */
  setMode(mode: Mode): void;
  /** The mode in force (override or config). */
  mode(): Mode;
  /** Replace the MITM engine (null = none). The old engine is not stopped here. */
  setMitm(engine: MitmEngine | null): void;
  /** Zero and release the hook secrets (process stop). */
  dispose(): void;
  readonly recorder: BlockRecorder;
  readonly metrics: ProxyMetrics;
  readonly resolver: Resolver;
}

interface State {
  loaded: RuntimeConfig;
  /** `loaded` with the mode override applied; what `config()` returns. */
  effective: RuntimeConfig;
  policy: CompiledPolicy;
  mitm: MitmEngine | null;
  /** The hook secrets read for `loaded` (§10). */
  secrets: HookSecrets;
}

/**
 * Build a context. Compiles the policy of `opts.config` and reads its hook secrets.
 * @throws ConfigError (from compilePolicy) when the config's patterns do not compile;
 *   SecretReadError when a hook secret cannot be read
 */
export function createNetworkContext(opts: NetworkContextOptions): NetworkContextHandle {
  const log = opts.log ?? createLogger();
  // The system resolver behind a 5 s answer cache (resolver-cache.ts: answers are still
  // checked on every request and the dialer dials only checked addresses).
  const resolver = opts.resolver ?? cachingResolver(createSystemResolver());
  const dialer = opts.dialer ?? createDialer();
  const recorder = opts.recorder ?? createRecorder();
  const metrics = opts.metrics ?? createMetrics();
  const store: SecretStore = createSecretStore(opts.libc);
  const policy0 = compilePolicy(opts.config);
  const secrets0 = store.load(opts.config.mitm.hooks);
  store.install(secrets0);
  // Replaced as a whole on every change: an evaluation reads one consistent snapshot.
  let state: State = {
    loaded: opts.config,
    effective: opts.config,
    policy: policy0,
    mitm: opts.mitm ?? null,
    secrets: secrets0,
  };

  const record = (req: PolicyRequest, host: string, reason: BlockReason, source: DenySource, mode: Mode | null) => {
    const protocol = recordedProtocol(req.protocol);
    recorder.push({
      host,
      reason,
      decision: "deny",
      source,
      client: req.client,
      method: req.method,
      mode,
      protocol,
      port: req.port,
      timestamp: Math.floor(Date.now() / 1000),
    });
  };

  const report = (req: PolicyRequest, verdict: Verdict, mode: Mode) => {
    const protocol = recordedProtocol(req.protocol);
    const reason = verdict.action === "deny" ? verdict.reason : verdict.action === "error" ? "dns" : null;
    logDecision(log, {
      decision: verdict.action,
      reason,
      source: verdict.action === "deny" ? verdict.source : null,
      protocol,
      host: verdict.host,
      port: req.port,
      method: req.method,
      client: req.client,
      hook: verdict.action === "allow" ? verdict.hook?.label : undefined,
    });
    metrics.request(protocol, verdict.action, reason);
    if (verdict.action === "deny") record(req, verdict.host, verdict.reason, verdict.source, mode);
  };

  const safeHost = (raw: string): string => {
    try {
      return normalizeHost(raw);
    } catch {
      return raw;
    }
  };

  return {
    config: () => state.effective,
    loadedConfig: () => state.loaded,
    mode: () => state.effective.mode,
    mitm: () => state.mitm,
    dialer,
    metrics,
    log,
    recorder,
    resolver,

    async evaluate(req, opts) {
      const s = state;
      let verdict: Verdict;
      try {
        verdict = await evaluatePolicy(
          s.policy,
          { enabled: s.effective.enabled, mode: s.effective.mode, mitmEnabled: s.mitm !== null },
          req,
          resolver,
        );
      } catch (err) {
        // evaluatePolicy promises never to throw; if it does anyway, deny (fail closed).
        log.error("policy evaluation failed", { error: err instanceof Error ? err.message : String(err) });
        verdict = { action: "deny", reason: "policy_denied", source: "baseline_policy", host: safeHost(req.host) };
      }
      if (!(opts?.provisional && verdict.action === "allow" && verdict.intercept)) report(req, verdict, s.effective.mode);
      if (verdict.action === "allow" && verdict.hook !== undefined) {
        // The lease is taken before anyone can await: a reload cannot free these pages until
        // the forwarder released them (secret-store.ts).
        const fields = s.secrets.fields(verdict.hook.index);
        metrics.hook(verdict.hook.label, fields.length);
        verdict.inject = { fields, release: s.secrets.lease() };
      }
      return verdict;
    },

    recordBlock(req, reason, source = "transport") {
      const host = safeHost(req.host);
      const mode = state.effective.mode;
      report(req, { action: "deny", reason, source, host }, mode);
    },

    explain(reason, req, host) {
      return explainDeny(state.policy, { action: "deny", reason, source: "baseline_policy", host }, req);
    },

    setConfig(cfg) {
      const policy = compilePolicy(cfg); // throws before anything changes
      const secrets = store.load(cfg.mitm.hooks); // likewise (a failed read keeps the last good config)
      state = { loaded: cfg, effective: cfg, policy, mitm: state.mitm, secrets };
      store.install(secrets);
    },

    dispose() {
      store.dispose();
    },

    setMode(mode) {
      const s = state;
      state = { ...s, effective: s.loaded.mode === mode ? s.loaded : { ...s.loaded, mode } };
    },

    setMitm(engine) {
      state = { ...state, mitm: engine };
    },
  };
}
