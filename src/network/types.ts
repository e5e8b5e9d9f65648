/**
 * Contracts shared by every part of codex-network-proxy: the policy request and verdict,
 * the compiled runtime config, the context that listeners receive, the dialer, the MITM
 * engine and metrics. Types only; the implementations live in their own modules
 * (policy.ts, context.ts, dialer.ts, mitm/, metrics.ts).
 */
import type { Socket, SocketHandler } from "bun";
import type { BlockReason, DenySource, PolicyProtocol } from "./reasons.ts";
import type { Logger } from "../log.ts";
import type { HookSpec } from "./hooks/spec.ts";
import type { CompiledHook } from "./hooks/match.ts";
import type { SecretField } from "./hooks/secret-store.ts";

/** `limited` = read-only (GET, HEAD, OPTIONS), `full` = everything the host policy allows. */
export type Mode = "limited" | "full";

/** What a transport asks the policy about (SPEC-network §3). */
export interface PolicyRequest {
  protocol: PolicyProtocol;
  /** Host as the client sent it (the policy normalises it: §3.1). */
  host: string;
  port: number;
  /**
   * Request method, upper-case as sent. `null` = not known yet: the method step (§3.3 step 7)
   * is skipped and the transport judges the method later (SOCKS5 peeking). For
   * `https_connect` pass "CONNECT": in limited mode the policy answers `mitm_required` when
   * MITM is disabled and allows (the MITM then judges every inner request) when enabled.
   */
  method: string | null;
  /**
   * The request is a write channel although its method reads: it carries a body, asks for
   * `Upgrade`, or names a non-read method in a method-override field (SPEC-network §4,
   * `http/request-facts.ts` computes it), or, with `method: null`, a stream the proxy cannot
   * read (SOCKS5 peeking found no HTTP, or TLS without MITM). Limited mode denies it
   * (`method_not_allowed`). Absent = false.
   */
  writeChannel?: boolean;
  /** `unix_socket` requests: the `x-unix-socket` path as sent (decoded UTF-8). */
  socketPath?: string;
  /**
   * Decrypted requests (`https`): the raw origin-form request-target (`/path?query`) and the
   * header fields as received, which MITM hooks judge (SPEC-network §10). Never logged.
   */
  target?: string;
  headers?: ReadonlyArray<readonly [string, string]>;
  /** Client `ip:port`, or null. */
  client: string | null;
  /**
   * The transport saw a git smart-HTTP fetch (`git-fetch.ts`: POST …/git-upload-pack with its
   * content type); limited mode treats it as a read. Absent = false.
   */
  gitFetch?: boolean;
}

/**
 * A destination the policy allowed: the normalised host, the port and the addresses it
 * checked (§3.4). It travels unchanged from the verdict to the dialer, the pinned HTTP loop
 * (SOCKS5 hand-off) and the MITM; nothing re-resolves the name.
 */
export interface CheckedTarget {
  host: string;
  port: number;
  addresses: string[];
}

/** Outcome of a policy evaluation. */
export type Verdict =
  | {
      action: "allow";
      /** Normalised host (§3.1): lowercase, no brackets, no trailing dots, punycode, dotted-quad IPv4. */
      host: string;
      /** Addresses to dial, checked by the policy; the dialer never re-resolves (§3.4). */
      addresses: string[];
      /**
       * The transport must look inside instead of splicing raw bytes: MITM a CONNECT, peek at a
       * SOCKS5 tunnel (limited mode, or a host with MITM hooks, §10). Absent = false.
       */
      intercept?: true;
      /** The MITM hook that applies to this decrypted request (§10). */
      hook?: CompiledHook;
      /**
       * The hook's injected header fields, set by the context with a lease on the secrets they
       * view: call `release()` once the request head was written or abandoned (idempotent).
       */
      inject?: { fields: readonly SecretField[]; release(): void };
    }
  | {
      action: "deny";
      reason: BlockReason;
      /** Who denied (SPEC-network §3): host lists, the mode, the proxy's state, a hook, the transport. */
      source: DenySource;
      host: string;
    }
  /** DNS lookup failed or timed out: not a policy decision; HTTP answers 502, SOCKS REP 0x04. */
  | { action: "error"; kind: "dns"; message: string; host: string };

/** The config after validation and compilation (matchers built, paths absolute). */
export interface RuntimeConfig {
  enabled: boolean;
  mode: Mode;
  proxyUrl: string;
  adminUrl: string;
  enableSocks5: boolean;
  socksUrl: string;
  enableSocks5Udp: boolean;
  allowUpstreamProxy: boolean;
  dangerouslyAllowNonLoopbackProxy: boolean;
  dangerouslyAllowNonLoopbackAdmin: boolean;
  policy: {
    allowedDomains: string[];
    deniedDomains: string[];
    allowLocalBinding: boolean;
    allowUnixSockets: string[];
  };
  mitm: {
    enabled: boolean;
    inspect: boolean;
    maxBodyBytes: number;
    /** Absolute paths. */
    caCertPath: string;
    caKeyPath: string;
    /** Request rules and credential injection (§10), in config order; secrets are read separately. */
    hooks: HookSpec[];
    /**
     * `file` (default): the CA of §6, loaded or created on disk. `ephemeral` (§11): a fresh CA
     * per process, private key in memory only; `caKeyPath` is ignored.
     */
    caMode: "file" | "ephemeral";
  };
  /** Absolute path or null (beyond: admin bearer token, §7). */
  adminTokenFile: string | null;
  /** `max_connections` as configured (§12); the listeners apply it capped by the descriptor limit. */
  maxConnections: number;
}

