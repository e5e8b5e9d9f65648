/**
 * The contract between an HTTP proxy connection (connection.ts) and the request handlers it
 * routes to (forward.ts, connect.ts, unix-socket.ts): options, outcomes and the `ConnIO`
 * surface a handler uses to answer, stream a body, or hand the socket on. Types only.
 */
import type { Socket } from "bun";
import type { BlockReason, PolicyProtocol } from "../reasons.ts";
import type { ConnState, NetworkContext, PolicyRequest } from "../types.ts";
import type { TunnelHandle } from "../tunnel.ts";
import type { BodyPump } from "./body-stream.ts";
import type { BodyFraming } from "./head-parser.ts";
import type { UpstreamClients } from "./upstream-clients.ts";

/** Options of {@link createHttpConnectionHandler}. */
export interface HttpConnectionOptions {
  /** Upstream HTTP/1.1 clients (shared per listener); default: a set owned by this connection. */
  clients?: UpstreamClients;
  /** Protocol the policy is asked about for plain requests (default `http`; SOCKS5 hand-off: `socks5_tcp`). */
  protocol?: PolicyProtocol;
  /**
   * A target already chosen and judged by the caller (SOCKS5 peeked plain HTTP): every
   * request goes there, its Host must name it, and each request is judged again (method).
   */
  fixedTarget?: { host: string; port: number; addresses: string[] };
  /** Test hook: called with each CONNECT tunnel once it runs. */
  onTunnel?: (t: TunnelHandle) => void;
  /**
   * How long a request head may take to arrive, counted from when the connection starts
   * waiting for one (accept, or the end of the previous response); also the keep-alive idle
   * limit. Default 60 s. Requests in flight, tunnels and the MITM are never timed out here
   * (quiet streams are legitimate).
   */
  headTimeoutMs?: number;
}

/** How a request's handling ended. */
export type Outcome = "keep" | "close" | "handed-off";

/** What request handlers (forward, connect, unix) use of the connection. */
export interface ConnIO {
  readonly ctx: NetworkContext;
  readonly opts: HttpConnectionOptions;
  readonly socket: Socket<ConnState>;
  /** Client `ip:port`. */
  readonly client: string;
  readonly clients: UpstreamClients;
  /** Aborted when the client connection closes. */
  readonly signal: AbortSignal;
  /** Whether response bytes for the current request were written. */
  responseStarted: boolean;
  write(bytes: Uint8Array): void;
  /** Resolves when every queued byte was handed to the socket (or the socket closed). */
  drained(): Promise<void>;
  /** Bytes written but not yet taken by the socket. */
  queued(): number;
  /** Start receiving the current request's body (bytes already buffered are fed first). */
  openBody(framing: BodyFraming): BodyPump;
  /** The current request's body pump, if one was opened. */
  readonly body: BodyPump | null;
  /** Take every buffered, unparsed client byte (for a tunnel or the MITM). */
  takeBuffered(): Uint8Array;
  /** Answer a policy block for the current request. */
  block(reason: BlockReason, req: PolicyRequest, host: string, json: boolean, close: boolean): void;
  /** Write a short text/plain answer. */
  text(status: number, text: string, close: boolean): void;
}
