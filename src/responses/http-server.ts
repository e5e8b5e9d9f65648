/**
 * The responses proxy's HTTP/1.1 listener on `Bun.listen` (RFC 9112).
 *
 * Why not Bun.serve: it rewrites an absolute-form request-target into origin-form (so
 * `POST http://evil/v1/responses` would look like `POST /v1/responses`), and SPEC §1.4
 * needs the target exactly as sent. This server is deliberately small: sequential requests
 * per connection (pipelined bytes are buffered, bounded), bodies buffered (bounded), responses
 * streamed chunk by chunk with backpressure (WriteQueue), no timeouts (SSE may be quiet).
 */
import type { Socket, TCPSocketListener } from "bun";
import { WriteQueue } from "../net/write-queue.ts";
import { Cancellation } from "../http1/cancellation.ts";
import type { AbortLike, BodySource, RawFields } from "../http1/types.ts";
import { encodeResponseHead, pipeBody, type BodySink, type PipeOutcome } from "./body-writer.ts";
import { parseRequestHeadRaw } from "../http1/server-request-head.ts";
import { BodyCollector, HEAD_LIMITS, hasBody, MAX_BODY_BYTES, type IncomingHead } from "./incoming.ts";

/** A request whose body has been read completely. */
export interface IncomingRequest {
  head: IncomingHead;
  /** The body (a view made on first access). */
  readonly body: Uint8Array;
  /** The body as a range, `bodyBytes[bodyStart..bodyEnd)`, without a view (see ClientRequest.bodyStart). */
  readonly bodyBytes: Uint8Array;
  readonly bodyStart: number;
  readonly bodyEnd: number;
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
}

