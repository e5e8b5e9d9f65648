/**
 * Response-body decoders (RFC 9112 §6.3 length, §7.1 chunked with extensions and trailers,
 * close-delimited). They emit subarrays of the socket's chunks (no copy: Bun hands every
 * `data` callback a fresh buffer) and report how many input bytes they consumed; bytes after
 * the end of the message are left to the caller (they make the connection unusable).
 */
import { UpstreamError } from "./upstream-error.ts";
import type { BodyFraming } from "./client-response-head.ts";

/** Bound on one chunk-size line incl. extensions, and on the whole trailer section. */
export const MAX_CHUNK_LINE = 4096;
export const MAX_TRAILER_BYTES = 64 * 1024;

/** Receiver of decoded content as ranges of the input (no view is made of it). */
export interface RangeSink {
  piece(bytes: Uint8Array, start: number, end: number): void;
}

/** A decoder fed with raw socket bytes. */
export interface ResponseBodyDecoder {
  /**
   * As `push`, for `chunk[from..]`, reporting content as ranges of `chunk` (the first view of a
   * fresh socket chunk costs JavaScriptCore an ArrayBuffer; a consumer that copies needs none).
   * @returns the index in `chunk` where decoding stopped (less than its length only once `done`)
   */
  pushRange(chunk: Uint8Array, from: number, sink: RangeSink): number;
  /**
   * Decode `chunk`, calling `emit` for each piece of content.
   * @returns bytes of `chunk` consumed (less than its length only once `done`)
   * @throws UpstreamError kind "protocol" on malformed framing
   */
  push(chunk: Uint8Array, emit: (content: Uint8Array) => void): number;
  /** True once the message body is complete. */
  readonly done: boolean;
  /** The peer closed the connection: true when that ends the body (close-delimited), false when the body is cut short. */
  eof(): boolean;
}

function bad(msg: string): UpstreamError {
  return new UpstreamError("protocol", `invalid response body framing: ${msg}`);
}

