/**
 * Raise the soft RLIMIT_NOFILE to the hard limit at start (SPEC-network §12, both
 * executables): distributions start services with a soft limit of 1024, which a proxy with
 * two descriptors per connection exhausts at a few hundred clients.
 */
import { loadLibc, type Libc } from "./libc.ts";

/**
 * Raise the limit; returns the soft limit now in force (Infinity when unlimited), or null
 * when it can't be known (no libc on this OS, or the call failed: `onError` gets the text).
 */
export function raiseDescriptorLimit(onError?: (message: string) => void, libc: Libc | null = loadLibc()): number | null {
  if (!libc) return null;
  const r = libc.raiseNoFileLimit();
  if ("errno" in r) {
    onError?.(`cannot raise RLIMIT_NOFILE: ${r.message}`);
    return null;
  }
  return r.soft;
}