/** A running listener. */
export interface HttpServerHandle {
  readonly port: number;
  /** Stop accepting; idle connections close now, busy ones after their response or after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const MAX_PIPELINED = 1024 * 1024;
const DISCARD_IDLE_SECONDS = 30;
interface Conn {
  socket: Socket<Conn>;
  queue: WriteQueue;
  buf: Uint8Array;
  len: number;
  scanFrom: number;
  phase: "head" | "body" | "busy" | "discard" | "closed";
  head?: IncomingHead;
  body?: BodyCollector;
  abort?: Cancellation;
  drained?: PromiseWithResolvers<void>;
  paused: boolean;
  /** The connection as a BodySink for pipeBody (made once per connection). */
  sink: BodySink;
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
/** Bodies of a known length up to this size are copied behind the head (one buffer, one write). */
const HEAD_ROOM_MAX = 16 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * Listen on `hostname:port` (0 = ephemeral) and serve `app`.
 * @throws when the address cannot be bound (message from Bun, e.g. EADDRINUSE).
 */
export function startHttpServer(opts: { hostname: string; port: number; app: HttpApp }): HttpServerHandle {
  const { app } = opts;
  const conns = new Set<Conn>();
  let stopping = false;
  let allClosed: PromiseWithResolvers<void> | undefined;

  const append = (c: Conn, data: Uint8Array) => {
    if (c.len + data.length > c.buf.length) {
      const next = new Uint8Array(Math.max(c.buf.length * 2, c.len + data.length));
      next.set(c.buf.subarray(0, c.len));
      c.buf = next;
    }
    c.buf.set(data, c.len);
    c.len += data.length;
  };

  const consume = (c: Conn, n: number) => {
    c.buf.copyWithin(0, n, c.len);
    c.len -= n;
    c.scanFrom = 0;
  };

  /**
   * Send FIN once everything queued is written, then ignore whatever the client still sends
   * (e.g. a request body we never read): closing with unread bytes would make the kernel
   * answer with an RST that can destroy the response. Bounded: a client that neither reads
   * nor closes is dropped after DISCARD_IDLE_SECONDS without traffic.
   */
  const closeAfterFlush = (c: Conn) => {
    c.phase = "discard";
    c.socket.timeout(DISCARD_IDLE_SECONDS);
    if (c.queue.size === 0) c.socket.shutdown();
    else void waitDrained(c).then(() => c.socket.shutdown());
  };

  /** Answer with an empty body; close unless the connection can safely continue. */
  const respondEmpty = (c: Conn, status: number, keepOpen: boolean) => {
    const close = !keepOpen || stopping;
    c.queue.write(encodeResponseHead(status, [], { kind: "length", length: 0 }, close));
    if (close) closeAfterFlush(c);
    return !close;
  };

  const finishExchange = (c: Conn, keepAlive: boolean) => {
    c.head = undefined;
    c.body = undefined;
    c.abort = undefined;
    if (c.phase === "closed") return;
    if (!keepAlive || stopping) {
      closeAfterFlush(c);
      return;
    }
    c.phase = "head";
    if (c.paused) {
      c.paused = false;
      c.socket.resume();
    }
    pump(c);
  };

  const waitDrained = (c: Conn): Promise<void> => {
    c.drained ??= Promise.withResolvers<void>();
    return c.drained.promise;
  };

  const writeResponse = (c: Conn, head: IncomingHead, resp: OutgoingResponse) => {
    const noBody = resp.status < 200 || resp.status === 204 || resp.status === 304;
    const source = resp.body === null || resp.body instanceof Uint8Array ? null : resp.body;
    const bytes = resp.body instanceof Uint8Array ? resp.body : new Uint8Array(0);
    const chunked = head.version === "HTTP/1.1";
    if (noBody || !source) {
      source?.cancel();
      const keepAlive = head.keepAlive && !stopping;
      const framing = noBody ? ({ kind: "none" } as const) : ({ kind: "length", length: bytes.byteLength } as const);
      const headBytes = encodeResponseHead(resp.status, resp.headers, framing, !keepAlive);
      if (noBody || bytes.byteLength === 0) c.queue.write(headBytes);
      else {
        const one = new Uint8Array(headBytes.byteLength + bytes.byteLength);
        one.set(headBytes);
        one.set(bytes, headBytes.byteLength);
        c.queue.write(one);
      }
      finishExchange(c, keepAlive);
      return;
    }
    if (resp.bodyLength !== undefined) {
      // The upstream gave the length: relay with content-length framing, raw bytes, the first
      // ones copied behind the head (nginx does the same; no chunk framing to build).
      const keepAlive = head.keepAlive && !stopping;
      const spare = Math.min(resp.bodyLength, HEAD_ROOM_MAX);
      const buf = encodeResponseHead(resp.status, resp.headers, { kind: "length", length: resp.bodyLength }, !keepAlive, spare);
      pipeBody(c.sink, buf, source, false, (outcome) => afterPipe(c, outcome, keepAlive), buf.byteLength - spare);
      return;
    }
    // HTTP/1.0 clients cannot parse chunked framing: their streamed bodies end with the connection.
    const keepAlive = head.keepAlive && !stopping && chunked;
    const headBytes = encodeResponseHead(resp.status, resp.headers, chunked ? { kind: "chunked" } : { kind: "close" }, !keepAlive);
    pipeBody(c.sink, headBytes, source, chunked, (outcome) => afterPipe(c, outcome, keepAlive));
  };

  const afterPipe = (c: Conn, outcome: PipeOutcome, keepAlive: boolean) => {
    if (outcome === "complete") finishExchange(c, keepAlive);
    else if (outcome !== "client-closed" && c.phase !== "closed") {
      // Upstream body failed mid-stream: the only honest signal left is to end the connection
      // without the terminating chunk (or short of the content-length), so the client sees an
      // incomplete message.
      app.onError?.(outcome.message);
      closeAfterFlush(c);
    }
  };

  /**
   * One request handed to the app: the IncomingRequest, its cancellation (aborted when the
   * client goes away) and its `respond`, in one object per request (no closures, no promise).
   */
  class Call extends Cancellation implements IncomingRequest {
    private answered = false;

    constructor(
      private readonly c: Conn,
      readonly head: IncomingHead,
      readonly bodyBytes: Uint8Array,
      readonly bodyStart: number,
      readonly bodyEnd: number,
    ) {
      super();
    }

    get body(): Uint8Array {
      const b = this.bodyBytes;
      return this.bodyStart === 0 && this.bodyEnd === b.length ? b : b.subarray(this.bodyStart, this.bodyEnd);
    }

    get signal(): AbortLike {
      return this;
    }

    respond(resp: OutgoingResponse): void {
      if (this.answered) return;
      this.answered = true;
      const c = this.c;
      if (c.phase === "closed") {
        if (resp.body !== null && !(resp.body instanceof Uint8Array)) resp.body.cancel();
        return;
      }
      try {
        writeResponse(c, this.head, resp);
      } catch (e) {
        app.onError?.(e instanceof Error ? e.message : String(e));
        if ((c.phase as Conn["phase"]) !== "closed") closeAfterFlush(c);
      }
    }
  }

  const dispatch = (c: Conn, head: IncomingHead, body: Uint8Array, start = 0, end = body.length) => {
    c.head = head;
    c.phase = "busy";
    const call = (c.abort = new Call(c, head, body, start, end));
    try {
      app.handle(call);
    } catch (e) {
      app.onError?.(e instanceof Error ? e.message : String(e));
      call.respond({ status: 500, headers: [], body: null });
    }
  };

  /**
   * The common case straight from a socket read (Bun hands every `data` callback a fresh
   * buffer, so the head's field ranges and the body may stay views of it): a complete head
   * routed to the app, no `expect`, and a body of known length that is all in this read.
   * Returns false, having done nothing, for anything else (the general path then runs).
   */
  const fastRequest = (c: Conn, data: Uint8Array): boolean => {
    const r = parseRequestHeadRaw(data, HEAD_LIMITS, 0);
    if (r.kind !== "ok") return false;
    const head: IncomingHead = r.head;
    const framing = head.framing;
    if (head.expectContinue || framing.kind === "chunked") return false;
    const length = framing.kind === "length" ? framing.length : 0;
    const end = r.headLength + length;
    if (end > data.byteLength || app.route(head).kind !== "handle") return false;
    // Bytes after this request (pipelining) wait in the connection buffer.
    if (end < data.byteLength) append(c, data.subarray(end));
    // The body stays a range of the socket chunk: no view is made of it.
    if (length === 0) dispatch(c, head, EMPTY);
    else dispatch(c, head, data, r.headLength, end);
    return true;
  };

  /** Run the connection state machine over the buffered bytes. */
  const pump = (c: Conn) => {
    while (c.phase === "head" || c.phase === "body") {
      if (c.phase === "head") {
        if (c.len === 0) return;
        const r = parseRequestHeadRaw(c.buf.subarray(0, c.len), HEAD_LIMITS, c.scanFrom);
        if (r.kind === "incomplete") {
          c.scanFrom = r.resumeAt;
          return;
        }
        if (r.kind === "error") {
          respondEmpty(c, r.status, false);
          return;
        }
        // The field ranges must outlive the connection buffer, which is reused: keep a copy.
        r.head.bytes = c.buf.slice(0, r.headLength);
        consume(c, r.headLength);
        const head: IncomingHead = r.head;
        const withBody = hasBody(head.framing);
        const decision = app.route(head);
        if (decision.kind === "respond") {
          const open = respondEmpty(c, decision.status, head.keepAlive && !withBody && !head.upgrade);
          if (decision.afterWrite) {
            // Bun corks writes made inside a data callback; push them out before the app
            // acts (e.g. exits the process after /shutdown).
            c.socket.flush();
            decision.afterWrite();
          }
          if (!open) return;
          continue;
        }
        c.head = head;
        if (head.framing.kind === "length" && head.framing.length > MAX_BODY_BYTES) {
          respondEmpty(c, 413, false);
          return;
        }
        if (!withBody) {
          dispatch(c, head, EMPTY);
          return;
        }
        if (head.expectContinue) c.queue.write(CONTINUE);
        c.phase = "body";
        c.body = new BodyCollector(head.framing);
        continue;
      }
      // body phase
      if (c.len === 0) return;
      const r = c.body!.feed(c.buf.subarray(0, c.len));
      if (r.kind === "error") {
        respondEmpty(c, r.status, false);
        return;
      }
      if (r.kind === "more") {
        c.len = 0;
        return;
      }
      consume(c, r.consumed);
      dispatch(c, c.head!, c.body!.body);
      return;
    }
  };

  const listener: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: opts.hostname,
    port: opts.port,
    socket: {
      binaryType: "uint8array",
      open(socket) {
        socket.setNoDelay(true);
        const c = {
          socket,
          buf: new Uint8Array(4096),
          len: 0,
          scanFrom: 0,
          phase: "head",
          paused: false,
        } as Conn;
        c.queue = new WriteQueue(socket, () => {}, () => {
          const d = c.drained;
          c.drained = undefined;
          d?.resolve();
        });
        c.sink = {
          write: (b) => void c.queue.write(b),
          get backlog() {
            return c.queue.size;
          },
          drained: () => waitDrained(c),
          get closed() {
            return c.phase === "closed";
          },
        };
        socket.data = c;
        conns.add(c);
      },
      data(socket, data) {
        const c = socket.data;
        if (c.phase === "discard" || c.phase === "closed") return;
        if (c.phase === "body" && c.len === 0) {
          // Fast path: body bytes go straight to the body collector, not via the connection buffer.
          const r = c.body!.feed(data);
          if (r.kind === "more") return;
          if (r.kind === "error") {
            respondEmpty(c, r.status, false);
            return;
          }
          if (r.consumed < data.byteLength) append(c, data.subarray(r.consumed));
          dispatch(c, c.head!, c.body!.body);
          return;
        }
        if (c.phase === "head" && c.len === 0 && fastRequest(c, data)) return;
        append(c, data);
        if (c.phase === "busy") {
          if (c.len > MAX_PIPELINED && !c.paused) {
            c.paused = true;
            socket.pause();
          }
          return;
        }
        pump(c);
      },
      drain(socket) {
        socket.data.queue.drain();
      },
      timeout(socket) {
        // Only armed for connections we are closing (closeAfterFlush); streams have no timeout.
        socket.terminate();
      },
      close(socket) {
        const c = socket.data;
        if (!c) return;
        c.phase = "closed";
        c.queue.discard();
        c.abort?.abort();
        const d = c.drained;
        c.drained = undefined;
        d?.resolve();
        conns.delete(c);
        if (stopping && conns.size === 0) allClosed?.resolve();
      },
      error(socket) {
        socket.data?.abort?.abort();
      },
    },
  });

  return {
    port: listener.port,
    async stop(graceMs = 10_000) {
      if (!stopping) {
        stopping = true;
        allClosed = Promise.withResolvers<void>();
        listener.stop(false);
        for (const c of conns) {
          if (c.phase === "head" && c.len === 0) c.socket.end();
        }
      }
      if (conns.size === 0) return;
      const timer = setTimeout(() => {
        for (const c of conns) c.socket.terminate();
      }, graceMs);
      try {
        await allClosed!.promise;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
