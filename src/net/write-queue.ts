/**
 * Backpressure-aware writes onto a Bun socket.
 *
 * Bun's `socket.write(buf)` may accept only part of `buf` (it returns the number of bytes
 * taken, or -1 when the socket is closed). The rest must be kept and written again from the
 * `drain` handler, and whoever produces the bytes should stop reading (`pause()`) until the
 * queue is empty. This module is that queue; tunnels, SOCKS5, MITM and the HTTP/1.1 client
 * all use it so the rule is implemented once.
 *
 * Queued chunks are subarrays of the caller's buffers (no copy). A caller that writes a
 * buffer holding a secret passes `onFlushed` and zeroes the buffer there: that callback runs
 * when every byte of that buffer has been handed to the kernel / TLS layer.
 */
export interface WritableSocketLike {
  write(data: Uint8Array): number;
}

export class WriteQueue {
  private readonly pending: Uint8Array[] = [];
  private readonly flushedCallbacks: Array<{ index: number; fn: () => void }> = [];
  private queuedBytes = 0;
  private written = 0; // chunks fully written since the queue was created

  /**
   * @param socket the socket to write to
   * @param onBackpressure called once when bytes start queueing (pause the source)
   * @param onDrained called once when the queue empties again (resume the source)
   */
  constructor(
    private readonly socket: WritableSocketLike,
    private readonly onBackpressure: () => void = () => {},
    private readonly onDrained: () => void = () => {},
  ) {}

  /** Bytes accepted by `write` but not yet taken by the socket. */
  get size(): number {
    return this.queuedBytes;
  }

  /**
   * Write `data` now, or queue what the socket did not take.
   * @returns false when the socket is closed (-1 from Bun), true otherwise.
   * `onFlushed` runs (synchronously or from a later `drain`) once all of `data` is written.
   */
  write(data: Uint8Array, onFlushed?: () => void): boolean {
    if (this.pending.length === 0) {
      const n = data.byteLength === 0 ? 0 : this.socket.write(data);
      if (n < 0) {
        onFlushed?.();
        return false;
      }
      if (n === data.byteLength) {
        onFlushed?.();
        return true;
      }
      const rest = data.subarray(n);
      this.pending.push(rest);
      this.queuedBytes += rest.byteLength;
      if (onFlushed) this.flushedCallbacks.push({ index: this.written + this.pending.length, fn: onFlushed });
      this.onBackpressure();
      return true;
    }
    this.pending.push(data);
    this.queuedBytes += data.byteLength;
    if (onFlushed) this.flushedCallbacks.push({ index: this.written + this.pending.length, fn: onFlushed });
    return true;
  }

  /** Call from the socket's `drain` handler. Returns true when the queue is empty. */
  drain(): boolean {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = this.socket.write(head);
      if (n < 0) {
        this.discard();
        return true;
      }
      if (n < head.byteLength) {
        this.pending[0] = head.subarray(n);
        this.queuedBytes -= n;
        return false;
      }
      this.pending.shift();
      this.queuedBytes -= head.byteLength;
      this.written++;
      this.runFlushed();
    }
    this.onDrained();
    return true;
  }

  /** Drop everything queued (socket closed); still runs the `onFlushed` callbacks so secrets get zeroed. */
  discard(): void {
    this.written += this.pending.length;
    this.pending.length = 0;
    this.queuedBytes = 0;
    this.runFlushed();
  }

  private runFlushed(): void {
    while (this.flushedCallbacks.length > 0 && this.flushedCallbacks[0]!.index <= this.written) {
      this.flushedCallbacks.shift()!.fn();
    }
  }
}
