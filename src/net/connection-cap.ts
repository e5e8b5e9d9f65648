/**
 * The connection cap of SPEC-network §12 (`max_connections`; the responses proxy has the same
 * cap): past it a newly accepted client connection is closed at once, counted, and a warning
 * is logged at most once a minute. The cap never exceeds the process's descriptor limit less
 * a reserve (each proxied connection needs a second descriptor for its upstream, and the
 * process needs a few for files, DNS and the admin API).
 */

/** Descriptors kept free below RLIMIT_NOFILE (SPEC-network §12). */
export const DESCRIPTOR_RESERVE = 64;
/** Default `max_connections` (SPEC-network §12). */
export const DEFAULT_MAX_CONNECTIONS = 8192;
/** At most one "connection refused" warning per this many ms. */
const WARN_EVERY_MS = 60_000;

/**
 * The effective cap: `wanted`, but at most `(fdLimit - DESCRIPTOR_RESERVE) / 2` when the
 * descriptor limit is known (two descriptors per proxied connection), and at least 1.
 */
export function effectiveMaxConnections(wanted: number, fdLimit: number | null): number {
  if (fdLimit === null || !Number.isFinite(fdLimit)) return Math.max(1, wanted);
  return Math.max(1, Math.min(wanted, Math.floor((fdLimit - DESCRIPTOR_RESERVE) / 2)));
}

/** A cap shared by listeners: `admit()` on accept, `release()` on close. */
export interface ConnectionCap {
  readonly max: number;
  readonly open: number;
  /** Connections refused so far. */
  readonly refused: number;
  /** Take a slot; false (and counted) when the cap is reached: close the socket at once. */
  admit(): boolean;
  release(): void;
}

/**
 * Create a cap of `max` connections. `warn` gets one line at most once a minute while
 * connections are being refused; `onRefused` runs for each refusal (a metric).
 */
export function createConnectionCap(opts: { max: number; warn(line: string): void; onRefused?(): void; now?: () => number }): ConnectionCap {
  const now = opts.now ?? (() => performance.now());
  let open = 0;
  let refused = 0;
  let lastWarn = -Infinity;
  let sinceWarn = 0;
  return {
    max: opts.max,
    get open() {
      return open;
    },
    get refused() {
      return refused;
    },
    admit() {
      if (open < opts.max) {
        open++;
        return true;
      }
      refused++;
      sinceWarn++;
      opts.onRefused?.();
      const t = now();
      if (t - lastWarn >= WARN_EVERY_MS) {
        opts.warn(`connection limit reached (max_connections=${opts.max}): refused ${sinceWarn} connection(s) since the last warning`);
        lastWarn = t;
        sinceWarn = 0;
      }
      return false;
    },
    release() {
      if (open > 0) open--;
    },
  };
}
