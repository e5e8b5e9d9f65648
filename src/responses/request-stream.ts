/**
 * A request body streamed to the upstream while it arrives (SPEC §1.5, SPEC-network §12):
 * bodies that are chunked or larger than the listener's buffering bound are not collected
 * in memory. The decoded pieces go into a ReadableStream whose queue is bounded in bytes; the
 * listener pauses the client socket while the queue is full and resumes it when the upstream
 * writer pulls again, so a connection holds at most about `highWaterMark` bytes of body
 * however large the body is. The overall bound (`maxBytes`, 128 MiB) still applies: a chunked
 * body crossing it fails with 413 at that point.
 */
import { createRequestBodyDecoder, type RequestBodyDecoder } from "../http1/server-request-body.ts";
import type { BodyFraming } from "../http1/server-request-head.ts";
import { CHUNKED_LIMITS } from "./incoming.ts";

/** Outcome of {@link RequestBodyStream.feed}. */
export type StreamFeedResult = { kind: "more" } | { kind: "done"; consumed: number } | { kind: "error"; status: 400 | 413 };

/** Options of a {@link RequestBodyStream}. */
export interface RequestBodyStreamOptions {
  /** Largest body in bytes (413 beyond it). */
  maxBytes: number;
  /** Bytes queued before the listener should pause the client (ByteLengthQueuingStrategy). */
  highWaterMark: number;
  /** The consumer wants more: resume the client socket. */
  onPull(): void;
  /** Every decoded piece is also given here (a `--dump-dir` copy); pieces may be kept. */
  onPiece?(piece: Uint8Array): void;
}

/** One request's body as a ReadableStream fed by the listener. */
export class RequestBodyStream {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private readonly decoder: RequestBodyDecoder;
  private total = 0;
  private closed = false;
  private tooLarge = false;
  /** The consumer cancelled (the upstream exchange ended): further pieces are dropped. */
  private cancelled = false;
  private copy = false;

  constructor(
    framing: BodyFraming,
    private readonly opts: RequestBodyStreamOptions,
  ) {
    this.decoder = createRequestBodyDecoder(framing, CHUNKED_LIMITS);
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        pull: () => opts.onPull(),
        cancel: () => {
          this.cancelled = true;
          this.closed = true;
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: opts.highWaterMark }),
    );
  }

  /** The queue is at or over its high-water mark: pause the source until `onPull`. */
  get full(): boolean {
    return !this.closed && (this.controller.desiredSize ?? 0) <= 0;
  }

  /** The whole body was read from the client. */
  get finished(): boolean {
    return this.decoder.finished;
  }

  private readonly onData = (piece: Uint8Array) => {
    this.total += piece.byteLength;
    if (this.total > this.opts.maxBytes) {
      this.tooLarge = true;
      return;
    }
    if (this.cancelled) return;
    // Pieces of a reused buffer (the listener's connection buffer) must be copied to be kept.
    const kept = this.copy ? piece.slice() : piece;
    this.opts.onPiece?.(kept);
    this.controller.enqueue(kept);
  };

  /**
   * Feed client bytes. `copy`: `data` is a buffer the caller reuses (pieces are copied);
   * otherwise pieces are kept as views (Bun hands every `data` callback a fresh buffer).
   * `done`: the body ended after `consumed` bytes and the stream is closed; `error`: 400 for
   * bad chunked framing, 413 past `maxBytes`, and the stream is errored. Feed no more after
   * `done` or `error`.
   */
  feed(data: Uint8Array, copy = false): StreamFeedResult {
    this.copy = copy;
    const r = this.decoder.feed(data, this.onData);
    if (this.tooLarge) {
      this.fail(new Error("request body too large"));
      return { kind: "error", status: 413 };
    }
    if (!r.ok) {
      this.fail(new Error(`bad request body: ${r.message}`));
      return { kind: "error", status: 400 };
    }
    if (!r.done) return { kind: "more" };
    if (!this.closed) {
      this.closed = true;
      this.controller.close();
    }
    return { kind: "done", consumed: r.consumed };
  }

  /** The client went away or sent a bad body: the consumer sees a failed stream. */
  fail(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.controller.error(err);
  }
}
