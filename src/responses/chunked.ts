/**
 * Incremental decoder of a chunked request body (RFC 9112 §7.1) into one bounded buffer.
 * Bytes may arrive in any split (one at a time included). Chunk extensions are ignored;
 * trailer fields are skipped (bounded like a head).
 */

/** Decoder outcome of one `push`. */
export type ChunkedResult =
  | { kind: "more" }
  | { kind: "done"; body: Uint8Array; rest: Uint8Array }
  | { kind: "error"; status: 400 | 413; message: string };

const MAX_LINE = 4096;

/** Decodes one chunked body; `maxBody` bounds the decoded size (413 beyond it). */
export class ChunkedDecoder {
  private out: Uint8Array;
  private outLen = 0;
  private state: "size" | "data" | "data-crlf" | "trailer" = "size";
  private line = "";
  private remaining = 0;

  constructor(private readonly maxBody: number) {
    this.out = new Uint8Array(16 * 1024);
  }

  /** Feed bytes; returns `done` with the body and any bytes after the message. */
  push(data: Uint8Array): ChunkedResult {
    let i = 0;
    while (i < data.length) {
      switch (this.state) {
        case "size":
        case "trailer": {
          const nl = data.indexOf(10, i);
          const stop = nl < 0 ? data.length : nl + 1;
          // latin1 keeps one char per byte, so the bound and the CR check are exact.
          this.line += Buffer.from(data.buffer, data.byteOffset + i, stop - i).toString("latin1");
          i = stop;
          if (this.line.length > MAX_LINE) return { kind: "error", status: 400, message: "chunk line too long" };
          if (nl < 0) return { kind: "more" };
          if (!this.line.endsWith("\r\n")) return { kind: "error", status: 400, message: "bare LF in chunked body" };
          const line = this.line.slice(0, -2);
          this.line = "";
          if (this.state === "trailer") {
            if (line === "") return { kind: "done", body: this.out.subarray(0, this.outLen), rest: data.subarray(i) };
            continue;
          }
          const semi = line.indexOf(";");
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return { kind: "error", status: 400, message: "invalid chunk size" };
          const size = parseInt(hex, 16);
          if (size === 0) {
            this.state = "trailer";
            continue;
          }
          if (this.outLen + size > this.maxBody) return { kind: "error", status: 413, message: "request body too large" };
          this.ensure(this.outLen + size);
          this.remaining = size;
          this.state = "data";
          break;
        }
        case "data": {
          const n = Math.min(this.remaining, data.length - i);
          this.out.set(data.subarray(i, i + n), this.outLen);
          this.outLen += n;
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) {
            this.state = "data-crlf";
            this.line = "";
          }
          break;
        }
        case "data-crlf": {
          this.line += String.fromCharCode(data[i]!);
          i++;
          if (this.line.length === 2) {
            if (this.line !== "\r\n") return { kind: "error", status: 400, message: "missing CRLF after chunk data" };
            this.line = "";
            this.state = "size";
          }
          break;
        }
      }
    }
    return { kind: "more" };
  }

  private ensure(size: number): void {
    if (size <= this.out.length) return;
    const next = new Uint8Array(Math.min(Math.max(size, this.out.length * 2), this.maxBody));
    next.set(this.out.subarray(0, this.outLen));
    this.out = next;
  }
}
