/**
 * The access token's lifecycle while serving (SPEC §1.8):
 * - effective expiry = min(`expires_at`, receipt + `expires_in`) (computed by the exchange);
 * - **(beyond)** renewal starts from a timer when the remaining time falls below
 *   min(10 % of the lifetime, 60 s), off the request path: requests keep using the current
 *   token meanwhile and never wait while it is valid;
 * - one renewal at a time (single flight); a failed renewal is retried after 1, 2, 4, 8, 16,
 *   30, 30, … s while the current token keeps serving as long as it is valid;
 * - with no valid token, a request waits for a renewal already under way that has not failed
 *   yet (first renewal after expiry or after a 401); otherwise it is refused at once (the
 *   forwarder answers an empty 502);
 * - an upstream 401 drops the token it was sent with and starts a renewal.
 *
 * A token is handed out as a lease; a replaced or expired token's page is zeroed and
 * unmapped as soon as no request holds a lease on it (the HTTP client builds the head from
 * the page when it sends, and again if it replays on a fresh connection).
 */
import type { CredentialLease, CredentialSource } from "../credentials.ts";
import { OidcError } from "./errors.ts";
import type { IssuedToken } from "./token-exchange.ts";

/** Injectable time source (tests drive it by hand). Times in ms. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process clock; timers are unref'd so they never keep the process alive on their own. */
export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    (t as { unref?: () => void }).unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Retry delays after consecutive renewal failures, in seconds; the last repeats. */
export const RENEWAL_BACKOFF_SECONDS = [1, 2, 4, 8, 16, 30] as const;
/** Upper bound of the renewal margin. */
export const MAX_RENEWAL_MARGIN_MS = 60_000;

/** Options of {@link startTokenSource}. */
export interface TokenSourceOptions {
  /** The token obtained before binding. */
  first: IssuedToken;
  /** Both calls again; rejects with an OidcError. */
  renew: () => Promise<IssuedToken>;
  clock?: Clock;
  /** One stderr line per failed renewal (the message only, never a secret). */
  logError: (line: string) => void;
}

/** A running token source. */
export interface TokenSourceHandle extends CredentialSource {
  /** Stop timers and zero the current token's page at once (for exit: a lease still out must not be used after). */
  stop(): void;
}

/** Renewal margin: min(10 % of the lifetime, 60 s). */
export function renewalMarginMs(token: Pick<IssuedToken, "receivedAtMs" | "expiresAtMs">): number {
  return Math.min((token.expiresAtMs - token.receivedAtMs) / 10, MAX_RENEWAL_MARGIN_MS);
}

/** Delay before retry number `failures` (1-based), in ms. */
export function backoffMs(failures: number): number {
  const i = Math.min(failures, RENEWAL_BACKOFF_SECONDS.length) - 1;
  return RENEWAL_BACKOFF_SECONDS[Math.max(i, 0)]! * 1000;
}

/** One token and the leases on it. */
class Held {
  leases = 0;
  retired = false;
  readonly header: { name: string; value: Uint8Array };
  constructor(readonly token: IssuedToken) {
    this.header = { name: "authorization", value: token.authorization };
  }
  retire(): void {
    this.retired = true;
    if (this.leases === 0) this.token.free();
  }
}

/** Start serving `first` and renewing it ahead of need. */
export function startTokenSource(opts: TokenSourceOptions): TokenSourceHandle {
  const clock = opts.clock ?? SYSTEM_CLOCK;
  let current: Held | null = null;
  let timer: unknown = null;
  /** Drops the current token at its expiry, so an expired secret is zeroed without waiting for a request. */
  let expiryTimer: unknown = null;
  let renewing = false;
  /** Consecutive failed renewals; > 0 means "failing": requests without a token are refused at once. */
  let failures = 0;
  let waiters: Array<(lease: CredentialLease | null) => void> = [];
  let stopped = false;

  const valid = (h: Held | null): h is Held => h !== null && clock.now() < h.token.expiresAtMs;

  const lease = (h: Held): CredentialLease => {
    h.leases++;
    let released = false;
    return {
      header: h.header,
      release() {
        if (released) return;
        released = true;
        h.leases--;
        if (h.retired && h.leases === 0) h.token.free();
      },
      unauthorized() {
        if (current !== h) return;
        drop();
        if (!renewing) renew();
      },
    };
  };

  const schedule = (fn: () => void, ms: number) => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = clock.setTimeout(() => {
      timer = null;
      fn();
    }, Math.max(0, ms));
  };

  const drop = () => {
    current?.retire();
    current = null;
  };

  /** Renew at the margin, and drop the token at its expiry if no renewal replaced it by then. */
  const scheduleRenewal = (h: Held) => {
    const at = h.token.expiresAtMs - renewalMarginMs(h.token);
    schedule(() => {
      if (current === h) renew();
    }, at - clock.now());
    if (expiryTimer !== null) clock.clearTimeout(expiryTimer);
    expiryTimer = clock.setTimeout(() => {
      expiryTimer = null;
      if (current === h) drop();
    }, Math.max(0, h.token.expiresAtMs - clock.now()));
  };

  const install = (token: IssuedToken) => {
    drop();
    current = new Held(token);
    failures = 0;
    scheduleRenewal(current);
  };

  const answerWaiters = () => {
    const list = waiters;
    waiters = [];
    for (const w of list) w(valid(current) ? lease(current) : null);
  };

  function renew(): void {
    if (renewing || stopped) return;
    renewing = true;
    opts.renew().then(
      (token) => {
        renewing = false;
        if (stopped) {
          token.free();
          return;
        }
        install(token);
        answerWaiters();
      },
      (e: unknown) => {
        renewing = false;
        if (stopped) return;
        failures++;
        opts.logError(`workload identity renewal failed: ${e instanceof Error ? e.message : String(e)}`);
        if (current && !valid(current)) drop();
        // Waiters get a refusal now; the current token (if still valid) keeps serving.
        answerWaiters();
        schedule(() => renew(), backoffMs(failures));
      },
    );
  }

  install(opts.first);

  return {
    unavailable: new OidcError("renewal-unavailable").message,
    acquire(ready) {
      if (valid(current)) {
        ready(lease(current));
        return;
      }
      if (current) drop();
      if (stopped || failures > 0) {
        ready(null);
        return;
      }
      waiters.push(ready);
      renew();
    },
    stop() {
      stopped = true;
      if (timer !== null) clock.clearTimeout(timer);
      if (expiryTimer !== null) clock.clearTimeout(expiryTimer);
      timer = expiryTimer = null;
      // Exiting: the page is zeroed now even if a request still holds a lease on it.
      current?.token.free();
      current = null;
      const list = waiters;
      waiters = [];
      for (const w of list) w(null);
    },
  };
}
