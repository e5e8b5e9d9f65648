/**
 * Unconsumed bytes of a client connection (a partial request head, pipelined requests).
 * The first chunk is kept as is (no copy); later chunks are appended into a buffer that
 * grows by doubling, so a head arriving one byte at a time costs O(n) copying, not O(n²).
 */
export class Inbox {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;
  /** Whether `buf` is a caller's chunk we must not write into. */
  private borrowed = false;

  /** Bytes held. */
  get size(): number {
    return this.end - this.start;
  }

  /** The held bytes (a view, valid until the next `append`/`consume`). */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /** Add `chunk` (kept by reference when the inbox is empty). */
  append(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    if (this.size === 0) {
      this.buf = chunk;
      this.start = 0;
      this.end = chunk.byteLength;
      this.borrowed = true;
      return;
    }
    const need = this.size + chunk.byteLength;
    if (this.borrowed || this.end + chunk.byteLength > this.buf.byteLength) {
      const cap = Math.max(need, this.borrowed ? need : this.buf.byteLength * 2, 4096);
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(this.start, this.end), 0);
      this.buf = next;
      this.start = 0;
      this.end = need - chunk.byteLength;
      this.borrowed = false;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.byteLength;
  }

  /** Drop the first `n` bytes. */
  consume(n: number): void {
    this.start += n;
    if (this.start >= this.end) this.clear();
  }

  /** Take every held byte out (a view) and empty the inbox. */
  take(): Uint8Array {
    const v = this.view();
    this.clear();
    return v;
  }

  clear(): void {
    this.buf = new Uint8Array(0);
    this.start = 0;
    this.end = 0;
    this.borrowed = false;
  }
}
