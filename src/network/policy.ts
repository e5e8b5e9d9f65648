/**
 * The policy decision (SPEC-network §3.3): one function that every transport asks, returning
 * allow (with the checked addresses to dial, §3.4), deny with a reason, or a DNS error.
 * Pure apart from the injected resolver; compiled once per config.
 */
import { lookup } from "node:dns/promises";
import type { BlockReason } from "./reasons.ts";
import type { Mode, PolicyRequest, RuntimeConfig, Verdict } from "./types.ts";
import { isLocalLiteral, isNonPublicAddress } from "./addr-class.ts";
import { isIpLiteral, normalizeHost } from "./host.ts";
import { compilePatterns, type DomainMatcher } from "./patterns.ts";

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
}

/** The switches of the current state that the decision depends on (reloads and `/mode` change them). */
export interface PolicyState {
  enabled: boolean;
  mode: Mode;
  mitmEnabled: boolean;
}

/** Methods limited mode allows (§3.3 step 7). */
const READ_ONLY_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Compile the policy lists of a config. Throws `ConfigError` for a bad pattern. */
export function compilePolicy(cfg: RuntimeConfig): CompiledPolicy {
  return {
    allowed: compilePatterns(cfg.policy.allowedDomains, "allowed"),
    denied: compilePatterns(cfg.policy.deniedDomains, "denied"),
    allowLocalBinding: cfg.policy.allowLocalBinding,
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

const deny = (reason: BlockReason, host: string): Verdict => ({ action: "deny", reason, host });

/**
 * The method step (§3.3 step 7 and `PolicyRequest.method` docs): null skips; full mode allows
 * all; limited mode allows GET/HEAD/OPTIONS, and CONNECT only when MITM can judge the inner
 * requests (`mitm_required` otherwise). Returns the deny reason or null.
 */
function methodReason(req: PolicyRequest, state: PolicyState): BlockReason | null {
  if (req.method === null || state.mode === "full") return null;
  if (req.method === "CONNECT" || req.protocol === "https_connect") {
    return state.mitmEnabled ? null : "mitm_required";
  }
  return READ_ONLY_METHODS.has(req.method) ? null : "method_not_allowed";
}

/**
 * Decide a request (SPEC-network §3.3, first hit wins): 1 disabled → `proxy_disabled`;
 * 2 empty host → `not_allowed`; 3 denylist → `denied`; 4 local literal without an exact
 * allowlist entry → `not_allowed_local`; 5 allowlist miss → `not_allowed` (the name is NOT
 * resolved); 6 resolve names once and deny `not_allowed_local` if any answer is non-public
 * (skipped checks with `allow_local_binding`, still resolved so the dial is pinned); 7 method;
 * 8 allow with the addresses to dial. A failed lookup is not a policy decision: the method
 * step still runs, then the verdict is `{action: "error", kind: "dns"}`.
 * Never throws: any fault is a deny with `policy_denied` (fail closed).
 */
export async function evaluatePolicy(
  p: CompiledPolicy,
  state: PolicyState,
  req: PolicyRequest,
  resolver: Resolver,
): Promise<Verdict> {
  let host = "";
  try {
    host = normalizeHost(req.host);
    if (!state.enabled) return deny("proxy_disabled", host);
    if (host === "") return deny("not_allowed", host);
    if (p.denied.matches(host, req.port) !== null) return deny("denied", host);

    const literal = isIpLiteral(host);
    const local = !p.allowLocalBinding && isLocalLiteral(host);
    // An exact allowlist entry (no wildcard) exempts a local literal: the operator named it.
    if (local && p.allowed.exact(host, req.port) === null) return deny("not_allowed_local", host);
    if (p.allowed.matches(host, req.port) === null) return deny("not_allowed", host);
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
      if (checkAnswers && addresses.some(isNonPublicAddress)) return deny("not_allowed_local", host);
    }

    const methodDeny = methodReason(req, state);
    if (methodDeny !== null) return deny(methodDeny, host);
    if (dnsError !== null) return { action: "error", kind: "dns", message: dnsError, host };
    return { action: "allow", host, addresses };
  } catch {
    return deny("policy_denied", host);
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
      advice = `limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got ${req.method ?? "no HTTP request"}); full mode (network_proxy.mode = "full") permits it`;
      break;
    case "mitm_required":
      advice = `limited mode needs network_proxy.mitm.enabled = true for HTTPS, or switch to full mode`;
      break;
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
