/**
 * The contract between the one HTTP/1.1 request loop (connection.ts) and the request
 * handlers it routes to (forward.ts, connect.ts, unix-socket.ts): the transport it reads and
 * writes (a plain socket or the decrypted side of a MITM tunnel), the front end's own rules,
 * outcomes, and the `ConnIO` surface a handler uses to answer, stream a body, or hand the
 * socket on. Types and the front-end constants only.
 */
import type { Socket } from "bun";
import type { BodyFraming } from "../../http1/server-request-head.ts";
import type { WritableSocketLike } from "../../net/write-queue.ts";
import type { AnswerName } from "../answers.ts";
import type { PolicyProtocol } from "../reasons.ts";
import type { CheckedTarget, ConnHandler, ConnState, NetworkContext, PolicyRequest, Verdict } from "../types.ts";
import type { TunnelHandle } from "../tunnel.ts";
import type { AccessNote } from "../access.ts";
import type { AccessOutcome } from "../../access-log.ts";
import type { BodyPump } from "./body-stream.ts";
import type { UpstreamClients } from "./upstream-clients.ts";

/** What the loop reads from and writes to: a Bun socket, or the decrypted side of a MITM tunnel. */
export interface HttpTransport extends WritableSocketLike {
  /** Bytes taken (may be fewer than given: the loop queues the rest), or -1 when closed. */
  write(data: Uint8Array): number;
  /** Close after everything written so far is flushed. */
  end(): void;
  /** Stop / restart delivering client bytes (backpressure towards the client). */
  pause(): void;
  resume(): void;
}

/**
 * The rules that differ between the front ends of the one loop. The plain listener judges
 * each request's own target; the SOCKS5 hand-off and the MITM pin every request to the
 * `target` they were allowed for (a request naming another host gets `mismatch`), never
 * accept CONNECT (405) or `x-unix-socket`.
 */
export interface HttpFrontEnd {
  /** Protocol the policy is asked about (`http`, `socks5_tcp`, `https`). */
  readonly protocol: PolicyProtocol;
  /** Scheme of the upstream request. */
  readonly scheme: "http" | "https";
  /** The checked target every request goes to, or null (each request names its own). */
  readonly target: CheckedTarget | null;
  /** Answer for a request naming a host other than `target`. */
  readonly mismatch: AnswerName;
  /** HTTP/1.1 requests must carry Host (400 `missing host`). */
  readonly requireHost: boolean;
  /** Policy blocks as JSON bodies (plain HTTP, SPEC-network §4) or `text/plain` (MITM, §6). */
  readonly json: boolean;
  /** Answer when the upstream request fails. */
  readonly upstreamFailure: AnswerName;
  /** Log one `mitm inspect` line per response while `mitm.inspect` is on (SPEC-network §6). */
  readonly inspect: boolean;
}

/** A front end whose connection is pinned to one checked target (SOCKS5 hand-off, MITM). */
export type PinnedFrontEnd = HttpFrontEnd & { readonly target: CheckedTarget };

/** The HTTP listener's front end (SPEC-network §4). */
export const PLAIN_FRONT_END: HttpFrontEnd = {
  protocol: "http",
  scheme: "http",
  target: null,
  mismatch: "host_header_mismatch",
  requireHost: false,
  json: true,
  upstreamFailure: "upstream_failure",
  inspect: false,
};

/** Limited-mode SOCKS5 hand-off of a peeked plain-HTTP connection (SPEC-network §5): pinned to `target`. */
export function socksFrontEnd(target: CheckedTarget): PinnedFrontEnd {
  return { ...PLAIN_FRONT_END, protocol: "socks5_tcp", target };
}

/** Options of {@link createHttpConnectionHandler} and `createHttpSession`. */
export interface HttpConnectionOptions {
  /** Upstream HTTP/1.1 clients (shared per listener); default: a set owned by this connection. */
  clients?: UpstreamClients;
  /** The front end's rules; default the plain listener's. */
  frontEnd?: HttpFrontEnd;
  /** Test hook: called with each CONNECT tunnel once it runs. */
  onTunnel?: (t: TunnelHandle) => void;
  /**
   * SPEC-network §12: how long a request head may take from its first byte (408 and close
   * past it; default 30 s), and how long a connection may wait with no request in progress
   * (before its first byte, or between requests; closed past it; default 120 s). Requests in
   * flight and tunnels are never timed out here (quiet streams are legitimate).
   */
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** The loop's ConnHandler for an accepted socket, plus `attach`, which binds it before any byte arrives. */
export interface HttpConnectionHandler extends ConnHandler {
  /** Bind to `socket` now (starts the head deadline); otherwise the first event binds it. */
  attach(socket: Socket<ConnState>): void;
}

/** Events a transport without a Bun socket (the MITM's decrypted side) feeds into the loop. */
export interface HttpSession {
  data(chunk: Uint8Array): void;
  drain(): void;
  close(): void;
}

/** How a request's handling ended. */
export type Outcome = "keep" | "close" | "handed-off";

/** A deny to answer: the verdict's reason, source and normalised host. */
export type DenyVerdict = Extract<Verdict, { action: "deny" }>;

/** What request handlers (forward, connect, unix) use of the connection. */
export interface ConnIO {
  readonly ctx: NetworkContext;
  readonly opts: HttpConnectionOptions;
  readonly frontEnd: HttpFrontEnd;
  /** The accepted socket (plain listener only: CONNECT hands it on), null inside the MITM. */
  readonly socket: Socket<ConnState> | null;
  /** Client `ip:port`, or null. */
  readonly client: string | null;
  readonly clients: UpstreamClients;
  /** Aborted when the client connection closes. */
  readonly signal: AbortSignal;
  /** Whether response bytes for the current request were written. */
  responseStarted: boolean;
  write(bytes: Uint8Array): void;
  /** Resolves when every queued byte was handed to the transport (or it closed). */
  drained(): Promise<void>;
  /** Bytes written but not yet taken by the transport. */
  queued(): number;
  /** Start receiving the current request's body (bytes already buffered are fed first). */
  openBody(framing: BodyFraming): BodyPump;
  /** The current request's body pump, if one was opened. */
  readonly body: BodyPump | null;
  /** Take every client byte read but not parsed (for a tunnel or the MITM). */
  takeBuffered(): Uint8Array;
  /**
   * Answer a policy deny of `req` (block bytes of answer-bytes.ts). `json` defaults to the
   * front end's format; CONNECT answers are always `text/plain` (SPEC-network §4).
   */
  block(verdict: DenyVerdict, req: PolicyRequest, opts: { close: boolean; json?: boolean }): void;
  /** Write a named answer of the answers table. */
  answer(name: AnswerName, opts: { close: boolean }): void;
  /** `ctx.evaluate`, with the verdict noted for the request's access line (docs/logs.md). */
  evaluate(req: PolicyRequest, opts?: { provisional?: boolean }): Promise<Verdict>;
  /** The status sent for the current request (for a response relayed from upstream; answers note their own). */
  noteStatus(status: number): void;
  /** How the current request ended when it was not `complete` (an upstream body that failed). */
  noteOutcome(outcome: AccessOutcome): void;
  /** Take the current request's access note: a tunnel that outlives the request writes it when it closes. */
  takeAccess(): AccessNote | null;
}
