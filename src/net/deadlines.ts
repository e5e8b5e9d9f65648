/**
 * Per-connection deadlines checked by one periodic sweep (SPEC-network §12: head timeout,
 * idle keep-alive, TLS handshake timeout). One timer per listener instead of one per
 * connection: setting a deadline is a field write, which keeps the per-request hot path free
 * of timer churn; the sweep costs O(open connections) every `tickMs`, and a deadline fires at
 * most one tick late.
 */

/** Something with a deadline: `performance.now()` milliseconds, `Infinity` for none. */
export interface HasDeadline {
  deadline: number;
}

/** A running sweep; `stop()` clears its timer. */
export interface DeadlineSweep {
  stop(): void;
}

/**
 * Every `tickMs`, call `expire(item)` for each item of `items` whose deadline has passed (the
 * item's deadline is set to Infinity first, so `expire` runs once unless it sets a new one).
 * The timer is unref'd: it never keeps the process alive. An exception from `expire` is
 * passed to `onFault` and the sweep goes on.
 */
export function startDeadlineSweep<T extends HasDeadline>(opts: {
  items: Iterable<T>;
  tickMs: number;
  expire(item: T): void;
  onFault?(err: unknown): void;
}): DeadlineSweep {
  const timer = setInterval(() => {
    const now = performance.now();
    for (const item of opts.items) {
      if (item.deadline > now) continue;
      item.deadline = Infinity;
      try {
        opts.expire(item);
      } catch (err) {
        opts.onFault?.(err);
      }
    }
  }, opts.tickMs);
  timer.unref?.();
  return { stop: () => clearInterval(timer) };
}

/** A sweep tick for these timeouts: a quarter of the shortest, between 10 ms and 1 s. */
export function sweepTickMs(...timeoutsMs: number[]): number {
  return Math.min(1000, Math.max(10, Math.floor(Math.min(...timeoutsMs) / 4)));
}
