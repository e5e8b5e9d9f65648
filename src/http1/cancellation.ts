/**
 * A light cancellation source for hot paths: the AbortLike part of AbortSignal (types.ts)
 * without an EventTarget, an AbortController and an event object per request. Listeners
 * run once, in order, on the first `abort()`; listeners added after it never run (as with
 * an AbortSignal `{ once: true }` listener added to an aborted signal).
 */
import type { AbortLike } from "./types.ts";

export class Cancellation implements AbortLike {
  private _aborted = false;
  /** The usual single listener lives in `first`; an array only for more (no allocation per request). */
  private first: (() => void) | null = null;
  private listeners: Array<() => void> | null = null;

  get aborted(): boolean {
    return this._aborted;
  }

  addEventListener(_type: "abort", listener: () => void): void {
    if (this._aborted) return;
    if (this.first === null && this.listeners === null) this.first = listener;
    else {
      const l = (this.listeners ??= []);
      if (this.first !== null) {
        l.push(this.first);
        this.first = null;
      }
      l.push(listener);
    }
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    if (this.first === listener) {
      this.first = null;
      return;
    }
    const l = this.listeners;
    if (!l) return;
    const i = l.indexOf(listener);
    if (i >= 0) l.splice(i, 1);
  }

  /** Abort: run every listener once, in the order added (a throwing listener does not stop the others). */
  abort(): void {
    if (this._aborted) return;
    this._aborted = true;
    const l = this.listeners ?? (this.first !== null ? [this.first] : null);
    this.listeners = null;
    this.first = null;
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
