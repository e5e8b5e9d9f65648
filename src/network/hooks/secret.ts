/**
 * Reading and holding the secrets of MITM hooks (SPEC-network §10, "held like the responses
 * proxy's key", SPEC §1.3).
 *
 * TAKE CARE WHEN MODIFYING THIS CODE: the secret bytes must never become a JS string.
 * - `secret_file`: raw `read(2)` (libc.ts) into a locked, MADV_DONTDUMP page outside the JS
 *   heap; never Bun's buffered file APIs, which keep copies.
 * - `secret_env_var`: the value is copied out of the C environment block through a native view,
 *   that block is zeroed and the variable unset (children and `/proc/<pid>/environ` no longer
 *   see it).
 * The secret is then copied page-to-page into its own locked page and the read page is zeroed
 * and unmapped. The (non-secret) prefix is not stored with it: the request-head writer puts
 * `<name>: <prefix>` and then the secret bytes, so each secret has one copy in memory. Rules: trailing CR/LF removed, 1..8,192 bytes, no
 * CR, LF, NUL or other control byte but tab (the value is one HTTP field value, RFC 9110 §5.5).
 * Error texts name the source (path or variable name), never a byte of the value.
 *
 * Where there is no libc (Windows) the buffers are ordinary `Uint8Array`s, files are read with
 * `fs.readSync` (unbuffered on Bun) and variables through `process.env` (a JS string: the one
 * place the rule cannot hold; the README says so). The same `process.env` fallback serves a
 * variable that exists only there (set from JS, which Bun does not write through to C).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { EINTR, type Libc, type OsError } from "../../hardening/libc.ts";
import type { SecretSource } from "./spec.ts";

/** Longest secret (after trimming), bytes. */
export const MAX_SECRET_BYTES = 8192;
/** The read buffer: the longest secret plus room for trailing line ends, and one byte to see "too large". */
const READ_BUFFER_BYTES = MAX_SECRET_BYTES + 64;

/** One read into `dst`: a count (0 = EOF) or an OS error; must not retry EINTR itself. */
export type ReadFn = (dst: Uint8Array) => number | OsError;

/** A secret that could not be read. `message` names the source and the problem, never value bytes. */
export class SecretReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretReadError";
  }
}

/** A secret held outside the JS heap. */
export interface LockedSecret {
  /** The secret bytes; a view onto locked memory. Never turn it into a string. */
  readonly value: Uint8Array;
  /** mlock(2) succeeded. */
  readonly locked: boolean;
  /** Zero and release the memory. The view must not be used afterwards. */
  dispose(): void;
}

/**
 * Fill `buf` through `read` until EOF and return the length of the secret in it (trailing CR/LF
 * trimmed; bytes past it zeroed). `what` names the source in messages.
 * @throws SecretReadError (after zeroing `buf`) for an I/O error, an empty or too large value,
 *   or a CR, LF, NUL or other control byte inside it
 */
export function readSecretBytes(read: ReadFn, buf: Uint8Array, what: string): number {
  const fail = (problem: string): never => {
    buf.fill(0);
    throw new SecretReadError(`${what}: ${problem}`);
  };
  let total = 0;
  for (let interrupts = 0; ; ) {
    if (total === buf.byteLength) return fail(`secret is longer than ${MAX_SECRET_BYTES} bytes`);
    let n: number | OsError;
    try {
      n = read(buf.subarray(total));
    } catch (e) {
      return fail(e instanceof Error ? e.message : String(e));
    }
    if (typeof n !== "number") {
      if (n.errno === EINTR && ++interrupts < 1_000_000) continue;
      return fail(n.message);
    }
    if (n === 0) break;
    if (n < 0 || n > buf.byteLength - total) return fail(`read returned an invalid count: ${n}`);
    total += n;
  }
  return checkSecret(buf, total, fail);
}

/** Trim trailing CR/LF of `buf[0..len)`, zero the rest, validate; returns the trimmed length. */
function checkSecret(buf: Uint8Array, len: number, fail: (problem: string) => never): number {
  let end = len;
  while (end > 0 && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d)) end--;
  buf.fill(0, end);
  if (end === 0) return fail("secret is empty");
  if (end > MAX_SECRET_BYTES) return fail(`secret is longer than ${MAX_SECRET_BYTES} bytes`);
  for (let i = 0; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x0d || c === 0x0a || c === 0) return fail("secret contains a CR, LF or NUL byte");
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return fail("secret contains a control character");
  }
  return end;
}

