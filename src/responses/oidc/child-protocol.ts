/**
 * The wire between the proxy and its token-exchange child (SPEC §1.8 "beyond": every transient
 * copy of a token response dies with the child's address space). Shared by both sides.
 *
 * - Role: the child is the same executable started with {@link EXCHANGE_CHILD_ENV} set; its
 *   value is the job, compact JSON of non-secret values only (the flag values, which are in
 *   the proxy's argv anyway, and the test-only token URL and timeout).
 * - stdin (a pipe): the request token and `\n`, read by the child exactly like the proxy's own
 *   stdin (§1.8 rules).
 * - stdout (a pipe read with raw `read(2)`): a sequence of frames:
 *   - `G` — the GitHub call succeeded (the OpenAI call starts; its 30 s bound starts too);
 *   - `T` f64 receivedAtMs, f64 expiresAtMs, u32 n (little-endian), n bytes of
 *     `Bearer <access token>` — success, the last frame;
 *   - `E` u8 n, n ASCII bytes of an {@link OidcFailure} reason, u16 HTTP status — failure,
 *     the last frame.
 *   A child that ends without `T` or `E` failed in the step it was in (transport failure).
 */
import { checkOidcFlags, type OidcConfig } from "./config.ts";
import { DEFAULT_UPSTREAM_URL } from "../cli.ts";
import { isOidcFailure, OidcError, type OidcFailure } from "./errors.ts";

/** Environment variable that selects the child role; never user-facing. */
export const EXCHANGE_CHILD_ENV = "CODEX_PROXIES_OIDC_EXCHANGE_CHILD";

export const FRAME_GITHUB_DONE = 0x47; // "G"
export const FRAME_TOKEN = 0x54; // "T"
export const FRAME_ERROR = 0x45; // "E"
/** Bytes of a `T` frame before the token: tag, two f64, one u32. */
export const TOKEN_FRAME_HEAD = 1 + 8 + 8 + 4;

/** What the child is asked to do (besides the request token on its stdin). */
export interface ChildJob {
  config: OidcConfig;
  /** Test-only token endpoint (the product never sets it). */
  tokenUrl?: URL;
  /** Test-only bound of each call, ms. */
  timeoutMs?: number;
}

/** The job as the value of {@link EXCHANGE_CHILD_ENV}. */
export function encodeJob(job: ChildJob): string {
  return JSON.stringify({
    audience: job.config.audience,
    identityProviderId: job.config.identityProviderId,
    serviceAccountId: job.config.serviceAccountId,
    requestUrl: job.config.requestUrl.href,
    tokenUrl: job.tokenUrl?.href,
    timeoutMs: job.timeoutMs,
  });
}

/**
 * Parse and re-check (§1.8 order) a job.
 * @throws OidcError of the failing check, or SyntaxError/TypeError for a malformed value
 */
export function decodeJob(text: string): ChildJob {
  const j = JSON.parse(text) as Record<string, unknown>;
  const str = (v: unknown): string => {
    if (typeof v !== "string") throw new TypeError("malformed exchange job");
    return v;
  };
  const config = checkOidcFlags({
    upstreamUrl: DEFAULT_UPSTREAM_URL,
    oidcAudience: str(j.audience),
    identityProviderId: str(j.identityProviderId),
    serviceAccountId: str(j.serviceAccountId),
    githubOidcRequestUrl: str(j.requestUrl),
  });
  const job: ChildJob = { config };
  if (j.tokenUrl !== undefined) job.tokenUrl = new URL(str(j.tokenUrl));
  if (typeof j.timeoutMs === "number" && j.timeoutMs > 0) job.timeoutMs = j.timeoutMs;
  return job;
}

/** The head of a `T` frame. */
export function tokenFrameHead(receivedAtMs: number, expiresAtMs: number, length: number): Uint8Array {
  const head = new Uint8Array(TOKEN_FRAME_HEAD);
  const dv = new DataView(head.buffer);
  head[0] = FRAME_TOKEN;
  dv.setFloat64(1, receivedAtMs, true);
  dv.setFloat64(9, expiresAtMs, true);
  dv.setUint32(17, length, true);
  return head;
}

/** Parse the head of a `T` frame. */
export function parseTokenFrameHead(head: Uint8Array): { receivedAtMs: number; expiresAtMs: number; length: number } {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { receivedAtMs: dv.getFloat64(1, true), expiresAtMs: dv.getFloat64(9, true), length: dv.getUint32(17, true) };
}

/** An `E` frame for `error` (its reason and, for a rejected call, the status). */
export function errorFrame(error: OidcError): Uint8Array {
  const reason = new TextEncoder().encode(error.reason);
  const out = new Uint8Array(1 + 1 + reason.length + 2);
  out[0] = FRAME_ERROR;
  out[1] = reason.length;
  out.set(reason, 2);
  new DataView(out.buffer).setUint16(2 + reason.length, error.status ?? 0, true);
  return out;
}

/** The error an `E` frame body (reason bytes, then u16 status) stands for, or null if it is not one of ours. */
export function parseErrorFrame(reason: Uint8Array, status: Uint8Array): OidcError | null {
  const name = new TextDecoder().decode(reason);
  if (!isOidcFailure(name)) return null;
  const code = new DataView(status.buffer, status.byteOffset, 2).getUint16(0, true);
  return new OidcError(name as OidcFailure, code);
}
