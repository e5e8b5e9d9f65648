import { describe, expect, test } from "bun:test";
import type { CredentialLease } from "../../../src/responses/credentials.ts";
import type { IssuedToken } from "../../../src/responses/oidc/token-exchange.ts";
import { backoffMs, renewalMarginMs, startTokenSource } from "../../../src/responses/oidc/token-source.ts";
import { FakeClock } from "./fake-clock.ts";

/** A token whose `free()` zeroes its bytes, so tests can see when a page was released. */
function token(name: string, clock: FakeClock, lifetimeS: number): IssuedToken & { freed(): boolean } {
  const authorization = new TextEncoder().encode(`Bearer ${name}`);
  return {
    authorization,
    receivedAtMs: clock.now(),
    expiresAtMs: clock.now() + lifetimeS * 1000,
    free: () => authorization.fill(0),
    freed: () => authorization.every((b) => b === 0),
  };
}

const text = (l: CredentialLease | null) => (l ? new TextDecoder().decode(l.header.value) : null);

/** Take a lease and report whether it came synchronously. */
function take(src: { acquire(r: (l: CredentialLease | null) => void): void }) {
  let sync = true;
  let got: CredentialLease | null | undefined;
  const p = new Promise<CredentialLease | null>((resolve) =>
    src.acquire((l) => {
      got = l;
      resolve(l);
    }),
  );
  sync = got !== undefined;
  return { sync, lease: p, now: got };
}

