/**
 * Bounded LRU cache of issued leaf certificates, keyed by host, with per-host dedupe of
 * concurrent issuance (SPEC-network §6: "issued certs cached per host (LRU)").
 *
 * Issuance itself is synchronous and short (~0.5 ms); the only wait is the process leaf key,
 * generated asynchronously once. Entries are re-issued a day before they expire so a
 * long-running proxy never serves an expired leaf.
 */
import type { LeafCert } from "./leaf.ts";

const REFRESH_MARGIN_MS = 24 * 60 * 60 * 1000;

/** A per-host certificate source. */
export interface CertCache {
  /**
   * The leaf for `host`: cached, or issued now (concurrent callers for one host share one
   * issuance). Rejects when issuance fails (the failure is not cached).
   */
  get(host: string): Promise<LeafCert>;
  /** The cached, still-fresh leaf for `host`, synchronously, or null (the fast path). */
  peek(host: string): LeafCert | null;
  /** Number of cached leaves. */
  readonly size: number;
  /** Drop every entry. */
  clear(): void;
}

/**
 * Create a cache of at most `max` leaves (default 1000) over `issue`, which may be sync or
 * async. `onIssued` is called once per certificate actually issued.
 */
export function createCertCache(opts: {
  issue: (host: string) => LeafCert | Promise<LeafCert>;
  max?: number;
  onIssued?: (host: string) => void;
  now?: () => number;
}): CertCache {
  const max = Math.max(1, opts.max ?? 1000);
  const now = opts.now ?? Date.now;
  // Map iteration order is insertion order: re-inserting on hit makes the first key the LRU.
  const entries = new Map<string, LeafCert>();
  const pending = new Map<string, Promise<LeafCert>>();

  const remember = (host: string, leaf: LeafCert) => {
    entries.delete(host);
    entries.set(host, leaf);
    while (entries.size > max) entries.delete(entries.keys().next().value!);
  };

  const peek = (host: string): LeafCert | null => {
    const hit = entries.get(host);
    if (!hit || hit.notAfter.getTime() - now() <= REFRESH_MARGIN_MS) return null;
    entries.delete(host);
    entries.set(host, hit);
    return hit;
  };

  return {
    peek,
    get(host) {
      const hit = peek(host);
      if (hit) return Promise.resolve(hit);
      const inflight = pending.get(host);
      if (inflight) return inflight;
      const p = (async () => {
        try {
          // Deferred a microtask so a synchronous throw still finds `pending` set (and cleans it).
          const leaf = await Promise.resolve().then(() => opts.issue(host));
          opts.onIssued?.(host);
          remember(host, leaf);
          return leaf;
        } finally {
          pending.delete(host);
        }
      })();
      pending.set(host, p);
      return p;
    },
    get size() {
      return entries.size;
    },
    clear() {
      entries.clear();
    },
  };
}
