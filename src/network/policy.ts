/**
 * The policy decision (SPEC-network §3): one function that every transport asks, returning
 * allow (with the checked addresses to dial, §3.4), deny with a reason and its source, or a
 * DNS error. Everything known when a request is judged is judged here, once: host lists,
 * local addresses, proxy state (disabled, MITM not available), the limited-mode method rule
 * (`allowsMethod`, the one definition of "read-only") including write channels, and the
 * `x-unix-socket` allow list. Pure apart from the injected resolver and realpath; compiled
 * once per config.
 */
import { lookup } from "node:dns/promises";
import { realpath as fsRealpath } from "node:fs/promises";
import { isAbsolute } from "node:path";
import type { BlockReason, DenySource } from "./reasons.ts";
import type { Mode, PolicyRequest, RuntimeConfig, Verdict } from "./types.ts";
import { isLocalLiteral, isNonPublicAddress } from "./addr-class.ts";
import { isIpLiteral, normalizeHost } from "./host.ts";
import { compilePatterns, type DomainMatcher } from "./patterns.ts";
import { compileHooks, hookHint, type HookTable } from "./hooks/match.ts";
import { judgeHooks } from "./hooks/policy-step.ts";

/**
 * Resolves a name to every A and AAAA answer (strings, IPv4 dotted quad or IPv6).
 * Rejects on failure, timeout or an empty answer set.
 */
export type Resolver = (host: string) => Promise<string[]>;

/** The policy part of a config, compiled once (§3.2: never per request). */
export interface CompiledPolicy {
  readonly allowed: DomainMatcher;
  readonly denied: DomainMatcher;
  readonly allowLocalBinding: boolean;
  /** `allow_unix_sockets` entries (absolute paths). */
  readonly unixSockets: readonly string[];
  /** MITM hooks (§10). */
  readonly hooks: HookTable;
}

/** The switches of the current state that the decision depends on (reloads and `/mode` change them). */
export interface PolicyState {
  enabled: boolean;
  mode: Mode;
  mitmEnabled: boolean;
}

/** Methods limited mode allows (§3.3 step 7): the one read-only method set of the proxy. */
export const READ_ONLY_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether `mode` lets `method` through (the reference's `NetworkMode::allows_method`, plus
 * the write-channel rule of SPEC-network §4): full mode allows every method; limited mode
 * GET, HEAD and OPTIONS, and only when the request is not a write channel (`writeChannel`:
 * a body, `Upgrade`, or a non-read method override). Beyond: git's smart-HTTP fetch
 * (`gitFetch`, `git-fetch.ts`: `POST …/git-upload-pack`) only reads, so limited mode allows it.
 */
export function allowsMethod(mode: Mode, method: string, writeChannel = false, gitFetch = false): boolean {
  return mode === "full" || (READ_ONLY_METHODS.has(method) && !writeChannel) || (gitFetch && method === "POST");
}

/** Compile the policy lists of a config. Throws `ConfigError` for a bad pattern. */
export function compilePolicy(cfg: RuntimeConfig): CompiledPolicy {
  return {
    allowed: compilePatterns(cfg.policy.allowedDomains, "allowed"),
    denied: compilePatterns(cfg.policy.deniedDomains, "denied"),
    allowLocalBinding: cfg.policy.allowLocalBinding,
    unixSockets: [...cfg.policy.allowUnixSockets],
    hooks: compileHooks(cfg.mitm.hooks),
  };
}

/** The `dns.lookup(host, {all: true})` shape the system resolver calls (injectable for tests). */
export type LookupAll = (host: string) => Promise<Array<{ address: string }>>;

const systemLookup: LookupAll = (host) => lookup(host, { all: true, verbatim: true });

/**
 * The system resolver: `dns.lookup(host, {all: true})` (getaddrinfo, so /etc/hosts applies),
 * every A and AAAA answer, deduplicated, with a timeout (default 2000 ms, §3.3 step 6).
 * Rejects with an Error whose message names the host and the failure (`ENOTFOUND`, timeout,
 * no addresses). `lookupAll` replaces the system lookup in tests.
 */