/** Renewals the test answers by hand. */
function renewals() {
  const pending: Array<PromiseWithResolvers<IssuedToken>> = [];
  return {
    pending,
    renew: () => {
      const r = Promise.withResolvers<IssuedToken>();
      pending.push(r);
      return r.promise;
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test.each([
  [3600, 60_000],
  [600, 60_000],
  [300, 30_000],
  [10, 1_000],
  [1, 100],
])("renewal margin of a %i s token is %i ms (min(10 %%, 60 s))", (lifetime, margin) => {
  expect(renewalMarginMs({ receivedAtMs: 0, expiresAtMs: lifetime * 1000 })).toBe(margin);
});

test("backoff after consecutive failures: 1, 2, 4, 8, 16, 30, 30 s", () => {
  expect([1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

describe("token source", () => {
  test("renews ahead of need from its timer; requests during the renewal get the old token at once", async () => {
    const clock = new FakeClock();
    const r = renewals();
    const first = token("old", clock, 600);
    const src = startTokenSource({ first, renew: r.renew, clock, logError: () => {} });
    expect(clock.nextIn()).toBe(540_000);
    clock.advance(539_999);
    expect(r.pending.length).toBe(0);
    clock.advance(1);
    expect(r.pending.length).toBe(1);
    // The renewal is in flight: leases still come synchronously with the old token.
    const a = take(src);
    expect({ sync: a.sync, value: text(a.now!) }).toEqual({ sync: true, value: "Bearer old" });
    r.pending[0]!.resolve(token("new", clock, 600));
    await tick();
    // The old page is held by the lease until it is released, then zeroed.
    expect(first.freed()).toBe(false);
    a.now!.release();
    expect(first.freed()).toBe(true);
    expect(text(take(src).now!)).toBe("Bearer new");
    expect(r.pending.length).toBe(1);
    src.stop();
  });

  test("a failed renewal retries after 1, 2, 4 s while the valid token keeps serving; expiry then refuses at once", async () => {
    const clock = new FakeClock();
    const r = renewals();
    const logs: string[] = [];
    const first = token("old", clock, 100); // margin 10 s
    const src = startTokenSource({ first, renew: r.renew, clock, logError: (l) => logs.push(l) });
    clock.advance(90_000);
    expect(r.pending.length).toBe(1);
    const { OidcError } = await import("../../../src/responses/oidc/errors.ts");
    r.pending[0]!.reject(new OidcError("openai-rejected", 503));
    await tick();
    expect(logs).toEqual(["workload identity renewal failed: OpenAI workload identity token request rejected (HTTP 503)"]);
    const still = take(src).now!;
    expect(text(still)).toBe("Bearer old");
    still.release();
    clock.advance(999);
    expect(r.pending.length).toBe(1);
    clock.advance(1);
    expect(r.pending.length).toBe(2);
    r.pending[1]!.reject(new Error("x"));
    await tick();
    clock.advance(2000);
    expect(r.pending.length).toBe(3);
    r.pending[2]!.reject(new Error("x"));
    await tick();
    expect(clock.nextIn()).toBe(4000);
    // 3 s later (t = 93 s) the token is still valid; at 100 s it is not.
    clock.advance(7000);
    expect(r.pending.length).toBe(4); // the 4 s retry fired at t = 97 s
    const refused = take(src);
    expect({ sync: refused.sync, lease: refused.now }).toEqual({ sync: true, lease: null });
    expect(first.freed()).toBe(true);
    // The retry in flight succeeds: requests are served again.
    r.pending[3]!.resolve(token("new", clock, 100));
    await tick();
    expect(text(take(src).now!)).toBe("Bearer new");
    src.stop();
  });

  test("with no valid token and no failure yet, requests wait for one single-flight renewal", async () => {
    const clock = new FakeClock();
    const r = renewals();
    const first = token("old", clock, 100);
    const src = startTokenSource({ first, renew: r.renew, clock, logError: () => {} });
    // The scheduled renewal (at 90 s) is slow; the token expires while it runs.
    clock.advance(90_000);
    clock.advance(9_999);
    expect(first.freed()).toBe(false);
    clock.advance(1);
    // Zeroed at its expiry, before any request asked.
    expect(first.freed()).toBe(true);
    const waiting = [take(src), take(src), take(src)];
    expect(waiting.map((w) => w.sync)).toEqual([false, false, false]);
    expect(r.pending.length).toBe(1);
    r.pending[0]!.resolve(token("new", clock, 100));
    const leases = await Promise.all(waiting.map((w) => w.lease));
    expect(leases.map(text)).toEqual(["Bearer new", "Bearer new", "Bearer new"]);
    src.stop();
  });

  test("an upstream 401 drops the token it answered and renews; a 401 on an old token changes nothing", async () => {
    const clock = new FakeClock();
    const r = renewals();
    const first = token("old", clock, 3600);
    const src = startTokenSource({ first, renew: r.renew, clock, logError: () => {} });
    const a = take(src).now!;
    const b = take(src).now!;
    a.unauthorized();
    a.release();
    expect(r.pending.length).toBe(1);
    expect(first.freed()).toBe(false); // b still holds it
    b.release();
    expect(first.freed()).toBe(true);
    const w = take(src);
    expect(w.sync).toBe(false);
    const second = token("new", clock, 3600);
    r.pending[0]!.resolve(second);
    const c = (await w.lease)!;
    expect(text(c)).toBe("Bearer new");
    b.unauthorized(); // stale: answered the dropped token
    expect(r.pending.length).toBe(1);
    const d = take(src).now!;
    expect(text(d)).toBe("Bearer new");
    d.release();
    c.release();
    src.stop();
    expect(second.freed()).toBe(true);
  });

  test("a renewal after a 401 that fails refuses its waiters and the next requests at once", async () => {
    const clock = new FakeClock();
    const r = renewals();
    const src = startTokenSource({ first: token("old", clock, 3600), renew: r.renew, clock, logError: () => {} });
    take(src).now!.unauthorized();
    const w = take(src);
    r.pending[0]!.reject(new Error("down"));
    expect(await w.lease).toBeNull();
    expect(take(src)).toMatchObject({ sync: true, now: null });
    expect(r.pending.length).toBe(1);
    clock.advance(1000);
    expect(r.pending.length).toBe(2);
    src.stop();
  });
});
