/**
 * Reading the GitHub OIDC request token from stdin (SPEC §1.8): raw `read(2)` into locked
 * memory like the API key (§1.3), at most 16,386 bytes up to the first `\n` or EOF; one
 * trailing `\n`, then one `\r`, stripped; 1..16,384 bytes of `A-Za-z0-9-._~+/=`.
 *
 * The result is `Bearer <token>` in a locked page, ready to be the `authorization` value of
 * the GitHub call; the read page is zeroed and unmapped at once.
 */
import type { Libc } from "../../hardening/libc.ts";
import { AUTH_PREFIX } from "../key-reader.ts";
import { allocSecretPages, stdinReader, type LockedKey } from "../locked-key.ts";
import { readLine, type ReadFn } from "../stdin-line.ts";
import { OidcError } from "./errors.ts";

/** Bytes read at most: a 16,384-byte token plus `\r\n`. */
export const REQUEST_TOKEN_BUFFER = 16_386;
/** Longest bearer credential (request token or access token). */
export const MAX_BEARER_CREDENTIAL = 16_384;

/** `A-Za-z0-9-._~+/=`: the RFC 6750 §2.1 b64token alphabet. */
export function isBearerCredentialByte(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e || b === 0x2b || b === 0x2f || b === 0x3d
  );
}

/** `bytes[start..end)` is 1..16,384 bytes of the bearer credential alphabet. */
export function isBearerCredential(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start < 1 || end - start > MAX_BEARER_CREDENTIAL) return false;
  for (let i = start; i < end; i++) if (!isBearerCredentialByte(bytes[i]!)) return false;
  return true;
}

/**
 * Read the request token with `read` (default: stdin) and hold `Bearer <token>` in locked
 * memory. An I/O error fails with the OS error text.
 * @throws OidcError `credential-too-large` / `invalid-credential`, or Error(OS text); every
 *   buffer is zeroed first
 */
export function readRequestToken(libc: Libc | null, read?: ReadFn): LockedKey {
  const prefix = AUTH_PREFIX.byteLength;
  const page = allocSecretPages(libc, prefix + REQUEST_TOKEN_BUFFER);
  const buf = page.view;
  let end: number;
  try {
    const line = readLine(read ?? stdinReader(libc), buf.subarray(prefix, prefix + REQUEST_TOKEN_BUFFER));
    if (line.kind === "full") throw new OidcError("credential-too-large");
    if (line.kind === "error") throw new Error(line.message);
    end = prefix + line.length;
    if (end > prefix && buf[end - 1] === 0x0a) end--;
    if (end > prefix && buf[end - 1] === 0x0d) end--;
    buf.fill(0, end);
    if (!isBearerCredential(buf, prefix, end)) throw new OidcError("invalid-credential");
  } catch (e) {
    page.free();
    throw e;
  }
  buf.set(AUTH_PREFIX, 0);
  return { value: buf.subarray(0, end), locked: page.locked, dispose: () => page.free() };
}
