/**
 * A request body as a ReadableStream fed from the client socket (RFC 9112 §6): the
 * connection pushes raw bytes in, the decoder (content-length or chunked) hands content
 * pieces to the stream, and backpressure flows back: when more than `highWaterMark` bytes
 * wait in the stream the client socket is paused, and `pull` (the consumer wants more)
 * resumes it. Pieces are subarrays of the socket's chunks (Bun hands each `data` call a
 * fresh buffer), so nothing is copied here.
 */
import { createRequestBodyDecoder, type RequestBodyDecoder } from "../../http1/server-request-body.ts";
import type { BodyFraming } from "../../http1/server-request-head.ts";

const HIGH_WATER_MARK = 256 * 1024;

/** Result of {@link BodyPump.push}: bytes consumed, or a framing error. */
export type PushResult = { ok: true; consumed: number } | { ok: false; message: string };

export class BodyPump {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private readonly decoder: RequestBodyDecoder;
  private cancelled = false;
  private ended = false;
  /** Content bytes decoded so far. */
  received = 0;

  /**
   * @param framing the request's framing (`none` gives an empty, closed stream)
   * @param pause stop reading the client socket (stream full)
   * @param resume read again (the consumer pulled, or cancelled and pieces are now dropped)
   */
  constructor(
    framing: BodyFraming,
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {
    this.decoder = createRequestBodyDecoder(framing);
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
          if (this.decoder.finished) this.finish();
        },
        pull: () => this.resume(),
        cancel: () => {
          this.cancelled = true;
          this.resume();
        },
      },
      { highWaterMark: HIGH_WATER_MARK, size: (c) => c?.byteLength ?? 0 },
    );
  }

  /** Whether the whole body has arrived. */
  get finished(): boolean {
    return this.decoder.finished;
  }

  /**
   * Feed bytes read from the client. `consumed` < `chunk.byteLength` means the body ended
   * and the rest belongs to the next request. On a framing error the stream errors.
   */
  push(chunk: Uint8Array): PushResult {
    const r = this.decoder.feed(chunk, (piece) => {
      this.received += piece.byteLength;
      if (!this.cancelled && !this.ended) this.controller.enqueue(piece);
    });
    if (!r.ok) {
      this.fail(new Error(`invalid request body: ${r.message}`));
      return r;
    }
    if (r.done) this.finish();
    else if (!this.cancelled && (this.controller.desiredSize ?? 1) <= 0) this.pause();
    return { ok: true, consumed: r.consumed };
  }

  /** The client went away (or the request was abandoned) before the body ended. */
  fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.cancelled) {
      try {
        this.controller.error(err);
      } catch {
        // Already closed or errored by the consumer: nothing to report.
      }
    }
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.cancelled) {
      try {
        this.controller.close();
      } catch {
        // Consumer cancelled concurrently.
      }
    }
  }
}
