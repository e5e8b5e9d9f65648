/**
 * The request side of the responses proxy's listener: the bounds it gives the shared strict
 * parser and chunked decoder (src/http1/server-request-head.ts, server-request-body.ts), the
 * head flags routing needs, and the body buffer for small bodies (up to 1 MiB with a
 * content-length; larger and chunked bodies stream, request-stream.ts, SPEC §1.5).
 */
import { createRequestBodyDecoder, type RequestBodyDecoder, type ChunkedLimits } from "../http1/server-request-body.ts";
import { fieldStrings, type BodyFraming, type HeadLimits, type RawRequestHead } from "../http1/server-request-head.ts";

/** Heads up to 64 KiB and 100 field lines; at most two empty lines before the request line. */
export const HEAD_LIMITS: HeadLimits = { maxHeadBytes: 64 * 1024, maxFields: 100, maxLeadingEmptyLines: 2 };
/** Chunk sizes of at most 8 hex digits; size and trailer lines up to 4 KiB, trailers up to 32 KiB. */
export const CHUNKED_LIMITS: ChunkedLimits = { maxSizeDigits: 8, maxLineBytes: 4096, maxTrailerBytes: 32 * 1024 };
/** Largest request body (as Bun.serve's default `maxRequestBodySize`); more → 413. */
export const MAX_BODY_BYTES = 128 * 1024 * 1024;

/**
 * A parsed head as the listener uses it: the fields stay byte ranges of `bytes` (a buffer
 * nobody reuses), forwarded as bytes and turned into strings only for a dump; the parser
 * already set the `expectContinue` / `upgrade` flags routing needs.
 */
export type IncomingHead = RawRequestHead;

/** The incoming field lines as `[name as sent, value]` strings (for `--dump-dir`; built on demand). */
export function incomingHeaders(head: IncomingHead): Array<[string, string]> {
  return fieldStrings(head.bytes, head.fields);
}

/** Whether a request with this framing carries body bytes. */
export function hasBody(framing: BodyFraming): boolean {
  return framing.kind === "chunked" || (framing.kind === "length" && framing.length > 0);
}

/** Outcome of {@link BodyCollector.feed}. */
export type CollectResult = { kind: "more" } | { kind: "done"; consumed: number } | { kind: "error"; status: 400 | 413 };

/**
 * Collects one request body (content-length or chunked) into one buffer, bounded by
 * `maxBytes` (MAX_BODY_BYTES). Content-length bodies get a buffer of their exact size (the
 * caller already refused a larger content-length with 413); chunked ones grow by doubling.
 */
export class BodyCollector {
  private buf: Uint8Array;
  private len = 0;
  private readonly decoder: RequestBodyDecoder | null;
  private tooLarge = false;
  private readonly append = (piece: Uint8Array) => {
    const need = this.len + piece.byteLength;
    if (need > this.maxBytes) {
      this.tooLarge = true;
      return;
    }
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.min(Math.max(need, this.buf.length * 2), this.maxBytes));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
    }
    this.buf.set(piece, this.len);
    this.len = need;
  };

  /**
   * @param framing a framing with a body (see `hasBody`); a content-length ≤ `maxBytes`
   * @param maxBytes bound of a chunked body (413 beyond it)
   */
  constructor(
    private readonly framing: BodyFraming,
    private readonly maxBytes = MAX_BODY_BYTES,
  ) {
    if (framing.kind === "length") {
      this.buf = new Uint8Array(framing.length);
      this.decoder = null;
    } else {
      this.buf = new Uint8Array(Math.min(16 * 1024, maxBytes));
      this.decoder = createRequestBodyDecoder(framing, CHUNKED_LIMITS);
    }
  }

  /** The body bytes collected so far (all of them once `feed` returned done). */
  get body(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /**
   * Feed bytes from the connection. `more`: all of `data` was body, send more; `done`: the
   * body ended after `consumed` bytes (the rest is the next request); `error`: 400 for bad
   * chunked framing, 413 for a body over `maxBytes`. After an error, feed no more.
   */
  feed(data: Uint8Array): CollectResult {
    if (!this.decoder) {
      const want = (this.framing as { length: number }).length - this.len;
      const n = Math.min(want, data.byteLength);
      this.buf.set(n === data.byteLength ? data : data.subarray(0, n), this.len);
      this.len += n;
      return n === want ? { kind: "done", consumed: n } : { kind: "more" };
    }
    const r = this.decoder.feed(data, this.append);
    if (this.tooLarge) return { kind: "error", status: 413 };
    if (!r.ok) return { kind: "error", status: 400 };
    return r.done ? { kind: "done", consumed: r.consumed } : { kind: "more" };
  }
}
