/**
 * The `/blocked` ring buffer (SPEC-network §7): the last 200 blocked requests, oldest first.
 * Reading drains it. It belongs to the process, not to a config, so it survives reloads.
 */
import type { BlockedEntry } from "./types.ts";

/** Default capacity of the `/blocked` buffer (SPEC-network §7). */
export const BLOCKED_CAPACITY = 200;

/** Ring buffer of blocked requests. */
export interface BlockRecorder {
  /** Append an entry; when full, the oldest entry is dropped. O(1). */
  push(entry: BlockedEntry): void;
  /** All entries, oldest first; empties the buffer. */
  drain(): BlockedEntry[];
  /** Number of entries held. */
  readonly size: number;
}

/**
 * Create a recorder holding at most `capacity` entries (default 200).
 * @throws RangeError when capacity is not a positive integer
 */
export function createRecorder(capacity = BLOCKED_CAPACITY): BlockRecorder {
  if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError(`invalid recorder capacity: ${capacity}`);
  // A fixed array used as a circular buffer: no shifting on push, no growth.
  let slots: Array<BlockedEntry | undefined> = new Array(capacity);
  let start = 0; // index of the oldest entry
  let count = 0;
  return {
    push(entry) {
      slots[(start + count) % capacity] = entry;
      if (count < capacity) count++;
      else start = (start + 1) % capacity;
    },
    drain() {
      const out: BlockedEntry[] = new Array(count);
      for (let i = 0; i < count; i++) out[i] = slots[(start + i) % capacity]!;
      slots = new Array(capacity);
      start = 0;
      count = 0;
      return out;
    },
    get size() {
      return count;
    },
  };
}
