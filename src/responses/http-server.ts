/**
 * The responses proxy's HTTP/1.1 listener on `Bun.listen` (RFC 9112).
 *
 * Why not Bun.serve: it rewrites an absolute-form request-target into origin-form (so
 * `POST http://evil/v1/responses` would look like `POST /v1/responses`), and SPEC §1.4
 * needs the target exactly as sent. This server is deliberately small: sequential requests
 * per connection (pipelined bytes are buffered, bounded), bodies up to 1 MiB buffered and
 * larger or chunked ones streamed with backpressure (request-stream.ts), responses streamed
 * chunk by chunk with backpressure (WriteQueue).
 *
 * Bounds against hostile or broken clients (SPEC-network §12, which applies to this listener;
 * see {@link HttpServerBounds}): a head must be complete within 30 s of its first byte (408
 * and close), a connection idle for 120 s before or between requests is closed, a request
 * body that stalls for 120 s ends its connection, at most `maxConnections` connections are
 * open (more are closed at once). No timeout applies while a response streams: SSE may be
 * quiet for long.
 */
import type { Socket, TCPSocketListener } from "bun";
import { WriteQueue } from "../net/write-queue.ts";
import { Cancellation } from "../http1/cancellation.ts";
import type { AbortLike } from "../http1/types.ts";
import type { ExchangeRecord, HttpApp, HttpServerBounds, HttpServerHandle, IncomingRequest, OutgoingResponse } from "./http-app.ts";
import { encodeResponseHead, pipeBody, type BodySink, type PipeOutcome } from "./body-writer.ts";
import { parseRequestHeadRaw } from "../http1/server-request-head.ts";
import { BodyCollector, HEAD_LIMITS, hasBody, MAX_BODY_BYTES, type IncomingHead } from "./incoming.ts";
import { RequestBodyStream } from "./request-stream.ts";
import { startDeadlineSweep, sweepTickMs } from "../net/deadlines.ts";
import { createConnectionCap, DEFAULT_MAX_CONNECTIONS } from "../net/connection-cap.ts";

/** Pipelined input buffered while a response is in progress before the client is paused (SPEC-network §12). */
const MAX_PIPELINED = 64 * 1024;

/** The request being served, measured for the access line. */
interface Exchange {
  start: number;
  method: string | null;
  target: string | null;
  bytesIn: number;
  outStart: number;
  status: number | null;
  dispatched: number;
  ttfb: number | null;
}

interface Conn {
  socket: Socket<Conn>;
  /** When the current bound expires (performance.now() ms; Infinity while a response streams). */
  deadline: number;
  /** The head being read has started its head timeout. */
  headTimed: boolean;
  /** Counted by the connection cap. */
  admitted: boolean;
  /** A body being streamed to the app (phase "stream"). */
  bodyIn?: RequestBodyStream;
  queue: WriteQueue;
  buf: Uint8Array;
  len: number;
  scanFrom: number;
  phase: "head" | "body" | "stream" | "busy" | "discard" | "closed";
  head?: IncomingHead;
  body?: BodyCollector;
  abort?: Cancellation & { respond(resp: OutgoingResponse): void };
  drained?: PromiseWithResolvers<void>;
  paused: boolean;
  /** The connection as a BodySink for pipeBody (made once per connection). */
  sink: BodySink;
  /** Bytes handed to `queue` since the connection opened. */
  out: number;
  /** The exchange measured for the access line (only when the app has `onAccess`). */
  ex: Exchange | null;
  /** Client `ip:port` (only when the app has `onAccess`). */
  client: string;
}

const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
/** Bodies of a known length up to this size are copied behind the head (one buffer, one write). */
const HEAD_ROOM_MAX = 16 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * Listen on `hostname:port` (0 = ephemeral) and serve `app`.
 * @throws when the address cannot be bound (message from Bun, e.g. EADDRINUSE).
 */
