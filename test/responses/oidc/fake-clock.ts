/**
 * A hand-driven Clock for lifecycle tests: `advance(ms)` moves time and runs the timers that
 * became due, in order. Bounded: at most 10,000 timers per advance.
 */
import type { Clock } from "../../../src/responses/oidc/token-source.ts";

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 1_800_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Time (ms from now) of the next pending timer, or null. */
  nextIn(): number | null {
    let min: number | null = null;
    for (const t of this.timers.values()) if (min === null || t.at < min) min = t.at;
    return min === null ? null : min - this.t;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (let i = 0; i < 10_000; i++) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}
