/**
 * Holding the key (SPEC §1.3 "Holding it"): `Bearer <key>` lives in one mmapped, mlocked,
 * MADV_DONTDUMP page outside the JS heap and is exposed as a zero-copy `Uint8Array` view.
 *
 * The read buffer is a second locked page, so the key bytes never enter the JS heap at
 * all: read(2) writes into native memory, the value is copied page-to-page, and the read
 * page is zeroed and unmapped right after.
 *
 * Fallback where there is no libc (Windows): the buffers are ordinary `Uint8Array`s (their
 * backing store is still outside the garbage-collected object heap, but not locked) and
 * stdin is read with `fs.readSync(0)`, which is unbuffered on Bun.
 */
import { readSync } from "node:fs";
import type { Libc, LockedPages, OsError } from "../hardening/libc.ts";
import { KEY_BUFFER_SIZE, readAuthHeader, type ReadFn } from "./key-reader.ts";

/** The held `Bearer <key>` value. */
export interface LockedKey {
  /** `Bearer <key>` bytes; a view onto locked memory. Never turn it into a string. */
  readonly value: Uint8Array;
  /** mlock(2) succeeded on the page holding the value. */
  readonly locked: boolean;
  /** Zero and release the memory. */
  dispose(): void;
}

/**
 * `read(2)` on `fd` via libc. EINTR is retried by the key reader; EAGAIN (a parent left the
 * pipe non-blocking) waits with poll(2) and reads again, so the key is still read whole.
 */
export function libcReader(libc: Pick<Libc, "read" | "waitReadable" | "EAGAIN">, fd = 0): ReadFn {
  return (dst) => {
    for (let attempt = 0; ; attempt++) {
      const r = libc.read(fd, dst);
      if (typeof r === "number" || r.errno !== libc.EAGAIN || attempt >= 1_000_000) return r;
      const err = libc.waitReadable(fd);
      if (err) return err;
    }
  };
}

/**
 * `size` bytes of secret storage: locked pages through `libc`, or (no libc: Windows) an
 * ordinary buffer with the same `LockedPages` surface (`locked`/`dontDump` false), zeroed by
 * `free()`. For every secret the responses proxy holds (API key, OIDC tokens).
 */
export function allocSecretPages(libc: Libc | null, size: number): LockedPages {
  if (libc) return libc.allocLockedPages(size);
  const view = new Uint8Array(Math.max(size, 1));
  return { view, locked: false, dontDump: false, free: () => view.fill(0) };
}

/** The default stdin reader: libc `read(2)` on fd 0, or `fs.readSync(0)` without libc. */
export function stdinReader(libc: Libc | null): ReadFn {
  return libc ? libcReader(libc) : fallbackReader();
}

function fallbackReader(fd = 0): ReadFn {
  return (dst): number | OsError => {
    try {
      return readSync(fd, dst, 0, dst.byteLength, null);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "EOF") return 0;
      return { errno: typeof err.errno === "number" ? Math.abs(err.errno) : -1, message: err.message };
    }
  };
}

/**
 * Read the key with `read` (default: stdin) per SPEC §1.3 and move it into locked memory.
 * @throws KeyReadError with the exact SPEC message; all buffers are zeroed first.
 */
export function readLockedKey(libc: Libc | null, read?: ReadFn): LockedKey {
  const reader = read ?? (libc ? libcReader(libc) : fallbackReader());
  if (!libc) {
    const buf = new Uint8Array(KEY_BUFFER_SIZE);
    const len = readAuthHeader(reader, buf);
    const value = buf.slice(0, len);
    buf.fill(0);
    return { value, locked: false, dispose: () => value.fill(0) };
  }
  const readPages: LockedPages = libc.allocLockedPages(KEY_BUFFER_SIZE);
  let len: number;
  try {
    len = readAuthHeader(reader, readPages.view.subarray(0, KEY_BUFFER_SIZE));
  } catch (e) {
    // The reader already zeroed the buffer; free() zeroes again and unmaps.
    readPages.free();
    throw e;
  }
  let keyPages: LockedPages;
  try {
    keyPages = libc.allocLockedPages(len);
    keyPages.view.set(readPages.view.subarray(0, len));
  } finally {
    readPages.free();
  }
  return { value: keyPages.view.subarray(0, len), locked: keyPages.locked, dispose: () => keyPages.free() };
}
