/** Pure parts of the bounds (SPEC-network §12) and the browser check (SPEC §1.4, SPEC-network §7). */
import { expect, test } from "bun:test";
import { isBrowserRequest, isLoopbackHostHeader } from "../../src/net/browser-guard.ts";
import { createConnectionCap, effectiveMaxConnections } from "../../src/net/connection-cap.ts";
import { startDeadlineSweep, sweepTickMs } from "../../src/net/deadlines.ts";

test.each([
  ["127.0.0.1", true],
  ["127.0.0.1:1455", true],
  ["127.1.2.3:80", true],
  ["LOCALHOST:8080", true],
  ["[::1]", true],
  ["[::1]:1455", true],
  ["localhost:", false],
  ["localhost:abc", false],
  ["[::1]x", false],
  ["[::2]:80", false],
  ["evil.example:1455", false],
  ["127.0.0.1.nip.io", false],
  ["localhost.evil.example", false],
  ["1270.0.0.1", false],
  ["", false],
])("Host %p is loopback: %p", (host, expected) => {
  expect(isLoopbackHostHeader(host)).toBe(expected);
});

test("browser signals: Origin, Sec-Fetch-Site other than none, foreign Host (when checked)", () => {
  const none = { origin: null, secFetchSite: null, host: null };
  expect(isBrowserRequest(none)).toBe(false);
  expect(isBrowserRequest({ ...none, origin: "null" })).toBe(true);
  expect(isBrowserRequest({ ...none, secFetchSite: "cross-site" })).toBe(true);
  expect(isBrowserRequest({ ...none, secFetchSite: "same-origin" })).toBe(true);
  expect(isBrowserRequest({ ...none, secFetchSite: " None " })).toBe(false);
  expect(isBrowserRequest({ ...none, host: "rebind.example" })).toBe(true);
  expect(isBrowserRequest({ ...none, host: "rebind.example" }, false)).toBe(false);
});

test("the cap never exceeds (RLIMIT_NOFILE - 64) / 2", () => {
  expect(effectiveMaxConnections(8192, null)).toBe(8192);
  expect(effectiveMaxConnections(8192, Infinity)).toBe(8192);
  expect(effectiveMaxConnections(8192, 1024)).toBe(480);
  expect(effectiveMaxConnections(100, 1024)).toBe(100);
  expect(effectiveMaxConnections(8192, 64)).toBe(1);
});

test("a full cap refuses, counts, and warns at most once a minute", () => {
  let now = 0;
  const warnings: string[] = [];
  let metric = 0;
  const cap = createConnectionCap({ max: 1, warn: (l) => warnings.push(l), onRefused: () => metric++, now: () => now });
  expect(cap.admit()).toBe(true);
  expect([cap.admit(), cap.admit()]).toEqual([false, false]);
  now = 59_999;
  expect(cap.admit()).toBe(false);
  now = 60_000;
  expect(cap.admit()).toBe(false);
  expect(warnings).toEqual([
    "connection limit reached (max_connections=1): refused 1 connection(s) since the last warning",
    "connection limit reached (max_connections=1): refused 3 connection(s) since the last warning",
  ]);
  expect([cap.refused, metric, cap.open]).toEqual([4, 4, 1]);
  cap.release();
  expect(cap.admit()).toBe(true);
});

test("the sweep expires passed deadlines once, in tick steps", async () => {
  expect([sweepTickMs(30_000, 120_000), sweepTickMs(8), sweepTickMs(100, 40)]).toEqual([1000, 10, 10]);
  const items = [{ deadline: 0, n: 0 }, { deadline: Infinity, n: 0 }];
  const expired = Promise.withResolvers<void>();
  const sweep = startDeadlineSweep({
    items,
    tickMs: 10,
    expire(item) {
      item.n++;
      expired.resolve();
    },
  });
  await expired.promise;
  sweep.stop();
  expect(items.map((i) => [i.n, i.deadline])).toEqual([[1, Infinity], [0, Infinity]]);
});
