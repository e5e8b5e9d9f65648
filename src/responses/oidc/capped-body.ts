/**
 * One bounded exchange for workload identity (SPEC §1.8): our HTTP/1.1 client (so a secret
 * header or body goes out from locked memory and is zeroed after the write; fetch() would
 * leave copies), a 30 s bound on the whole exchange, no redirects (the client never follows
 * them), and a response body of at most 64 KiB collected into locked memory. Every piece the
 * socket delivered is zeroed once copied, so the plaintext lives in one place only.
 */
import type { Libc, LockedPages } from "../../hardening/libc.ts";
import type { ClientRequest, Http1DirectClient } from "../../http1/types.ts";
import { allocSecretPages } from "../locked-key.ts";

/** Response bodies larger than this are refused (SPEC §1.8). */
export const MAX_TOKEN_RESPONSE = 64 * 1024;
/** Bound of one exchange, head and body (SPEC §1.8). */
export const TOKEN_CALL_TIMEOUT_MS = 30_000;

/** What one call produced; `body` is owned by the caller (free it). */
export type CappedOutcome =
  | { kind: "status"; status: number }
  | { kind: "body"; status: number; body: LockedPages; length: number }
  | { kind: "oversized" }
  | { kind: "failed"; error: Error };

/**
 * Send `req` (its `signal` is replaced by the timeout's) and collect a 2xx body of at most
 * {@link MAX_TOKEN_RESPONSE} bytes into locked memory. A non-2xx answer is `status` (its body
 * is discarded unread); a transport failure, a failing body or the timeout is `failed`.
 * Never throws.
 */
export async function cappedExchange(
  client: Http1DirectClient,
  libc: Libc | null,
  req: ClientRequest,
  timeoutMs = TOKEN_CALL_TIMEOUT_MS,
): Promise<CappedOutcome> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const done = Promise.withResolvers<CappedOutcome>();
  let page: LockedPages | null = null;
  let length = 0;
  let settled = false;
  let cancelBody = () => {};
  const settle = (outcome: CappedOutcome) => {
    if (settled) return;
    settled = true;
    if (outcome.kind !== "body") page?.free();
    done.resolve(outcome);
  };
  // The consumer attaches inside onResponse, on the socket's data event: with
  // `secretResponse` the client zeroes each chunk right after delivering its pieces.
  client.send(
    { ...req, signal: abort.signal, secretResponse: true },
    {
      onError: (error) => settle({ kind: "failed", error }),
      onResponse(res) {
        cancelBody = () => res.body.cancel();
        if (res.status < 200 || res.status > 299) {
          res.body.cancel();
          settle({ kind: "status", status: res.status });
          return;
        }
        if (res.bodyLength !== undefined && res.bodyLength > MAX_TOKEN_RESPONSE) {
          res.body.cancel();
          settle({ kind: "oversized" });
          return;
        }
        const body = (page = allocSecretPages(libc, MAX_TOKEN_RESPONSE));
        res.body.attach({
          data(piece) {
            if (!settled && length + piece.byteLength > MAX_TOKEN_RESPONSE) {
              res.body.cancel();
              settle({ kind: "oversized" });
            }
            if (!settled) {
              body.view.set(piece, length);
              length += piece.byteLength;
            }
            piece.fill(0);
          },
          flush() {},
          end: () => settle({ kind: "body", status: res.status, body, length }),
          error: (error) => settle({ kind: "failed", error }),
        });
      },
    },
  );
  // The timeout also ends a body that stalls after the head.
  abort.signal.addEventListener("abort", () => {
    cancelBody();
    settle({ kind: "failed", error: new Error("timed out") });
  });
  try {
    return await done.promise;
  } finally {
    clearTimeout(timer);
  }
}
