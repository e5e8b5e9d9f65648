/**
 * The two calls that turn the GitHub OIDC request token into an OpenAI access token
 * (SPEC §1.8), byte-compatible with the reference:
 *   1. `GET <request-url>?…&audience=<A>` at GitHub, `authorization: Bearer <request token>`
 *      → JSON `{"value": "<JWT>"}` (the subject token);
 *   2. `POST https://auth.openai.com/oauth/token` with an RFC 8693 token-exchange JSON body
 *      → JSON with `access_token`, `token_type`, `issued_token_type`, `expires_in`, `expires_at`.
 *
 * Secrets never become JS strings: the subject token is decoded from the response bytes into
 * a locked page, the request body is assembled in a locked page, the access token is decoded
 * into a locked page as `Bearer <token>`; every intermediate buffer is zeroed.
 */
import type { Libc, LockedPages } from "../../hardening/libc.ts";
import type { Http1DirectClient } from "../../http1/types.ts";
import { AUTH_PREFIX } from "../key-reader.ts";
import { allocSecretPages } from "../locked-key.ts";
import { cappedExchange, TOKEN_CALL_TIMEOUT_MS } from "./capped-body.ts";
import { githubTokenUrl, type OidcConfig } from "./config.ts";
import { OidcError } from "./errors.ts";
import { decodeJsonString, scanJsonObject, type JsonMember } from "./json-bytes.ts";
import { isBearerCredential, MAX_BEARER_CREDENTIAL } from "./request-token.ts";

/** The OpenAI token endpoint; fixed in the product (no flag or variable moves it). */
export const OPENAI_TOKEN_URL = "https://auth.openai.com/oauth/token";
/** Longest subject token (JWT) accepted from GitHub, in bytes. */
export const MAX_SUBJECT_TOKEN = 16_384;
/** Longest access token lifetime OpenAI may grant, in seconds. */
export const MAX_LIFETIME_SECONDS = 3600;

const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

/** An access token in locked memory and when it stops being valid. */
export interface IssuedToken {
  /** `Bearer <access token>` (a view of a locked page). */
  readonly authorization: Uint8Array;
  /** Clock time (ms) the response arrived. */
  readonly receivedAtMs: number;
  /** Effective expiry (ms): min(`expires_at`, receipt + `expires_in`). */
  readonly expiresAtMs: number;
  /** Zero and release the page. */
  free(): void;
}

/** What the exchange needs besides the checked flags. */
export interface TokenExchangeDeps {
  client: Http1DirectClient;
  libc: Libc | null;
  config: OidcConfig;
  /** `Bearer <request token>` in locked memory. */
  requestAuthorization: Uint8Array;
  /** Default {@link OPENAI_TOKEN_URL}; a parameter for tests only. */
  tokenUrl?: URL;
  /** Wall clock in ms (default `Date.now`). */
  now?: () => number;
  /** Bound of each call (default 30 s). */
  timeoutMs?: number;
}

/**
 * Run both calls and return the new access token.
 * @throws OidcError with the message of the step that failed
 */
export async function obtainAccessToken(deps: TokenExchangeDeps): Promise<IssuedToken> {
  const subject = await fetchSubjectToken(deps);
  try {
    return await exchangeSubjectToken(deps, subject.view, subject.length);
  } finally {
    subject.page.free();
  }
}

/** Call 1: the runner's JWT from GitHub, decoded into a locked page. */
export async function fetchSubjectToken(deps: TokenExchangeDeps): Promise<{ page: LockedPages; view: Uint8Array; length: number }> {
  const url = githubTokenUrl(deps.config.requestUrl, deps.config.audience);
  const outcome = await cappedExchange(
    deps.client,
    deps.libc,
    {
      url,
      method: "GET",
      headers: [
        ["host", url.host],
        ["accept", "*/*"],
      ],
      secretHeader: { name: "authorization", value: deps.requestAuthorization },
    },
    deps.timeoutMs ?? TOKEN_CALL_TIMEOUT_MS,
  );
  if (outcome.kind === "status") throw new OidcError("github-rejected", outcome.status);
  if (outcome.kind === "failed") throw new OidcError("github-failed");
  if (outcome.kind === "oversized") throw new OidcError("github-oversized");
  const body = outcome.body;
  try {
    const members = scanJsonObject(body.view, outcome.length);
    const value = typeof members === "string" ? undefined : members.get("value");
    if (!value || value.kind !== "string" || value.duplicate) throw new OidcError("github-invalid");
    const page = allocSecretPages(deps.libc, MAX_SUBJECT_TOKEN);
    const length = decodeJsonString(body.view, value.start, value.end, page.view);
    if (length < 1) {
      page.free();
      throw new OidcError("invalid-subject-token");
    }
    return { page, view: page.view.subarray(0, length), length };
  } finally {
    body.free();
  }
}

/** serde_json's string escaping, byte by byte: `"`, `\`, and C0 controls (short forms where JSON has them). */
function escapedLength(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) n += b === 0x22 || b === 0x5c || b === 0x08 || b === 0x0c || b === 0x0a || b === 0x0d || b === 0x09 ? 2 : b < 0x20 ? 6 : 1;
  return n;
}

const SHORT_ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74 };
const HEX = "0123456789abcdef";

