/**
 * One request/response exchange on a connection (RFC 9112): writes the head (zeroed once the
 * socket took it) and the body (content-length bytes, a stream checked against its announced
 * content-length, or a chunked stream; streams with backpressure),
 * parses the response head, and streams the decoded body chunk by chunk.
 *
 * The response body is pushed (BodySource / BodyConsumer, types.ts): each decoded piece goes
 * to the consumer as soon as it is decoded (SSE latency, SPEC §1.5), then `flush()` once per
 * socket read. Pieces that arrive before a consumer is attached (the head promise resolves a
 * microtask later) wait in a list bounded by RESPONSE_HIGH_WATER_BYTES (the socket is paused
 * beyond it). body-stream.ts adapts a BodySource to the public ReadableStream contract.
 */
import type { AbortLike, BodyConsumer, BodySource, DirectResponse, RawFields, ResponseHandler } from "./types.ts";
import { UpstreamError } from "./upstream-error.ts";
import type { ConnectionSink, Http1Connection } from "./connection.ts";
import { findHeadEnd, HeadAccumulator, MAX_HEAD_BYTES, scanResponseHead, scannedFraming, type ScannedResponseHead } from "./client-response-head.ts";
import { createResponseBodyDecoder, type ResponseBodyDecoder, type RangeSink } from "./client-response-body.ts";
import { CHUNKED_END, chunkSizeLine, encodeChunk } from "./chunked-encoder.ts";

/** Queue bound of a response body stream before the socket is paused. */
export const RESPONSE_HIGH_WATER_BYTES = 64 * 1024;

const CRLF = new Uint8Array([0x0d, 0x0a]);
/** Chunks up to this size are framed into one buffer (one write); larger ones are written in 3 parts. */
const COPY_FRAME_MAX = 16 * 1024;

export interface ExchangeInput {
  method: string;
  /** The request head; the exchange zeroes it once written (or when the write is abandoned). */
  head: Uint8Array;
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  /**
   * For a stream body framed by `content-length` (the head announced it): the exact byte
   * count the stream must yield. Absent: the stream is written chunked.
   */
  bodyLength?: number;
  signal?: AbortSignal | AbortLike;
  /** Test hook: called with the head buffer right after it was zeroed. */
  onHeadZeroed?: (head: Uint8Array) => void;
  /** ClientRequest.secretResponse: zero every received chunk once parsed and delivered. */
  zeroReceived?: boolean;
  /** Receives the response once its head is parsed, or the failure before that. */
  handler: ResponseHandler;
  /**
   * Consulted on a failure before the response head: returns true when it took the request
   * over (a replay on a fresh connection), so the handler must not hear of the failure.
   */
  replay?: ((input: ExchangeInput, err: Error, conn: Http1Connection) => boolean) | null;
}

type Phase = "head" | "body" | "done";

class Exchange implements ConnectionSink, BodySource, RangeSink {
  private phase: Phase = "head";
  /** Made only when a head arrives in pieces (most arrive in one read). */
  private acc: HeadAccumulator | null = null;
  private decoder: ResponseBodyDecoder | null = null;
  private consumer: BodyConsumer | null = null;
  /** Pieces decoded before a consumer attached, their byte count, and how the body ended meanwhile. */
  private early: Uint8Array[] = [];
  private earlyBytes = 0;
  private earlyEnd: true | Error | null = null;
  private pausedEarly = false;
  private reusable = false;
  private requestDone = false;
  private drained: PromiseWithResolvers<void> | null = null;
  private bodyReader: { cancel(): Promise<void> } | null = null;
  /** Where the bytes after a parsed head start (set by readHead). */
  private restBytes: Uint8Array | null = null;
  private restFrom = 0;

  /** RangeSink of the body decoder: a range goes to a consumer that copies, else a view. */
  piece(bytes: Uint8Array, start: number, end: number): void {
    const consumer = this.consumer;
    if (consumer?.range) {
      consumer.range(bytes, start, end);
      return;
    }
    // A chunk that is zeroed after parsing can't lend views to pieces kept for later.
    const c = !consumer && this.input.zeroReceived ? bytes.slice(start, end) : start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
    if (consumer) {
      consumer.data(c);
      return;
    }
    this.early.push(c);
    this.earlyBytes += c.byteLength;
    if (this.earlyBytes >= RESPONSE_HIGH_WATER_BYTES && !this.pausedEarly) {
      this.pausedEarly = true;
      this.conn.pause();
    }
  };
  private readonly onAbort = () => this.fail(new UpstreamError("aborted", "request aborted"));

  constructor(
    private readonly conn: Http1Connection,
    private readonly input: ExchangeInput,
    private readonly release: (conn: Http1Connection) => void,
  ) {}

