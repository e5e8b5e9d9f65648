/**
 * The contract between the responses proxy's HTTP/1.1 listener (http-server.ts) and the app
 * behind it (server.ts): the request handed over, the response given back, the routing
 * decision taken from the head, the access record of a finished exchange, and the listener's
 * bounds and handle. Types only.
 */
import type { AbortLike, BodySource, RawFields } from "../http1/types.ts";
import type { IncomingHead } from "./incoming.ts";

/** A request whose body has been read completely. */
export interface IncomingRequest {
  head: IncomingHead;
  /** The body (a view made on first access). */
  readonly body: Uint8Array;
  /** The body as a range, `bodyBytes[bodyStart..bodyEnd)`, without a view (see ClientRequest.bodyStart). */
  readonly bodyBytes: Uint8Array;
  readonly bodyStart: number;
  readonly bodyEnd: number;
  /**
   * A body too large to buffer (or chunked), streamed as it arrives; null when the body is in
   * `bodyBytes`. It errors when the client goes away or sends a bad or oversized body.
   */
  readonly bodyStream: ReadableStream<Uint8Array> | null;
  /** Aborted when the client disconnects before the response finished (a light Cancellation). */
  signal: AbortLike;
  /** Answer it (once; later calls are ignored). A closed connection cancels a pushed body. */
  respond(resp: OutgoingResponse): void;
}

/** What the app answers. The server owns framing: `content-length`/`transfer-encoding`/`connection` given here are dropped. */
export interface OutgoingResponse {
  status: number;
  /** Strings, or field lines as bytes (an upstream head relayed without strings; see encodeResponseHead). */
  headers: Array<[string, string]> | RawFields;
  /** Bytes (content-length framing), a pushed body (streamed, chunked to HTTP/1.1 clients), or none. */
  body: BodySource | Uint8Array | null;
  /** Exact length of a pushed body when known (upstream content-length): sent with content-length framing. */
  bodyLength?: number;
  /** The status and head came from the upstream (the access line then records the time to it). */
  fromUpstream?: boolean;
}

/**
 * One finished exchange, for the access line (src/access-log.ts): handed to
 * `HttpApp.onAccess` once per request, when its response ended or the client went away.
 */
export interface ExchangeRecord {
  /** Client `ip:port`. */
  client: string;
  /** Null when the head could not be parsed. */
  method: string | null;
  target: string | null;
  /** Status sent, or null when the client went away before any. */
  status: number | null;
  /** Request head and body bytes received. */
  bytesIn: number;
  /** Response bytes handed to the socket. */
  bytesOut: number;
  durationMs: number;
  /** From handing the request to the app until it answered with an upstream response, ms. */
  upstreamTtfbMs: number | null;
  outcome: "complete" | "client_closed" | "upstream_failed";
}

/** Decision taken from the head alone, before any body byte is read. */
export type RouteDecision = { kind: "handle" } | { kind: "respond"; status: number; afterWrite?: () => void };

/**
 * The application behind the listener. `handle` answers through `req.respond` (at once or
 * later); if it throws, the client gets an empty 500.
 */
export interface HttpApp {
  route(head: IncomingHead): RouteDecision;
  handle(req: IncomingRequest): void;
  onError?(message: string): void;
  /** One call per finished request (access line). Absent: nothing is measured. */
  onAccess?(record: ExchangeRecord): void;
}

/**
 * Bounds of the listener (SPEC-network §12); every field has the SPEC default. Tests pass small
 * values; the executables use the defaults (and the descriptor-limited connection cap).
 */
export interface HttpServerBounds {
  /** A request head must be complete this long (ms) after its first byte, else 408 and close; 30 000. */
  headTimeoutMs?: number;
  /** A connection with no request in progress, or a request body with no byte, for this long (ms) is closed; 120 000. */
  idleTimeoutMs?: number;
  /** Open connections at most; a new one past it is closed at once; 8 192. */
  maxConnections?: number;
  /** Bodies with a content-length up to this many bytes are buffered; larger or chunked ones stream; 1 MiB. */
  maxBufferedBody?: number;
  /** Largest request body (413 beyond it); 128 MiB. */
  maxBodyBytes?: number;
  /** Body bytes queued towards the upstream before the client is paused; 256 KiB. */
  streamHighWaterMark?: number;
}

/** A running listener. */
export interface HttpServerHandle {
  readonly port: number;
  /** Connections refused by the cap so far. */
  readonly refused: number;
  /** Stop accepting; idle connections close now, busy ones after their response or after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}