/** Memory for the read buffer and the held value: locked pages, or plain arrays without libc. */
interface Pages {
  view: Uint8Array;
  locked: boolean;
  free(): void;
}

function alloc(libc: Libc | null, size: number): Pages {
  if (libc) return libc.allocLockedPages(size);
  const view = new Uint8Array(size);
  return { view, locked: false, free: () => view.fill(0) };
}

/** A `read(2)`-style reader of an open descriptor. */
function fdReader(libc: Libc | null, fd: number): ReadFn {
  if (libc) return (dst) => libc.read(fd, dst);
  return (dst) => {
    try {
      return readSync(fd, dst, 0, dst.byteLength, null);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return { errno: typeof err.errno === "number" ? Math.abs(err.errno) : -1, message: err.message };
    }
  };
}

/** A source in messages: `secret_file /run/x` or `secret_env_var NAME`. */
export function describeSource(source: SecretSource): string {
  return source.kind === "file" ? `secret_file ${source.path}` : `secret_env_var ${source.name}`;
}

/** Read a file's secret into `buf`; returns its length. */
function readFile(libc: Libc | null, path: string, buf: Uint8Array, what: string): number {
  let fd: number;
  if (libc) {
    const r = libc.openRead(path);
    if (typeof r !== "number") throw new SecretReadError(`${what}: cannot open: ${r.message}`);
    fd = r;
  } else {
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new SecretReadError(`${what}: cannot open: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
    }
  }
  try {
    return readSecretBytes(fdReader(libc, fd), buf, what);
  } finally {
    if (libc) libc.close(fd);
    else closeSync(fd);
  }
}

/**
 * Take an environment variable's value into `buf` and remove it from the environment (zeroing
 * the C environment block's copy first). Returns its length.
 */
function takeEnv(libc: Libc | null, name: string, buf: Uint8Array, what: string): number {
  const fail = (problem: string): never => {
    buf.fill(0);
    throw new SecretReadError(`${what}: ${problem}`);
  };
  let len: number;
  // Bun's `process.env` does not write through to the C environment: a variable set from JS
  // (never the case in the executable: its environment comes from the parent) is only there.
  const view = libc ? libc.envValueView(name) : null;
  if (libc && view !== null) {
    if (view.byteLength > buf.byteLength) {
      view.fill(0);
      libc.unsetenv(name);
      delete process.env[name];
      return fail(`secret is longer than ${MAX_SECRET_BYTES} bytes`);
    }
    buf.set(view, 0);
    len = view.byteLength;
    view.fill(0);
    libc.unsetenv(name);
  } else {
    // The fallback: a JS string exists anyway (see the module comment).
    const v = process.env[name];
    if (v === undefined) return fail("environment variable is not set");
    const bytes = Buffer.from(v, "utf8");
    if (bytes.byteLength > buf.byteLength) return fail(`secret is longer than ${MAX_SECRET_BYTES} bytes`);
    buf.set(bytes, 0);
    len = bytes.byteLength;
    bytes.fill(0);
  }
  // Bun mirrors the environment in `process.env`; drop the name there too (no value is read).
  delete process.env[name];
  return checkSecret(buf, len, fail);
}

/**
 * Read one secret into its own locked page. `what` names the config entry in messages (e.g.
 * `network_proxy.mitm.hooks[0].actions.inject_request_headers[0]`). An environment variable is
 * removed from the environment once read. `libc` null = the fallback of the module comment.
 * @throws SecretReadError naming `what`, the source and the problem (never value bytes)
 */
export function readSecret(libc: Libc | null, source: SecretSource, what: string): LockedSecret {
  const label = `${what}: ${describeSource(source)}`;
  const read = alloc(libc, READ_BUFFER_BYTES);
  try {
    const buf = read.view.subarray(0, READ_BUFFER_BYTES);
    const len = source.kind === "file" ? readFile(libc, source.path, buf, label) : takeEnv(libc, source.name, buf, label);
    const held = alloc(libc, len);
    held.view.set(buf.subarray(0, len), 0);
    return { value: held.view.subarray(0, len), locked: held.locked, dispose: () => held.free() };
  } finally {
    read.free();
  }
}
