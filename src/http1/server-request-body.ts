/**
 * Request-body framing for the servers of both products (RFC 9112 §6.3, §7.1): an incremental
 * decoder for `content-length` and `chunked` bodies that hands out subarrays of the input (no
 * copies) and reports how many bytes belong to the body, so pipelined bytes after it are kept.
 * (Response bodies are decoded by body-reader.ts, the client side.)
 *
 * Strict and bounded (bounds are parameters, see ChunkedLimits): CRLF only (a bare CR or LF
 * is an error); chunk-size = 1*HEXDIG with at most `maxSizeDigits` digits, no whitespace
 * before it; after it only BWS then `;` chunk-ext or CRLF (RFC 9112 §7.1.1); chunk
 * extensions are bounded with the size line (`maxLineBytes`), may hold no CTL but HTAB, and
 * are not interpreted; trailer fields may hold no CTL but HTAB, each line at most
 * `maxLineBytes`, the section at most `maxTrailerBytes`, and are discarded (RFC 9112 §7.1.2
 * lets a recipient drop trailers it does not understand).
 */
import type { BodyFraming } from "./server-request-head.ts";

const CR = 13;
const LF = 10;

/** Bounds of the chunked decoder. */
export interface ChunkedLimits {
  /** Most hex digits of a chunk size, default 12 (2^48 − 1 bytes, a safe integer). */
  maxSizeDigits?: number;
  /** Longest chunk-size line (with extensions) and trailer line, in bytes, default 4096. */
  maxLineBytes?: number;
  /** Largest trailer section in bytes, default 32768. */
  maxTrailerBytes?: number;
}

/** Result of one {@link RequestBodyDecoder.feed} call. */
export type FeedResult =
  /** `consumed` bytes of the input were body framing/content; `done`: the body ended. */
  | { ok: true; consumed: number; done: boolean }
  | { ok: false; message: string };

/** Incremental body decoder for one request. */
export interface RequestBodyDecoder {
  /**
   * Decode from `buf`; every content piece is passed to `onData` (a subarray of `buf`).
   * After `done`, bytes from `consumed` on belong to the next request. After an error the
   * decoder must not be fed again.
   */
  feed(buf: Uint8Array, onData: (piece: Uint8Array) => void): FeedResult;
  /** Whether the whole body has been decoded. */
  readonly finished: boolean;
}

/** A decoder for `framing` (`none` and `length` 0 are finished at once). */
export function createRequestBodyDecoder(framing: BodyFraming, limits?: ChunkedLimits): RequestBodyDecoder {
  if (framing.kind === "chunked") return new ChunkedDecoder(limits);
  return new LengthDecoder(framing.kind === "length" ? framing.length : 0);
}

class LengthDecoder implements RequestBodyDecoder {
  constructor(private remaining: number) {}
  get finished() {
    return this.remaining === 0;
  }
  feed(buf: Uint8Array, onData: (piece: Uint8Array) => void): FeedResult {
    const n = Math.min(this.remaining, buf.byteLength);
    if (n > 0) {
      this.remaining -= n;
      onData(n === buf.byteLength ? buf : buf.subarray(0, n));
    }
    return { ok: true, consumed: n, done: this.remaining === 0 };
  }
}

const enum St {
  Size,
  Data,
  DataCrlf,
  Trailer,
  Done,
}

/** Where in a chunk-size line the decoder is. */
const enum Line {
  Digits,
  /** After the digits: BWS, then `;` or CR. */
  AfterDigits,
  Ext,
}

class ChunkedDecoder implements RequestBodyDecoder {
  private readonly maxDigits: number;
  private readonly maxLine: number;
  private readonly maxTrailers: number;
  private st = St.Size;
  /** Bytes of the current size line / trailer line seen so far (bounds). */
  private lineLen = 0;
  private trailerBytes = 0;
  private size = 0;
  private digits = 0;
  private line = Line.Digits;
  private sawCr = false;
  private remaining = 0;

  constructor(limits?: ChunkedLimits) {
    this.maxDigits = limits?.maxSizeDigits ?? 12;
    this.maxLine = limits?.maxLineBytes ?? 4096;
    this.maxTrailers = limits?.maxTrailerBytes ?? 32 * 1024;
  }

  get finished() {
    return this.st === St.Done;
  }

  feed(buf: Uint8Array, onData: (piece: Uint8Array) => void): FeedResult {
    const len = buf.byteLength;
    let p = 0;
    while (p < len && this.st !== St.Done) {
      switch (this.st) {
        case St.Size: {
          const c = buf[p++]!;
          if (++this.lineLen > this.maxLine) return bad("chunk-size line too long");
          if (this.sawCr) {
            if (c !== LF) return bad("bare CR in chunk-size line");
            if (this.digits === 0) return bad("missing chunk size");
            this.sawCr = false;
            this.lineLen = 0;
            this.line = Line.Digits;
            this.digits = 0;
            if (this.size === 0) {
              this.st = St.Trailer;
            } else {
              this.remaining = this.size;
              this.st = St.Data;
            }
            this.size = 0;
            break;
          }
          if (c === CR) {
            this.sawCr = true;
          } else if (c === LF) {
            return bad("bare LF in chunk-size line");
          } else if (this.line === Line.Ext) {
            if ((c < 0x20 && c !== 9) || c === 0x7f) return bad("invalid byte in chunk extension");
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 9) {
            if (this.digits === 0) return bad("missing chunk size");
            this.line = c === 0x3b ? Line.Ext : Line.AfterDigits;
          } else if (this.line === Line.AfterDigits) {
            return bad("invalid chunk size");
          } else {
            const v = hexValue(c);
            if (v < 0) return bad("invalid chunk size");
            if (++this.digits > this.maxDigits) return bad("chunk size too large");
            this.size = this.size * 16 + v;
          }
          break;
        }
        case St.Data: {
          const n = Math.min(this.remaining, len - p);
          onData(p === 0 && n === len ? buf : buf.subarray(p, p + n));
          p += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.st = St.DataCrlf;
            this.sawCr = false;
          }
          break;
        }
        case St.DataCrlf: {
          const c = buf[p++]!;
          if (!this.sawCr) {
            if (c !== CR) return bad("chunk data not followed by CRLF");
            this.sawCr = true;
          } else {
            if (c !== LF) return bad("chunk data not followed by CRLF");
            this.sawCr = false;
            this.st = St.Size;
          }
          break;
        }
        case St.Trailer: {
          const c = buf[p++]!;
          if (++this.trailerBytes > this.maxTrailers) return bad("trailer section too large");
          if (this.sawCr) {
            if (c !== LF) return bad("bare CR in trailer section");
            this.sawCr = false;
            if (this.lineLen === 0) this.st = St.Done;
            this.lineLen = 0;
          } else if (c === CR) {
            this.sawCr = true;
          } else if (c === LF) {
            return bad("bare LF in trailer section");
          } else {
            if ((c < 0x20 && c !== 9) || c === 0x7f) return bad("invalid byte in trailer section");
            if (++this.lineLen > this.maxLine) return bad("trailer line too long");
          }
          break;
        }
      }
    }
    return { ok: true, consumed: p, done: this.st === St.Done };
  }
}

function bad(message: string): FeedResult {
  return { ok: false, message };
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
