/**
 * A light cancellation source for hot paths: the AbortLike part of AbortSignal (types.ts)
 * without an EventTarget, an AbortController and an event object per request. Listeners
 * run once, in order, on the first `abort()`; listeners added after it never run (as with
 * an AbortSignal `{ once: true }` listener added to an aborted signal).
 */
import type { AbortLike } from "./types.ts";

export class Cancellation implements AbortLike {
  private _aborted = false;
  private listeners: Array<() => void> | null = null;

  get aborted(): boolean {
    return this._aborted;
  }

  addEventListener(_type: "abort", listener: () => void): void {
    if (!this._aborted) (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const l = this.listeners;
    if (!l) return;
    const i = l.indexOf(listener);
    if (i >= 0) l.splice(i, 1);
  }

  /** Abort: run every listener once (a throwing listener does not stop the others). */
  abort(): void {
    if (this._aborted) return;
    this._aborted = true;
    const l = this.listeners;
    this.listeners = null;
    if (!l) return;
    for (const fn of l) {
      try {
        fn();
      } catch {
        // A listener's failure is its own; the rest still learn about the abort.
      }
    }
  }
}
