/**
 * Request-body framing for the HTTP proxy listener (RFC 9112 §6.3, §7.1): an incremental
 * decoder for `content-length` and `chunked` bodies that hands out subarrays of the input
 * (no copies) and reports how many bytes belong to the body, so pipelined bytes after it are
 * kept; and the chunked encoder for responses re-framed towards HTTP/1.1 clients.
 *
 * Strict and bounded: chunk-size lines (with extensions) up to 4096 bytes, at most 12 hex
 * digits, CRLF only; trailer section up to 32 KiB, discarded (RFC 9112 §7.1.2 lets a
 * recipient drop trailers it does not understand).
 */
import type { BodyFraming } from "./head-parser.ts";

const CR = 13;
const LF = 10;
const MAX_SIZE_LINE = 4096;
const MAX_TRAILERS = 32 * 1024;

/** Result of one {@link BodyDecoder.feed} call. */
export type FeedResult =
  /** `consumed` bytes of the input were body framing/content; `done`: the body ended. */
  | { ok: true; consumed: number; done: boolean }
  | { ok: false; message: string };

/** Incremental body decoder for one request. */
export interface BodyDecoder {
  /**
   * Decode from `buf`; every content piece is passed to `onData` (a subarray of `buf`).
   * After `done`, bytes from `consumed` on belong to the next request.
   */
  feed(buf: Uint8Array, onData: (piece: Uint8Array) => void): FeedResult;
  /** Whether the whole body has been decoded. */
  readonly finished: boolean;
}

/** A decoder for `framing` (`none` is finished at once). */
export function createBodyDecoder(framing: BodyFraming): BodyDecoder {
  if (framing.kind === "chunked") return new ChunkedDecoder();
  return new LengthDecoder(framing.kind === "length" ? framing.length : 0);
}

class LengthDecoder implements BodyDecoder {
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

class ChunkedDecoder implements BodyDecoder {
  private st = St.Size;
  /** Bytes of the current size line / trailer section seen so far (bounds). */
  private lineLen = 0;
  private size = 0;
  private digits = 0;
  /** Inside a chunk extension (after `;`): only bounded, not interpreted. */
  private inExt = false;
  private sawCr = false;
  private remaining = 0;
  /** Trailer: length of the current trailer line (0 = at line start). */
  private trailerLine = 0;

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
          if (++this.lineLen > MAX_SIZE_LINE) return bad("chunk-size line too long");
          if (this.sawCr) {
            if (c !== LF) return bad("bare CR in chunk-size line");
            if (this.digits === 0) return bad("missing chunk size");
            this.sawCr = false;
            this.lineLen = 0;
            this.inExt = false;
            this.digits = 0;
            if (this.size === 0) {
              this.st = St.Trailer;
              this.trailerLine = 0;
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
          } else if (this.inExt) {
            if ((c < 0x20 && c !== 9) || c === 0x7f) return bad("invalid byte in chunk extension");
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 9) {
            if (this.digits === 0) return bad("missing chunk size");
            this.inExt = true;
          } else {
            const v = hexValue(c);
            if (v < 0) return bad("invalid chunk size");
            if (++this.digits > 12) return bad("chunk size too large");
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
          if (++this.lineLen > MAX_TRAILERS) return bad("trailer section too large");
          if (this.sawCr) {
            if (c !== LF) return bad("bare CR in trailer section");
            this.sawCr = false;
            if (this.trailerLine === 0) this.st = St.Done;
            this.trailerLine = 0;
          } else if (c === CR) {
            this.sawCr = true;
          } else if (c === LF) {
            return bad("bare LF in trailer section");
          } else {
            if ((c < 0x20 && c !== 9) || c === 0x7f) return bad("invalid byte in trailer section");
            this.trailerLine++;
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

/** `<size hex>\r\n<data>\r\n` in one buffer (one write, one copy of `data`). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const prefix = data.byteLength.toString(16);
  const out = new Uint8Array(prefix.length + 2 + data.byteLength + 2);
  for (let i = 0; i < prefix.length; i++) out[i] = prefix.charCodeAt(i);
  out[prefix.length] = CR;
  out[prefix.length + 1] = LF;
  out.set(data, prefix.length + 2);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/** The last-chunk and empty trailer section that end a chunked body. */
export const CHUNKED_END = new Uint8Array([0x30, CR, LF, CR, LF]);