/** `emit` of the view-based `push` as a RangeSink (one per decoder, reused across calls). */
class ViewSink implements RangeSink {
  emit: (content: Uint8Array) => void = () => {};
  piece(bytes: Uint8Array, start: number, end: number): void {
    this.emit(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
  }
}

class EmptyDecoder implements ResponseBodyDecoder {
  readonly done = true;
  push(): number {
    return 0;
  }
  pushRange(_chunk: Uint8Array, from: number): number {
    return from;
  }
  eof(): boolean {
    return true;
  }
}

class LengthDecoder implements ResponseBodyDecoder {
  constructor(private remaining: number) {}
  get done(): boolean {
    return this.remaining === 0;
  }
  push(chunk: Uint8Array, emit: (c: Uint8Array) => void): number {
    if (this.remaining === 0) return 0;
    const n = Math.min(this.remaining, chunk.length);
    this.remaining -= n;
    emit(n === chunk.length ? chunk : chunk.subarray(0, n));
    return n;
  }
  pushRange(chunk: Uint8Array, from: number, sink: RangeSink): number {
    if (this.remaining === 0 || from >= chunk.length) return from;
    const n = Math.min(this.remaining, chunk.length - from);
    this.remaining -= n;
    sink.piece(chunk, from, from + n);
    return from + n;
  }
  eof(): boolean {
    return this.remaining === 0;
  }
}

class CloseDecoder implements ResponseBodyDecoder {
  readonly done = false;
  push(chunk: Uint8Array, emit: (c: Uint8Array) => void): number {
    if (chunk.length > 0) emit(chunk);
    return chunk.length;
  }
  pushRange(chunk: Uint8Array, from: number, sink: RangeSink): number {
    if (from < chunk.length) sink.piece(chunk, from, chunk.length);
    return chunk.length;
  }
  eof(): boolean {
    return true;
  }
}

const enum S {
  Size, // reading hex digits
  Ext, // after the size: BWS / chunk-ext until CR
  SizeLf, // expecting LF of the size line
  Data,
  DataCr,
  DataLf,
  TrailerStart, // at the start of a trailer line (or the final empty line)
  TrailerLine, // inside a trailer field line
  TrailerLf, // expecting LF after a trailer field line's CR
  EndLf, // expecting the final LF
  Done,
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** RFC 9112 §7.1 chunked decoder; extensions are skipped, trailers read and dropped. */
class ChunkedDecoder implements ResponseBodyDecoder {
  private s = S.Size;
  private size = 0;
  private digits = 0;
  private lineLen = 0;
  private trailerBytes = 0;

  get done(): boolean {
    return this.s === S.Done;
  }

  eof(): boolean {
    return this.s === S.Done;
  }

  private views: ViewSink | null = null;

  push(chunk: Uint8Array, emit: (c: Uint8Array) => void): number {
    const v = (this.views ??= new ViewSink());
    v.emit = emit;
    return this.pushRange(chunk, 0, v);
  }

  pushRange(chunk: Uint8Array, from: number, sink: RangeSink): number {
    let i = from;
    const n = chunk.length;
    while (i < n) {
      switch (this.s) {
        case S.Data: {
          const take = Math.min(this.size, n - i);
          sink.piece(chunk, i, i + take);
          i += take;
          this.size -= take;
          if (this.size === 0) this.s = S.DataCr;
          break;
        }
        case S.Size: {
          const c = chunk[i]!;
          const v = hexVal(c);
          if (v >= 0) {
            // 13 hex digits keep the size a safe integer.
            if (++this.digits > 13) throw bad("chunk size too large");
            this.size = this.size * 16 + v;
            this.lineLen++;
            i++;
            break;
          }
          if (this.digits === 0) throw bad("missing chunk size");
          this.s = S.Ext;
          break;
        }
        case S.Ext: {
          const c = chunk[i]!;
          if (c === 0x0d) this.s = S.SizeLf;
          else if (c !== 0x09 && (c < 0x20 || c === 0x7f)) throw bad("bad byte in chunk extension");
          else if (this.lineLen === this.digits && c !== 0x3b && c !== 0x20 && c !== 0x09) throw bad("bad chunk size");
          if (++this.lineLen > MAX_CHUNK_LINE) throw bad("chunk size line too long");
          i++;
          break;
        }
        case S.SizeLf: {
          if (chunk[i] !== 0x0a) throw bad("bare CR");
          i++;
          this.digits = 0;
          this.lineLen = 0;
          if (this.size === 0) this.s = S.TrailerStart;
          else this.s = S.Data;
          break;
        }
        case S.DataCr:
          if (chunk[i] !== 0x0d) throw bad("missing CRLF after chunk data");
          i++;
          this.s = S.DataLf;
          break;
        case S.DataLf:
          if (chunk[i] !== 0x0a) throw bad("missing CRLF after chunk data");
          i++;
          this.s = S.Size;
          break;
        case S.TrailerStart: {
          const c = chunk[i]!;
          i++;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) throw bad("trailer section too large");
          if (c === 0x0d) this.s = S.EndLf;
          else if (c === 0x20 || c === 0x09) throw bad("obs-fold in trailer section");
          else if (c < 0x20 || c === 0x7f) throw bad("bad byte in trailer section");
          else this.s = S.TrailerLine;
          break;
        }
        case S.TrailerLine: {
          const c = chunk[i]!;
          i++;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) throw bad("trailer section too large");
          if (c === 0x0d) this.s = S.TrailerLf;
          else if (c !== 0x09 && (c < 0x20 || c === 0x7f)) throw bad("bad byte in trailer section");
          break;
        }
        case S.TrailerLf:
          if (chunk[i] !== 0x0a) throw bad("bare CR");
          i++;
          this.s = S.TrailerStart;
          break;
        case S.EndLf:
          if (chunk[i] !== 0x0a) throw bad("bare CR");
          i++;
          this.s = S.Done;
          return i;
        case S.Done:
          return i;
      }
    }
    return i;
  }
}

/** Create the decoder for a framing decided by `responseFraming`. */
export function createResponseBodyDecoder(framing: BodyFraming): ResponseBodyDecoder {
  switch (framing.kind) {
    case "none":
      return new EmptyDecoder();
    case "length":
      return framing.length === 0 ? new EmptyDecoder() : new LengthDecoder(framing.length);
    case "chunked":
      return new ChunkedDecoder();
    case "close":
      return new CloseDecoder();
  }
}
