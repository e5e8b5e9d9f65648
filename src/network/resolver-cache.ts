/**
 * A short-lived cache in front of the system resolver (SPEC-network §3.3 step 6).
 *
 * Why: every request to a name is judged on its own, and each judgement resolved the name
 * again; `getaddrinfo` runs on Bun's thread pool (a thread hand-off, /etc/hosts and
 * resolv.conf read again), which `npm run bench` measured as most of the latency a MITM
 * keep-alive request added (~1.5 ms at 8 clients).
 *
 * Safety: the cached answers are still checked by the policy on every request (a private
 * answer is still `not_allowed_local`), and the dialer still dials only the addresses that
 * were checked, so the checker and the dialer can never see different answers (what DNS
 * rebinding needs). Failures are never cached; answers live at most `ttlMs`; concurrent
 * look-ups of one name share one `getaddrinfo`; at most `maxEntries` names are kept.
 */
import type { Resolver } from "./policy.ts";

/** Options of {@link cachingResolver}. */
export interface ResolverCacheOptions {
  /** How long an answer is reused, ms (default 5000). 0 disables the cache. */
  ttlMs?: number;
  /** Most names kept; the oldest is dropped first (default 1024). */
  maxEntries?: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

/**
 * Wrap `inner` so that a successful answer for a name is reused for `ttlMs` and concurrent
 * look-ups share one call. Rejections pass through and are not remembered.
 */
export function cachingResolver(inner: Resolver, opts: ResolverCacheOptions = {}): Resolver {
  const ttlMs = opts.ttlMs ?? 5000;
  const maxEntries = Math.max(1, opts.maxEntries ?? 1024);
  const now = opts.now ?? (() => performance.now());
  if (ttlMs <= 0) return inner;
  const answers = new Map<string, { addresses: string[]; expires: number }>();
  const inFlight = new Map<string, Promise<string[]>>();
  return (host: string) => {
    const hit = answers.get(host);
    if (hit && hit.expires > now()) return Promise.resolve([...hit.addresses]);
    if (hit) answers.delete(host);
    const pending = inFlight.get(host);
    if (pending) return pending.then((a) => [...a]);
    const lookup = inner(host).then(
      (addresses) => {
        inFlight.delete(host);
        if (answers.size >= maxEntries) answers.delete(answers.keys().next().value!);
        answers.set(host, { addresses: [...addresses], expires: now() + ttlMs });
        return addresses;
      },
      (err: unknown) => {
        inFlight.delete(host);
        throw err;
      },
    );
    inFlight.set(host, lookup);
    return lookup.then((a) => [...a]);
  };
}