export function createSystemResolver(timeoutMs = 2000, lookupAll: LookupAll = systemLookup): Resolver {
  return async (host: string) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`DNS lookup of ${host} timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const answers = await Promise.race([lookupAll(host), timeout]);
      const out = [...new Set(answers.map((a) => a.address))];
      if (out.length === 0) throw new Error(`DNS lookup of ${host} returned no addresses`);
      return out;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === "string") throw new Error(`DNS lookup of ${host} failed: ${code}`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
}

const deny = (reason: BlockReason, source: DenySource, host: string): Verdict => ({ action: "deny", reason, source, host });

/** Resolves symlinks of a path (node:fs `realpath`; injectable for tests). Rejects when it does not exist. */
export type Realpath = (path: string) => Promise<string>;

/**
 * The mode step (§3.3 step 7, §4, §5), after the host was judged. Full mode allows all.
 * Limited mode: `https_connect` needs MITM to judge the inner requests (`mitm_required`,
 * source `proxy_state`); UDP datagrams are dropped (`method_not_allowed`); a null method is
 * not judged yet (SOCKS5 TCP: the peeked request is judged later) unless `writeChannel` says
 * the stream cannot be read (then `method_not_allowed`); any other method goes through
 * `allowsMethod`.
 */
function modeGuard(req: PolicyRequest, state: PolicyState): Verdict | null {
  if (state.mode === "full") return null;
  if (req.protocol === "https_connect") return state.mitmEnabled ? null : deny("mitm_required", "proxy_state", "");
  if (req.protocol === "socks5_udp") return deny("method_not_allowed", "mode_guard", "");
  // No method: not judged yet (SOCKS5 before peeking), unless the stream is known to be one the
  // proxy cannot read (a write channel by definition: not HTTP, or TLS without MITM).
  if (req.method === null) return req.writeChannel ? deny("method_not_allowed", "mode_guard", "") : null;
  if (allowsMethod(state.mode, req.method, req.writeChannel, req.gitFetch)) return null;
  return deny("method_not_allowed", "mode_guard", "");
}

/** The host every `x-unix-socket` decision names (SPEC-network §4). */
export const UNIX_SOCKET_HOST = "unix-socket";

/**
 * `x-unix-socket` requests (SPEC-network §4; the domain lists are not consulted): mode step,
 * then the path must be absolute and equal to an `allow_unix_sockets` entry, literally or
 * after resolving symlinks on both sides. The allow names the path to connect to in
 * `addresses[0]`: the literal entry, or the resolved path that was checked.
 */
async function evaluateUnixSocket(p: CompiledPolicy, state: PolicyState, req: PolicyRequest, realpath: Realpath): Promise<Verdict> {
  const guard = modeGuard(req, state);
  if (guard !== null) return { ...guard, host: UNIX_SOCKET_HOST };
  const path = req.socketPath ?? "";
  if (process.platform === "win32" || !isAbsolute(path)) return deny("not_allowed", "baseline_policy", UNIX_SOCKET_HOST);
  if (p.unixSockets.includes(path)) return { action: "allow", host: UNIX_SOCKET_HOST, addresses: [path] };
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return deny("not_allowed", "baseline_policy", UNIX_SOCKET_HOST);
  }
  for (const entry of p.unixSockets) {
    if (entry === real) return { action: "allow", host: UNIX_SOCKET_HOST, addresses: [real] };
    try {
      if ((await realpath(entry)) === real) return { action: "allow", host: UNIX_SOCKET_HOST, addresses: [real] };
    } catch {
      // An entry that does not exist matches nothing.
    }
  }
  return deny("not_allowed", "baseline_policy", UNIX_SOCKET_HOST);
}

/**
 * Decide a request (SPEC-network §3.3, first hit wins): 1 disabled → `proxy_disabled`
 * (`proxy_state`); 2 empty host → `not_allowed`; 3 denylist → `denied`; 4 local literal
 * without an exact allowlist entry → `not_allowed_local`; 5 allowlist miss → `not_allowed`
 * (the name is NOT resolved); 6 resolve names once and deny `not_allowed_local` if any answer
 * is non-public (skipped checks with `allow_local_binding`, still resolved so the dial is
 * pinned); 6b the MITM-hook step (§10, `judgeHooks`, source `mitm_hook`: plaintext to a
 * hooked host → `mitm_required`, no matching hook → `mitm_hook_denied`; a hooked tunnel is
 * allowed with `intercept` in both modes, `mitm_required` (`proxy_state`) without a running
 * MITM); 7 the mode step (`modeGuard`: method, write channel, MITM availability, UDP);
 * 8 allow with the addresses to dial (and the hook that applies). Steps 2–6 have source `baseline_policy`. A failed
 * lookup is not a policy decision: the mode step still runs, then the verdict is
 * `{action: "error", kind: "dns"}`. `unix_socket` requests skip the host steps
 * (`evaluateUnixSocket`). Never throws: any fault is a deny with `policy_denied` (fail closed).
 */
export async function evaluatePolicy(
  p: CompiledPolicy,
  state: PolicyState,
  req: PolicyRequest,
  resolver: Resolver,
  realpath: Realpath = fsRealpath,
): Promise<Verdict> {
  let host = "";
  try {
    if (req.protocol === "unix_socket") {
      host = UNIX_SOCKET_HOST;
      if (!state.enabled) return deny("proxy_disabled", "proxy_state", host);
      return await evaluateUnixSocket(p, state, req, realpath);
    }
    host = normalizeHost(req.host);
    if (!state.enabled) return deny("proxy_disabled", "proxy_state", host);
    if (host === "") return deny("not_allowed", "baseline_policy", host);
    if (p.denied.matches(host, req.port) !== null) return deny("denied", "baseline_policy", host);

    const literal = isIpLiteral(host);
    const local = !p.allowLocalBinding && isLocalLiteral(host);
    // An exact allowlist entry (no wildcard) exempts a local literal: the operator named it.
    if (local && p.allowed.exact(host, req.port) === null) return deny("not_allowed_local", "baseline_policy", host);
    if (p.allowed.matches(host, req.port) === null) return deny("not_allowed", "baseline_policy", host);
    // Past this point a local literal was named exactly: its own resolution is not re-judged.
    const checkAnswers = !p.allowLocalBinding && !local;

    let addresses: string[];
    let dnsError: string | null = null;
    if (literal) {
      addresses = [host];
    } else {
      try {
        addresses = await resolver(host);
        if (addresses.length === 0) throw new Error(`DNS lookup of ${host} returned no addresses`);
      } catch (e) {
        addresses = [];
        dnsError = e instanceof Error ? e.message : String(e);
      }
      // DNS rebinding: a name pointing at a private address is local, allowlisted or not.
      if (checkAnswers && addresses.some(isNonPublicAddress)) return deny("not_allowed_local", "baseline_policy", host);
    }

    // §10: a hooked host is intercepted in every mode, never reached in plaintext, and each
    // decrypted request needs a matching hook. Hooks only narrow: the mode step still follows.
    const hook = judgeHooks(p.hooks, req, host);
    if (hook !== null && hook.action === "deny") return deny(hook.reason, "mitm_hook", host);
    if (hook !== null && hook.action === "intercept" && !state.mitmEnabled) return deny("mitm_required", "proxy_state", host);

    const guard = modeGuard(req, state);
    if (guard !== null) return { ...guard, host };
    if (dnsError !== null) return { action: "error", kind: "dns", message: dnsError, host };
    if (hook !== null && hook.action === "apply") return { action: "allow", host, addresses, hook: hook.hook };
    // Limited mode looks inside every tunnel it lets through (MITM, SOCKS5 peeking, §4, §5).
    const lookInside =
      hook !== null ||
      (state.mode === "limited" && (req.protocol === "https_connect" || (req.protocol === "socks5_tcp" && req.method === null)));
    return lookInside ? { action: "allow", host, addresses, intercept: true } : { action: "allow", host, addresses };
  } catch {
    return deny("policy_denied", "baseline_policy", host);
  }
}

const NO_RETRY = "this is a policy decision: do not retry through another route";

/**
 * The agent-friendly `hint` of plain-HTTP JSON block bodies (SPEC-network §4): which allowlist
 * entry, flag or mode would permit the request (a `denied` hint names the matching pattern),
 * then a do-not-retry note. Empty for a verdict that is not a deny. The one hint text of the
 * proxy: transports reach it through `NetworkContext.explain`.
 */
export function explainDeny(p: CompiledPolicy, verdict: Verdict, req: PolicyRequest): string {
  if (verdict.action !== "deny") return "";
  const host = verdict.host || req.host.trim();
  let advice: string;
  switch (verdict.reason) {
    case "denied": {
      const entry = p.denied.matches(verdict.host, req.port);
      advice = entry === null ? `"${host}" is in network_proxy.policy.denied_domains` : `"${host}" matches denied_domains entry "${entry}"`;
      break;
    }
    case "not_allowed":
      advice =
        req.protocol === "unix_socket"
          ? "add the socket's absolute path to network_proxy.policy.allow_unix_sockets"
          : host === ""
            ? "the request names no host"
            : `add "${host}" to network_proxy.policy.allowed_domains`;
      break;
    case "not_allowed_local":
      advice = isLocalLiteral(verdict.host)
        ? `local/private targets need an exact entry "${host}" in network_proxy.policy.allowed_domains or network_proxy.policy.allow_local_binding = true`
        : `"${host}" resolves to a local/private address; only network_proxy.policy.allow_local_binding = true permits that`;
      break;
    case "method_not_allowed":
      advice = `limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got ${req.method === null ? (req.writeChannel ? "a stream the proxy cannot read" : "no HTTP request") : req.writeChannel && READ_ONLY_METHODS.has(req.method) ? `${req.method} with a body, Upgrade or method override` : req.method}); full mode (network_proxy.mode = "full") permits it`;
      break;
    case "mitm_required":
      advice = p.hooks.isHooked(verdict.host, req.port)
        ? `"${host}" has MITM hooks (network_proxy.mitm.hooks): reach it over HTTPS through the proxy (CONNECT, or SOCKS5 with TLS) so each request can be checked`
        : `limited mode needs network_proxy.mitm.enabled = true for HTTPS, or switch to full mode`;
      break;
    case "mitm_hook_denied": {
      const m = p.hooks.match({ host: verdict.host, port: req.port, method: req.method ?? "", target: req.target ?? "", headers: req.headers ?? [] });
      advice = m.kind === "none" ? hookHint(m) : "no MITM hook matched this request";
      break;
    }
    case "proxy_disabled":
      advice = "the proxy is disabled (network_proxy.enabled = false)";
      break;
    case "sni_mismatch":
      advice = `the TLS server name does not match the CONNECT target "${host}"`;
      break;
    default:
      advice = "the request was blocked by network policy";
  }
  return `${advice}; ${NO_RETRY}`;
}