export function startHttpServer(opts: {
  hostname: string;
  port: number;
  app: HttpApp;
  bounds?: HttpServerBounds;
  /** Operational warnings (the connection cap), one line each. */
  warn?: (line: string) => void;
}): HttpServerHandle {
  const { app } = opts;
  const b = opts.bounds ?? {};
  const headTimeoutMs = b.headTimeoutMs ?? 30_000;
  const idleTimeoutMs = b.idleTimeoutMs ?? 120_000;
  const maxBufferedBody = b.maxBufferedBody ?? 1024 * 1024;
  const maxBodyBytes = b.maxBodyBytes ?? MAX_BODY_BYTES;
  const streamHighWaterMark = b.streamHighWaterMark ?? 256 * 1024;
  const cap = createConnectionCap({ max: b.maxConnections ?? DEFAULT_MAX_CONNECTIONS, warn: opts.warn ?? (() => {}) });
  const access = app.onAccess?.bind(app) ?? null;
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

  /** Every response byte goes through here, so the access line can count them. */
  const send = (c: Conn, bytes: Uint8Array) => {
    c.out += bytes.byteLength;
    c.queue.write(bytes);
  };

  /** Start measuring a request whose head was `headBytes` long. */
  const begin = (c: Conn, head: IncomingHead | null, headBytes: number) => {
    if (access === null) return;
    const now = performance.now();
    c.ex = {
      start: now,
      method: head === null ? null : head.method,
      target: head === null ? null : head.target,
      bytesIn: headBytes,
      outStart: c.out,
      status: null,
      dispatched: now,
      ttfb: null,
    };
  };

  /** The request ended: write its access record once. */
  const end = (c: Conn, outcome: ExchangeRecord["outcome"]) => {
    const ex = c.ex;
    if (ex === null) return;
    c.ex = null;
    access!({
      client: c.client,
      method: ex.method,
      target: ex.target,
      status: ex.status,
      bytesIn: ex.bytesIn,
      bytesOut: c.out - ex.outStart,
      durationMs: performance.now() - ex.start,
      upstreamTtfbMs: ex.ttfb,
      outcome,
    });
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
   * nor closes is cut when the head timeout expires (SPEC-network §12).
   */
  const closeAfterFlush = (c: Conn) => {
    c.phase = "discard";
    if (c.bodyIn) {
      c.bodyIn.fail(new Error("connection closing"));
      c.bodyIn = undefined;
    }
    c.deadline = performance.now() + headTimeoutMs;
    if (c.queue.size === 0) c.socket.shutdown();
    else void waitDrained(c).then(() => c.socket.shutdown());
  };

  /** Answer with an empty body; close unless the connection can safely continue. */
  const respondEmpty = (c: Conn, status: number, keepOpen: boolean) => {
    const close = !keepOpen || stopping;
    send(c, encodeResponseHead(status, [], { kind: "length", length: 0 }, close));
    if (c.ex !== null) {
      c.ex.status = status;
      end(c, "complete");
    }
    if (close) closeAfterFlush(c);
    return !close;
  };

  const finishExchange = (c: Conn, keepAlive: boolean) => {
    if (c.ex !== null) end(c, "complete");
    c.head = undefined;
    c.body = undefined;
    c.abort = undefined;
    if (c.phase === "closed") return;
    if (!keepAlive || stopping) {
      closeAfterFlush(c);
      return;
    }
    c.phase = "head";
    c.headTimed = false;
    c.deadline = performance.now() + idleTimeoutMs;
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

  /**
   * May the connection carry another request after this response? Not when the client asked
   * to close, the server is stopping, or the request body was not read to its end (the app
   * answered while it streamed): the unread rest must never be parsed as a next request.
   */
  const reusable = (c: Conn, head: IncomingHead) => head.keepAlive && !stopping && c.bodyIn === undefined;

  const writeResponse = (c: Conn, head: IncomingHead, resp: OutgoingResponse) => {
    const noBody = resp.status < 200 || resp.status === 204 || resp.status === 304;
    const source = resp.body === null || resp.body instanceof Uint8Array ? null : resp.body;
    const bytes = resp.body instanceof Uint8Array ? resp.body : new Uint8Array(0);
    const chunked = head.version === "HTTP/1.1";
    if (noBody || !source) {
      source?.cancel();
      const keepAlive = reusable(c, head);
      const framing = noBody ? ({ kind: "none" } as const) : ({ kind: "length", length: bytes.byteLength } as const);
      const headBytes = encodeResponseHead(resp.status, resp.headers, framing, !keepAlive);
      if (noBody || bytes.byteLength === 0) send(c, headBytes);
      else {
        const one = new Uint8Array(headBytes.byteLength + bytes.byteLength);
        one.set(headBytes);
        one.set(bytes, headBytes.byteLength);
        send(c, one);
      }
      finishExchange(c, keepAlive);
      return;
    }
    if (resp.bodyLength !== undefined) {
      // The upstream gave the length: relay with content-length framing, raw bytes, the first
      // ones copied behind the head (nginx does the same; no chunk framing to build).
      const keepAlive = reusable(c, head);
      const spare = Math.min(resp.bodyLength, HEAD_ROOM_MAX);
      const buf = encodeResponseHead(resp.status, resp.headers, { kind: "length", length: resp.bodyLength }, !keepAlive, spare);
      pipeBody(c.sink, buf, source, false, (outcome) => afterPipe(c, outcome, keepAlive), buf.byteLength - spare);
      return;
    }
    // HTTP/1.0 clients cannot parse chunked framing: their streamed bodies end with the connection.
    const keepAlive = reusable(c, head) && chunked;
    const headBytes = encodeResponseHead(resp.status, resp.headers, chunked ? { kind: "chunked" } : { kind: "close" }, !keepAlive);
    pipeBody(c.sink, headBytes, source, chunked, (outcome) => afterPipe(c, outcome, keepAlive));
  };

  const afterPipe = (c: Conn, outcome: PipeOutcome, keepAlive: boolean) => {
    if (outcome === "complete") finishExchange(c, keepAlive);
    else if (c.ex !== null) end(c, outcome === "client-closed" ? "client_closed" : "upstream_failed");
    if (outcome !== "complete" && outcome !== "client-closed" && c.phase !== "closed") {
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
      readonly bodyStream: ReadableStream<Uint8Array> | null,
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
      const ex = c.ex;
      if (ex !== null) {
        ex.status = resp.status;
        if (resp.fromUpstream) ex.ttfb = performance.now() - ex.dispatched;
      }
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

  const dispatch = (c: Conn, head: IncomingHead, body: Uint8Array, start = 0, end = body.length, stream: ReadableStream<Uint8Array> | null = null) => {
    c.head = head;
    if (stream === null) {
      c.phase = "busy";
      c.deadline = Infinity;
    }
    if (c.ex !== null) {
      c.ex.bytesIn += end - start;
      c.ex.dispatched = performance.now();
    }
    const call = (c.abort = new Call(c, head, body, start, end, stream));
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
    if (end > data.byteLength || length > maxBufferedBody || app.route(head).kind !== "handle") return false;
    // Bytes after this request (pipelining) wait in the connection buffer.
    if (end < data.byteLength) append(c, data.subarray(end));
    begin(c, head, r.headLength);
    // The body stays a range of the socket chunk: no view is made of it.
    if (length === 0) dispatch(c, head, EMPTY);
    else dispatch(c, head, data, r.headLength, end);
    return true;
  };

  /**
   * A body too large to buffer (or chunked): the app gets the request now, with the body as a
   * stream fed by the socket (SPEC §1.5); the socket is paused while the stream is full.
   */
  const startStream = (c: Conn, head: IncomingHead) => {
    const bodyIn = new RequestBodyStream(head.framing, {
      maxBytes: maxBodyBytes,
      highWaterMark: streamHighWaterMark,
      onPull: () => {
        if (c.bodyIn !== bodyIn || !c.paused || c.phase === "closed") return;
        c.paused = false;
        c.deadline = performance.now() + idleTimeoutMs;
        c.socket.resume();
      },
    });
    c.bodyIn = bodyIn;
    c.phase = "stream";
    dispatch(c, head, EMPTY, 0, 0, bodyIn.stream);
  };

  /** Feed body bytes to the streamed body; `buffered`: `data` is the connection buffer. */
  const feedStream = (c: Conn, data: Uint8Array, buffered: boolean) => {
    const bodyIn = c.bodyIn!;
    const r = bodyIn.feed(data, buffered);
    if (c.ex !== null) c.ex.bytesIn += r.kind === "more" ? data.byteLength : r.kind === "done" ? r.consumed : 0;
    if (r.kind === "more") {
      if (buffered) c.len = 0;
      if (bodyIn.full) {
        // Backpressure from the upstream: not the client's fault, so no idle bound meanwhile.
        c.paused = true;
        c.deadline = Infinity;
        c.socket.pause();
      } else c.deadline = performance.now() + idleTimeoutMs;
      return;
    }
    c.bodyIn = undefined;
    if (r.kind === "error") {
      // The connection cannot continue after a bad or oversized body; the app's request fails
      // (its body stream errored) and the client gets this status unless it was answered.
      c.head!.keepAlive = false;
      if (buffered) c.len = 0;
      if (c.phase === "stream") c.phase = "busy";
      c.abort?.respond({ status: r.status, headers: [], body: null });
      return;
    }
    if (buffered) consume(c, r.consumed);
    else if (r.consumed < data.byteLength) append(c, data.subarray(r.consumed));
    if (c.phase === "stream") {
      c.phase = "busy";
      c.deadline = Infinity;
    }
  };

  /**
   * A bound expired (SPEC-network §12): a head not complete in time gets 408, an idle
   * connection is closed, a stalled body ends its connection, a closing one is cut.
   */
  const expire = (c: Conn) => {
    switch (c.phase) {
      case "head":
        if (c.len > 0 || c.headTimed) {
          // Like a malformed head: an access line with what arrived (no method, no target).
          begin(c, null, c.len);
          respondEmpty(c, 408, false);
        } else closeAfterFlush(c);
        return;
      case "body":
        respondEmpty(c, 408, false);
        return;
      case "stream":
        c.bodyIn?.fail(new Error("request body timeout"));
        c.socket.terminate();
        return;
      case "discard":
        c.socket.terminate();
        return;
    }
  };

  /** Run the connection state machine over the buffered bytes. */
  const pump = (c: Conn) => {
    while (c.phase === "head" || c.phase === "body") {
      if (c.phase === "head") {
        if (c.len === 0) return;
        const r = parseRequestHeadRaw(c.buf.subarray(0, c.len), HEAD_LIMITS, c.scanFrom);
        if (r.kind === "incomplete") {
          c.scanFrom = r.resumeAt;
          if (!c.headTimed) {
            // The head timeout runs from the first byte of the head (SPEC-network §12).
            c.headTimed = true;
            c.deadline = performance.now() + headTimeoutMs;
          }
          return;
        }
        c.headTimed = false;
        if (r.kind === "error") {
          begin(c, null, c.len);
          respondEmpty(c, r.status, false);
          return;
        }
        begin(c, r.head, r.headLength);
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
        if (head.framing.kind === "length" && head.framing.length > maxBodyBytes) {
          respondEmpty(c, 413, false);
          return;
        }
        if (!withBody) {
          dispatch(c, head, EMPTY);
          return;
        }
        if (head.expectContinue) send(c, CONTINUE);
        c.deadline = performance.now() + idleTimeoutMs;
        if (head.framing.kind === "length" && head.framing.length <= maxBufferedBody) {
          c.phase = "body";
          c.body = new BodyCollector(head.framing, maxBodyBytes);
          continue;
        }
        startStream(c, head);
        if (c.len > 0) feedStream(c, c.buf.subarray(0, c.len), true);
        return;
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
        if (!cap.admit()) {
          // Over max_connections: closed at once, before any state is made for it.
          socket.data = undefined as unknown as Conn;
          socket.terminate();
          return;
        }
        socket.setNoDelay(true);
        const c = {
          socket,
          deadline: performance.now() + idleTimeoutMs,
          headTimed: false,
          admitted: true,
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
        c.out = 0;
        c.ex = null;
        c.client = access === null ? "" : `${socket.remoteAddress}:${socket.remotePort}`;
        c.sink = {
          write: (b) => send(c, b),
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
        if (!c || c.phase === "discard" || c.phase === "closed") return;
        if (c.phase === "stream") {
          feedStream(c, data, false);
          if ((c.phase as Conn["phase"]) === "busy" && c.len > MAX_PIPELINED && !c.paused) {
            c.paused = true;
            socket.pause();
          }
          return;
        }
        if (c.phase === "body" && c.len === 0) {
          // Fast path: body bytes go straight to the body collector, not via the connection buffer.
          const r = c.body!.feed(data);
          if (r.kind === "more") {
            c.deadline = performance.now() + idleTimeoutMs;
            return;
          }
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
      close(socket) {
        const c = socket.data;
        if (!c) return;
        if (c.admitted) {
          c.admitted = false;
          cap.release();
        }
        c.bodyIn?.fail(new Error("client closed the connection"));
        c.phase = "closed";
        c.queue.discard();
        if (c.ex !== null) end(c, "client_closed");
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

  const sweep = startDeadlineSweep({
    items: conns,
    tickMs: sweepTickMs(headTimeoutMs, idleTimeoutMs),
    expire,
    onFault: (err) => app.onError?.(err instanceof Error ? err.message : String(err)),
  });

  return {
    port: listener.port,
    get refused() {
      return cap.refused;
    },
    async stop(graceMs = 10_000) {
      if (!stopping) {
        stopping = true;
        sweep.stop();
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
