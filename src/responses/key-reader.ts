/**
 * Reads `Bearer <key>` into a 1024-byte buffer, byte-exact per SPEC §1.3 (the reference's
 * `read_auth_header_with`). The `read` function is injected so short reads, EOF, EINTR and
 * I/O errors are unit-tested; the real one is libc `read(2)` on fd 0.
 */
import { readLine, type ReadFn } from "./stdin-line.ts";

export type { ReadFn };

/** Size of the read buffer, prefix included. */
export const KEY_BUFFER_SIZE = 1024;
/** The header value prefix written before the key. */
export const AUTH_PREFIX = new Uint8Array([0x42, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20]); // "Bearer "

/** A key that could not be read; `message` is the exact SPEC §1.3 text. Never contains key bytes. */
export class KeyReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyReadError";
  }
}

export const MSG_TOO_LARGE = `API key is too large to fit in the ${KEY_BUFFER_SIZE}-byte buffer`;
export const MSG_EMPTY =
  "API key must be provided via stdin (e.g. printenv OPENAI_API_KEY | codex-responses-api-proxy)";
export const MSG_INVALID = "API key may only contain ASCII letters, numbers, '-' or '_'";

/** `[A-Za-z0-9_-]` */
function isKeyByte(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x5f
  );
}

/**
 * Fill `buf` (exactly {@link KEY_BUFFER_SIZE} bytes, ideally native memory) with
 * `Bearer <key>` read through `read`, and return the length of that value.
 *
 * Rules: stop at the first `\n` (later bytes are ignored and no further read happens) or at
 * EOF; 1017 key bytes without either → too large; trailing `\r`/`\n` trimmed; empty →
 * MSG_EMPTY; any byte outside `[A-Za-z0-9_-]` → MSG_INVALID; EINTR retried; other errors →
 * the OS error text. Bytes of `buf` past the returned length are zeroed.
 * @throws KeyReadError after zeroing all of `buf`.
 */
export function readAuthHeader(read: ReadFn, buf: Uint8Array): number {
  if (buf.byteLength !== KEY_BUFFER_SIZE) throw new RangeError(`key buffer must be ${KEY_BUFFER_SIZE} bytes`);
  const fail = (message: string): never => {
    buf.fill(0);
    throw new KeyReadError(message);
  };
  buf.set(AUTH_PREFIX, 0);
  const prefixLen = AUTH_PREFIX.byteLength;
  const line = readLine(read, buf.subarray(prefixLen));
  if (line.kind === "full") return fail(MSG_TOO_LARGE);
  if (line.kind === "error") return fail(line.message);
  const total = line.length;
  let end = prefixLen + total;
  while (end > prefixLen && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d)) end--;
  // Zero the trimmed line ending and anything read past the newline before validating.
  buf.fill(0, end);
  if (end === prefixLen) return fail(MSG_EMPTY);
  for (let i = prefixLen; i < end; i++) if (!isKeyByte(buf[i]!)) return fail(MSG_INVALID);
  return end;
}
