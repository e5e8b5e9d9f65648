/**
 * The one failsafe for waits in tests: `within(promise, ms)` settles like `promise`, or
 * rejects with "timed out after <ms> ms waiting for <what>" once `ms` pass, so a regression
 * fails one test with a message instead of hanging until the per-test timeout. The timer is
 * cleared as soon as `promise` settles. A bound on an event, never a way to wait.
 */

/** Default bound for one wait on a local event (a loaded 2-core CI machine included). */
export const WAIT_MS = 5_000;

/** `promise`, or a rejection naming `what` after `ms` milliseconds. */
export function within<T>(promise: Promise<T>, ms: number = WAIT_MS, what = "an event"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failsafe = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, failsafe]).finally(() => clearTimeout(timer));
}