/** Options of `Dialer.connect`. */
export interface DialOptions {
  /**
   * Keep the socket open for writing after the peer's FIN (Bun `allowHalfOpen`): `handlers.end`
   * is called and the caller ends the socket itself. Default false (a FIN closes both ways).
   */
  allowHalfOpen?: boolean;
}

/** Opens TCP connections to addresses the policy already checked (§3.4). */
export interface Dialer {
  /**
   * Connect to the first address of `addresses` that accepts, on `port`, with `handlers`
   * (TCP_NODELAY set). Rejects with `DialError`. Never resolves names.
   */
  connect<T>(
    addresses: string[],
    port: number,
    handlers: SocketHandler<T>,
    data: T,
    opts?: DialOptions,
  ): Promise<Socket<T>>;
}

/** Per-connection state of sockets accepted by `Bun.listen` listeners. */
export interface ConnState {
  /** Current owner of the connection; listeners delegate every socket event to it. */
  handler: ConnHandler | null;
  /** Client `ip:port`. */
  client: string;
  /**
   * Tells the listener the connection is gone (its `max_connections` slot and open-socket
   * entry are released; idempotent). The listener calls it from `close`; an owner whose socket
   * no longer gets the listener's `close` (after `upgradeTLS` Bun closes only the TLS socket)
   * calls it itself.
   */
  gone?: () => void;
}

/** A connection owner: the HTTP parser, a tunnel, a SOCKS5 handshake, or the MITM. */
export interface ConnHandler {
  data(socket: Socket<ConnState>, chunk: Uint8Array): void;
  drain(socket: Socket<ConnState>): void;
  close(socket: Socket<ConnState>): void;
  /**
   * Optional: the peer finished sending (TCP FIN) but still reads. Only listeners created
   * with `allowHalfOpen: true` deliver it (the HTTP listener does); such a listener closes the
   * connection itself when the current owner has no `end`.
   */
  end?(socket: Socket<ConnState>): void;
}

/** Limited-mode HTTPS interception (SPEC-network §6). */
export interface MitmEngine {
  /**
   * Take over `socket`, whose tunnel to `target` was allowed and already answered
   * (`200 Connection established` or SOCKS REP 0x00). `buffered` holds client bytes that were
   * already read (the ClientHello when SOCKS5 peeked). Never throws; failures close the socket.
   */
  intercept(socket: Socket<ConnState>, target: CheckedTarget, client: string | null, buffered?: Uint8Array): void;
  /** Stop background work (cert cache etc.). */
  stop(): void;
}

/** Prometheus counters (SPEC-network §7 `/metrics`). */
export interface Metrics {
  request(protocol: string, decision: "allow" | "deny" | "error", reason: string | null): void;
  tunnelOpened(): void;
  tunnelClosed(): void;
  bytes(up: number, down: number): void;
  certIssued(): void;
  /** Prometheus text exposition format 0.0.4. */
  render(): string;
}

/** One `/blocked` ring-buffer entry (SPEC-network §7). */
export interface BlockedEntry {
  host: string;
  reason: BlockReason;
  decision: "deny";
  source: DenySource;
  client: string | null;
  method: string | null;
  mode: Mode | null;
  protocol: string;
  port: number;
  timestamp: number;
}

/** What every listener receives. Read `config()` per request: reloads and `/mode` change it. */
export interface NetworkContext {
  config(): RuntimeConfig;
  /**
   * Full decision (§3.3, DNS included) for the current config. Logs the one decision line,
   * records blocks in `/blocked`, counts metrics. Never throws (a fault = deny `policy_denied`).
   * `provisional`: an allow is not logged nor counted, because a later judgement of the same
   * connection logs it (limited-mode SOCKS5: the peeked request decides); denies and errors
   * are final and logged as usual.
   */
  evaluate(req: PolicyRequest, opts?: { provisional?: boolean }): Promise<Verdict>;
  /**
   * Record + log a block learned after the verdict (`sni_mismatch`, source `transport`;
   * SOCKS5 peeking found no HTTP request, source `mode_guard`). Default source `transport`.
   */
  recordBlock(req: PolicyRequest, reason: BlockReason, source?: DenySource): void;
  /**
   * The agent-friendly `hint` of a JSON block body (SPEC-network §4) for a block of `req` with
   * `reason`, judged against the current compiled policy (so a `denied` hint can name the
   * matching denied_domains entry). `host` is the normalised host the block names.
   */
  explain(reason: BlockReason, req: PolicyRequest, host: string): string;
  dialer: Dialer;
  metrics: Metrics;
  log: Logger;
  /** Null when MITM is disabled or its CA could not be loaded. */
  mitm(): MitmEngine | null;
}
