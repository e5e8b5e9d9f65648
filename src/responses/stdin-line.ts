/**
 * One line of a secret from a `read(2)`-like function into a caller's buffer (SPEC §1.3 and
 * §1.8): the shared loop of the API key reader and the OIDC request-token reader. The `read`
 * function is injected so short reads, EOF, EINTR and I/O errors are unit-tested.
 */
import { EINTR, type OsError } from "../hardening/libc.ts";

/**
 * One read into `dst` (at most `dst.byteLength` bytes): the count (0 = EOF) or an OS error.
 * Must not retry EINTR itself; the line reader does.
 */
export type ReadFn = (dst: Uint8Array) => number | OsError;

/** Outcome of {@link readLine}: bytes up to and including the first `\n` (or to EOF), a full buffer, or an error text. */
export type LineRead = { kind: "line"; length: number } | { kind: "full" } | { kind: "error"; message: string };

/**
 * Fill `dst` through `read` until the first `\n` (kept, at `length - 1`) or EOF. Bytes read
 * past the newline are left in `dst` for the caller to zero; no further read happens after
 * it (stdin is not drained). A buffer filled without a newline is `full`. EINTR is retried;
 * any other error, a throwing `read` or an impossible count is `error` with the OS text.
 */
export function readLine(read: ReadFn, dst: Uint8Array): LineRead {
  const capacity = dst.byteLength;
  let total = 0;
  // Each iteration either retries an EINTR (bounded), ends, or consumes ≥1 byte of the bounded capacity.
  for (let interrupts = 0; total < capacity; ) {
    const slice = dst.subarray(total);
    let n: number | OsError;
    try {
      n = read(slice);
    } catch (e) {
      return { kind: "error", message: e instanceof Error ? e.message : String(e) };
    }
    if (typeof n !== "number") {
      if (n.errno === EINTR && ++interrupts < 1_000_000) continue;
      return { kind: "error", message: n.message };
    }
    if (n === 0) break;
    if (n < 0 || n > slice.byteLength) return { kind: "error", message: `read returned an invalid count: ${n}` };
    const nl = slice.subarray(0, n).indexOf(0x0a);
    if (nl >= 0) return { kind: "line", length: total + nl + 1 };
    total += n;
  }
  return total === capacity ? { kind: "full" } : { kind: "line", length: total };
}