function putEscaped(dst: Uint8Array, at: number, bytes: Uint8Array): number {
  for (const b of bytes) {
    const short = SHORT_ESCAPES[b];
    if (short !== undefined) {
      dst[at++] = 0x5c;
      dst[at++] = short;
    } else if (b < 0x20) {
      dst.set([0x5c, 0x75, 0x30, 0x30, HEX.charCodeAt(b >> 4), HEX.charCodeAt(b & 15)], at);
      at += 6;
    } else dst[at++] = b;
  }
  return at;
}

/**
 * The token-exchange request body (compact JSON, reference key order) built in a locked page:
 * grant_type, subject_token_type, subject_token, identity_provider_id, service_account_id.
 */
export function exchangeRequestBody(libc: Libc | null, subject: Uint8Array, config: OidcConfig): { page: LockedPages; length: number } {
  const enc = new TextEncoder();
  const before = enc.encode(
    '{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange",' +
      '"subject_token_type":"urn:ietf:params:oauth:token-type:jwt","subject_token":"',
  );
  const after = enc.encode(
    `","identity_provider_id":${JSON.stringify(config.identityProviderId)},"service_account_id":${JSON.stringify(config.serviceAccountId)}}`,
  );
  const page = allocSecretPages(libc, before.length + escapedLength(subject) + after.length);
  page.view.set(before, 0);
  let at = putEscaped(page.view, before.length, subject);
  page.view.set(after, at);
  at += after.length;
  return { page, length: at };
}

/** A JSON integer member (no fraction or exponent) as a bigint, or null. */
function integerMember(bytes: Uint8Array, m: JsonMember | undefined): bigint | null {
  if (!m || m.kind !== "number" || m.duplicate) return null;
  const text = new TextDecoder().decode(bytes.subarray(m.start, m.end));
  return /^-?(0|[1-9][0-9]*)$/.test(text) ? BigInt(text) : null;
}

/** A non-secret JSON string member, or null. */
function stringMember(bytes: Uint8Array, m: JsonMember | undefined): string | null {
  if (!m || m.kind !== "string" || m.duplicate) return null;
  return JSON.parse(new TextDecoder().decode(bytes.subarray(m.start, m.end))) as string;
}

/** Call 2: exchange the subject token at OpenAI for an access token. */
export async function exchangeSubjectToken(deps: TokenExchangeDeps, subject: Uint8Array, length: number): Promise<IssuedToken> {
  const url = deps.tokenUrl ?? new URL(OPENAI_TOKEN_URL);
  const request = exchangeRequestBody(deps.libc, subject.subarray(0, length), deps.config);
  let outcome;
  try {
    outcome = await cappedExchange(
      deps.client,
      deps.libc,
      {
        url,
        method: "POST",
        headers: [
          ["host", url.host],
          ["content-type", "application/json"],
          ["accept", "*/*"],
        ],
        body: request.page.view,
        bodyStart: 0,
        bodyEnd: request.length,
      },
      deps.timeoutMs ?? TOKEN_CALL_TIMEOUT_MS,
    );
  } finally {
    request.page.free();
  }
  const now = (deps.now ?? Date.now)();
  if (outcome.kind === "status") throw new OidcError("openai-rejected", outcome.status);
  if (outcome.kind === "failed") throw new OidcError("openai-failed");
  if (outcome.kind === "oversized") throw new OidcError("openai-oversized");
  const body = outcome.body;
  const bytes = body.view;
  let token: LockedPages | null = null;
  try {
    const members = scanJsonObject(bytes, outcome.length);
    if (typeof members === "string") throw new OidcError("openai-invalid");
    const access = members.get("access_token");
    const tokenType = stringMember(bytes, members.get("token_type"));
    const issuedType = stringMember(bytes, members.get("issued_token_type"));
    const expiresIn = integerMember(bytes, members.get("expires_in"));
    const expiresAt = integerMember(bytes, members.get("expires_at"));
    if (!access || access.kind !== "string" || access.duplicate || tokenType === null || issuedType === null) {
      throw new OidcError("openai-invalid");
    }
    if (expiresIn === null || expiresIn < 0n || expiresAt === null) throw new OidcError("openai-invalid");
    const prefix = AUTH_PREFIX.byteLength;
    token = allocSecretPages(deps.libc, prefix + MAX_BEARER_CREDENTIAL);
    const n = decodeJsonString(bytes, access.start, access.end, token.view.subarray(prefix, prefix + MAX_BEARER_CREDENTIAL));
    if (n < 0 || !isBearerCredential(token.view, prefix, prefix + n)) throw new OidcError("openai-invalid");
    if (tokenType.toLowerCase() !== "bearer" || issuedType !== ACCESS_TOKEN_TYPE) throw new OidcError("openai-token-type");
    const nowSeconds = BigInt(Math.floor(now / 1000));
    if (expiresIn === 0n || expiresAt <= nowSeconds) throw new OidcError("openai-expired");
    if (expiresIn > BigInt(MAX_LIFETIME_SECONDS)) throw new OidcError("openai-lifetime");
    token.view.set(AUTH_PREFIX, 0);
    const page = token;
    token = null;
    const expiresAtMs = Math.min(Number(expiresAt) * 1000, now + Number(expiresIn) * 1000);
    return { authorization: page.view.subarray(0, prefix + n), receivedAtMs: now, expiresAtMs, free: () => page.free() };
  } finally {
    token?.free();
    body.free();
  }
}
