/**
 * A decrypted request body on its way upstream, with backpressure towards the client.
 *
 * A Content-Length body up to 1 MiB is collected and sent as bytes (a byte body is what the
 * HTTP/1.1 client may replay once when a pooled connection turns out closed); larger or
 * chunked bodies stream. Either way the origin sees the client's framing: the caller hands a
 * streamed Content-Length body to the client with `bodyLength`, a chunked one goes chunked.
 * Streaming buffers at most 256 KiB before asking the reader to pause the client.
 */

/** Largest Content-Length body collected in memory. */
export const MAX_BUFFERED_BODY = 1024 * 1024;
const STREAM_HIGH_WATER = 256 * 1024;

/** Sink for decoded body content. */
export interface RequestBody {
  /** Content bytes (decoded from the client's framing). */
  push(chunk: Uint8Array): void;
  /** The body is complete. */
  end(): void;
  /** The client went away or sent bad framing. */
  fail(err: Error): void;
  /** True when the reader should stop reading the client until `onWant` fires. */
  readonly full: boolean;
  /** Called when buffered content was consumed and reading may resume. */
  onWant(fn: () => void): void;
  /** What to hand the HTTP/1.1 client: bytes (collected) or a stream. Rejects on `fail` (collected only). */
  body(): Promise<Uint8Array | ReadableStream<Uint8Array>>;
}

/** Create the sink for a request body framed as `framing`. */
export function createRequestBody(
  framing: { kind: "length"; length: number } | { kind: "chunked" } | { kind: "none" },
): RequestBody {
  if (framing.kind === "length" && framing.length <= MAX_BUFFERED_BODY) return collected(framing.length);
  return streamed();
}

function collected(length: number): RequestBody {
  // Allocated on the first content byte, not when the head arrives: a head alone (perhaps
  // about to be blocked) costs no megabyte.
  let bytes: Uint8Array | null = null;
  let filled = 0;
  const done = Promise.withResolvers<Uint8Array>();
  done.promise.catch(() => {}); // a failure before body() is asked for is not unhandled
  return {
    push(chunk) {
      bytes ??= new Uint8Array(length);
      // The decoder never emits past Content-Length, so this cannot overflow.
      bytes.set(chunk, filled);
      filled += chunk.byteLength;
    },
    end: () => done.resolve(bytes ?? new Uint8Array(0)),
    fail: (err) => done.reject(err),
    full: false,
    onWant() {},
    body: () => done.promise,
  };
}

function streamed(): RequestBody {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  let want: () => void = () => {};
  let finished = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        ctrl = c;
      },
      pull() {
        want();
      },
    },
    { highWaterMark: STREAM_HIGH_WATER, size: (c) => c?.byteLength ?? 0 },
  );
  return {
    push(chunk) {
      if (!finished) ctrl.enqueue(chunk);
    },
    end() {
      if (finished) return;
      finished = true;
      ctrl.close();
    },
    fail(err) {
      if (finished) return;
      finished = true;
      ctrl.error(err);
    },
    get full() {
      return !finished && (ctrl.desiredSize ?? 0) <= 0;
    },
    onWant(fn) {
      want = fn;
    },
    body: () => Promise.resolve(stream),
  };
}
