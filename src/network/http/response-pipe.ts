/**
 * Pipes a forwarded response body to the proxy client (SPEC-network §4 plain HTTP, §6 inside
 * the MITM) over the HTTP/1.1 client's push path (`BodySource`: no ReadableStream, no
 * promise per chunk).
 *
 * Output is batched per upstream socket read: the response head, the pieces of that read
 * and, at the end, the last chunk go out in one write when they arrived together (a small
 * response is one write: head + body). Nothing is held back: every read is written as soon
 * as it was decoded, and when the body has not started yet the head is written at once (a
 * quiet event stream still shows its status). Pieces are never copied, except to join a
 * batch of at most 64 KiB into one write. While the client's write queue holds bytes the
 * upstream is paused, so it is read no faster than the client takes the bytes.
 */
import type { AbortLike, BodyConsumer, BodySource } from "../../http1/types.ts";
import { concatBytes } from "../bytes.ts";
import { CHUNKED_END, chunkSizeLine } from "../../http1/chunked-encoder.ts";

/** Where the piped bytes go (a ConnIO of the HTTP listener, the MITM's decrypted side). */
export interface PipeSink {
  /** Queue bytes for the client (written at once when the socket takes them). */
  write(bytes: Uint8Array): void;
  /** Bytes written but not yet taken by the socket. */
  queued(): number;
  /** Resolves when nothing is queued any more (or the connection closed). */
  drained(): Promise<void>;
  /** Aborted when the client connection closes. */
  readonly signal: AbortLike;
}

/** How the body is delimited towards the client. */
export type PipeFraming = "none" | "length" | "chunked" | "close";

/** How a piped body ended: complete, the client went away, or the upstream body failed. */
export type PipeEnd = "complete" | "client-closed" | Error;

/** Result of {@link pipeResponse}. */
export interface PipeResult {
  end: PipeEnd;
  /** Content bytes received from the upstream (before our framing). */
  bytes: number;
  /** Whether the head reached the write queue (a failure before it can still be answered 502). */
  headWritten: boolean;
}

/** A batch is written once it reaches this size, whatever else is pending. */
const FLUSH_BYTES = 64 * 1024;
const CRLF = new Uint8Array([0x0d, 0x0a]);

/**
 * Write `head` and every piece of `body` to `io` with `framing` (`chunked` frames each
 * piece, RFC 9112 §7.1; `none` drops body bytes). Resolves once the body ended, failed, or
 * the client connection closed (`io.signal`; the upstream body is then cancelled).
 */
export function pipeResponse(io: PipeSink, head: Uint8Array, body: BodySource, framing: PipeFraming): Promise<PipeResult> {
  const pipe = new ResponsePipe(io, head, body, framing);
  if (io.signal.aborted) pipe.abort();
  else {
    io.signal.addEventListener("abort", pipe.abort, { once: true });
    body.attach(pipe);
    pipe.started();
  }
  return pipe.result.promise;
}

/** The consumer behind `pipeResponse` (one per response). */
class ResponsePipe implements BodyConsumer {
  readonly result = Promise.withResolvers<PipeResult>();
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private head: Uint8Array | null;
  private bytes = 0;
  private paused = false;
  private finished = false;

  constructor(
    private readonly io: PipeSink,
    head: Uint8Array,
    private readonly body: BodySource,
    private readonly framing: PipeFraming,
  ) {
    this.head = head;
  }

  /** After `attach` delivered what had already arrived: a head still waiting goes out now. */
  started(): void {
    if (!this.finished && this.head !== null) this.flush();
  }

  /** The client connection closed: stop reading the upstream (closes that connection). */
  readonly abort = (): void => {
    if (this.finished) return;
    this.body.cancel();
    this.done("client-closed");
  };

  data(piece: Uint8Array): void {
    if (this.finished || piece.byteLength === 0) return;
    this.bytes += piece.byteLength;
    if (this.framing === "none") return;
    if (this.framing === "chunked") {
      this.push(chunkSizeLine(piece.byteLength));
      this.push(piece);
      this.push(CRLF);
    } else this.push(piece);
    if (this.outBytes >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.finished && this.out.length === 0 && this.head === null) return;
    const { io } = this;
    if (io.signal.aborted) return;
    let parts = this.out;
    let total = this.outBytes;
    if (this.head !== null) {
      parts = [this.head, ...parts];
      total += this.head.byteLength;
      this.head = null;
    }
    this.out = [];
    this.outBytes = 0;
    if (parts.length === 0) return;
    if (parts.length === 1) io.write(parts[0]!);
    else if (total <= FLUSH_BYTES) io.write(concatBytes(parts));
    else for (const p of parts) io.write(p);
    if (io.queued() > 0 && !this.paused && !this.finished) {
      this.paused = true;
      this.body.pause();
      void io.drained().then(() => {
        this.paused = false;
        if (!this.finished && !io.signal.aborted) this.body.resume();
      });
    }
  }

  end(): void {
    if (this.finished) return;
    if (this.framing === "chunked") this.push(CHUNKED_END);
    this.flush();
    this.done("complete");
  }

  error(err: Error): void {
    if (this.finished) return;
    // What was read is written; the missing last chunk / short length tells the client.
    if (this.head === null) this.flush();
    this.done(err);
  }

  private push(piece: Uint8Array): void {
    this.out.push(piece);
    this.outBytes += piece.byteLength;
  }

  private done(end: PipeEnd): void {
    this.finished = true;
    this.io.signal.removeEventListener("abort", this.abort);
    this.result.resolve({ end, bytes: this.bytes, headWritten: this.head === null });
  }
}