  start(): void {
    const { head, body, signal } = this.input;
    const queue = this.conn.queue!;
    this.conn.receivedAny = false;
    this.conn.sink = this;
    signal?.addEventListener("abort", this.onAbort, { once: true });
    const zero = () => {
      head.fill(0);
      this.input.onHeadZeroed?.(head);
    };
    if (this.conn.closed) zero();
    // write() runs `zero` itself, also when it returns false (socket already closed).
    if (this.conn.closed || !queue.write(head, zero)) {
      this.fail(new UpstreamError("closed", "upstream connection closed before the request was sent"));
      return;
    }
    if (body instanceof ReadableStream) {
      void this.pump(body);
    } else {
      if (body && body.length > 0) queue.write(body);
      this.requestDone = true;
    }
  }

  /**
   * Write a stream body: chunked, or raw when `bodyLength` (content-length framing) is set,
   * in which case the stream must yield exactly that many bytes (RFC 9112 §6.2; a message
   * shorter or longer than its content-length would desynchronise the connection).
   */
  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const queue = this.conn.queue!;
    const reader = stream.getReader();
    const length = this.input.bodyLength;
    let sent = 0;
    this.bodyReader = reader;
    try {
      for (;;) {
        if (queue.size > 0) {
          this.drained = Promise.withResolvers<void>();
          await this.drained.promise;
          this.drained = null;
        }
        if (this.ended()) return;
        const { done, value } = await reader.read();
        if (this.ended()) return;
        if (done) {
          if (length !== undefined && sent !== length) {
            this.fail(new UpstreamError("aborted", `request body stream ended after ${sent} of ${length} bytes (bodyLength)`));
            return;
          }
          if (length === undefined) queue.write(CHUNKED_END);
          this.requestDone = true;
          this.finishIfComplete();
          return;
        }
        if (value.length === 0) continue;
        if (length !== undefined) {
          sent += value.length;
          if (sent > length) {
            this.fail(new UpstreamError("aborted", `request body stream yielded more than its bodyLength (${length} bytes)`));
            return;
          }
          queue.write(value);
          continue;
        }
        if (value.length <= COPY_FRAME_MAX) {
          queue.write(encodeChunk(value));
        } else {
          queue.write(chunkSizeLine(value.length));
          queue.write(value);
          queue.write(CRLF);
        }
      }
    } catch {
      // The caller's body stream failed: the request cannot be completed on this connection.
      this.fail(new UpstreamError("aborted", "request body stream failed"));
    }
  }

  /** The exchange is over or its connection is gone (read through a method: TS narrows fields). */
  private ended(): boolean {
    return this.phase === "done" || this.conn.closed;
  }

  onDrained(): void {
    this.drained?.resolve();
  }

  onData(chunk: Uint8Array): void {
    if (!this.input.zeroReceived) {
      this.receive(chunk);
      return;
    }
    try {
      this.receive(chunk);
    } finally {
      // Everything of this read was parsed and delivered (copied by the consumer): zero the
      // socket chunk, and a head accumulation buffer that just completed.
      chunk.fill(0);
      const acc = this.acc;
      if (acc?.lastBuffer) {
        acc.lastBuffer.fill(0);
        acc.lastBuffer = null;
      }
    }
  }

  private receive(chunk: Uint8Array): void {
    try {
      let from = 0;
      if (this.phase === "head") {
        // The bytes after a head are a range (restBytes, restFrom), not a view.
        let bytes: Uint8Array = chunk;
        for (;;) {
          if (!this.readHead(from === 0 ? bytes : bytes.subarray(from))) {
            this.finishIfComplete();
            return;
          }
          bytes = this.restBytes!;
          from = this.restFrom;
          this.restBytes = null;
          if (this.phase !== "head" || from >= bytes.length) break;
        }
        if (from >= bytes.length) {
          this.finishIfComplete();
          return;
        }
        chunk = bytes;
      }
      if (this.phase === "body") {
        const used = this.decoder!.pushRange(chunk, from, this);
        if (used < chunk.length) this.reusable = false; // bytes beyond the message
        // A body that ended gets end() alone (the consumer writes its batch then); otherwise flush().
        if (this.decoder!.done) this.finishIfComplete();
        else this.consumer?.flush();
      } else if (this.phase === "done") {
        this.conn.destroy(); // unsolicited bytes after the response
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** Consume a head from `chunk`; false while incomplete, else true with the bytes after it in restBytes/restFrom. */
  private readHead(chunk: Uint8Array): boolean {
    let got: { bytes: Uint8Array; end: number } | null;
    const end = this.acc === null ? findHeadEnd(chunk, 0) : -1;
    if (end >= 0 && end <= MAX_HEAD_BYTES) got = { bytes: chunk, end };
    else got = (this.acc ??= new HeadAccumulator()).push(chunk);
    if (!got) return false;
    const head = scanResponseHead(got.bytes, got.end);
    this.restBytes = got.bytes;
    this.restFrom = got.end;
    if (head.status < 200) {
      // 101 would hand the connection to another protocol we never asked for.
      if (head.status === 101) throw new UpstreamError("protocol", "unexpected 101 Switching Protocols");
      return true; // interim response (100, 102, 103): the final one follows
    }
    this.startBody(head);
    return true;
  }

  private startBody(head: ScannedResponseHead): void {
    const { framing, reusable } = scannedFraming(head, this.input.method);
    this.reusable = reusable;
    this.decoder = createResponseBodyDecoder(framing);
    this.phase = "body";
    const length = framing.kind === "length" ? framing.length : framing.kind === "none" ? 0 : undefined;
    this.input.handler.onResponse(new ExchangeResponse(head, this, length));
  }

  // BodySource of the response (the exchange itself: no closures per request). pause/resume
  // act only while this exchange owns the connection: a late resume must not resume a
  // connection that the pool already gave to another exchange.
  pause(): void {
    if (this.phase === "body") this.conn.pause();
  }

  resume(): void {
    if (this.phase === "body") this.conn.resume();
  }

  cancel(): void {
    if (this.phase !== "done") {
      this.phase = "done";
      this.consumer = null;
      this.cleanup();
      this.conn.destroy();
    }
  }

  attach(consumer: BodyConsumer): void {
    if (this.consumer) throw new TypeError("response body already attached");
    const early = this.early;
    const end = this.earlyEnd;
    this.early = [];
    this.earlyBytes = 0;
    this.earlyEnd = null;
    if (end === null && this.phase !== "body") return; // cancelled
    if (this.pausedEarly) {
      this.pausedEarly = false;
      if (this.phase === "body") this.conn.resume();
    }
    this.consumer = consumer;
    for (const piece of early) consumer.data(piece);
    if (end === true) this.endBody(true);
    else if (end) this.endBody(end);
    else if (early.length > 0) consumer.flush();
  }

  /** The body ended (`true`) or failed: tell the consumer, or keep it for `attach`. */
  private endBody(how: true | Error): void {
    const consumer = this.consumer;
    this.consumer = null;
    if (!consumer) this.earlyEnd = how;
    else if (how === true) consumer.end();
    else consumer.error(how);
  }

  private finishIfComplete(): void {
    if (this.phase !== "body" || !this.decoder!.done) return;
    this.phase = "done";
    if (!this.requestDone) {
      // The response ended before the request body was sent: the connection is out of sync.
      this.cleanup();
      this.conn.destroy();
      this.endBody(true);
      return;
    }
    this.cleanup();
    if (this.reusable && !this.conn.closed) {
      this.conn.resume();
      this.release(this.conn);
    } else {
      this.conn.destroy();
    }
    // Last: the consumer may start the next request, which may take this pooled connection.
    this.endBody(true);
  }

  onClose(): void {
    if (this.phase === "body" && this.decoder!.eof()) {
      this.phase = "done";
      this.cleanup();
      this.endBody(true);
      return;
    }
    const msg =
      this.phase === "head"
        ? this.conn.receivedAny
          ? "upstream closed the connection before the response head was complete"
          : "upstream closed the connection before responding"
        : "upstream closed the connection before the response body was complete";
    this.fail(new UpstreamError("closed", msg));
  }

  /** End the exchange with an error: reject (before the head) or error the body stream. */
  private fail(err: Error): void {
    if (this.phase === "done") return;
    const wasHead = this.phase === "head";
    this.phase = "done";
    this.cleanup();
    this.conn.destroy();
    if (wasHead) {
      const replay = this.input.replay;
      if (!replay || !replay(this.input, err, this.conn)) this.input.handler.onError(err);
    }
    else this.endBody(err);
  }

  private cleanup(): void {
    this.input.signal?.removeEventListener("abort", this.onAbort);
    if (this.conn.sink === this) this.conn.sink = null;
    this.drained?.resolve();
    if (this.bodyReader && !this.requestDone) {
      this.bodyReader.cancel().catch(() => {});
    }
  }
}

/** The DirectResponse of an exchange: reason and header strings are built only when read. */
class ExchangeResponse implements DirectResponse {
  constructor(
    private readonly head: ScannedResponseHead,
    readonly body: BodySource,
    readonly bodyLength: number | undefined,
  ) {}

  get status(): number {
    return this.head.status;
  }

  get reason(): string {
    return this.head.reason;
  }

  get headers(): Array<[string, string]> {
    return this.head.headers;
  }

  get rawHead(): RawFields {
    return this.head;
  }
}

/**
 * Run one exchange on `conn` (which must be ready and idle). `input.handler` gets the
 * response once its head is parsed (synchronously from the socket's data event), or an
 * UpstreamError before that (possibly synchronously, e.g. an already aborted signal).
 * @param release called with the connection when it may be reused; otherwise it is destroyed
 */
export function runExchange(conn: Http1Connection, input: ExchangeInput, release: (conn: Http1Connection) => void): void {
  if (input.signal?.aborted) {
    input.head.fill(0);
    input.onHeadZeroed?.(input.head);
    conn.destroy();
    input.handler.onError(new UpstreamError("aborted", "request aborted"));
    return;
  }
  const ex = new Exchange(conn, input, release);
  conn.uses++;
  ex.start();
}
