/**
 * The answer cache in front of the system resolver (src/network/resolver-cache.ts): answers
 * reused for the TTL only, failures never remembered, concurrent look-ups shared, bounded.
 */
import { describe, expect, test } from "bun:test";
import { cachingResolver } from "../../src/network/resolver-cache.ts";

/** A resolver that counts its calls and answers from `table` (a missing name rejects). */
function counting(table: Record<string, string[]>) {
  const calls: string[] = [];
  const resolve = async (host: string) => {
    calls.push(host);
    const a = table[host];
    if (!a) throw new Error(`DNS lookup of ${host} failed: ENOTFOUND`);
    return a;
  };
  return { calls, resolve };
}

describe("cachingResolver", () => {
  test("an answer is reused within the TTL and looked up again after it", async () => {
    let t = 0;
    const inner = counting({ "a.test": ["93.184.216.34"] });
    const r = cachingResolver(inner.resolve, { ttlMs: 1000, now: () => t });
    expect(await r("a.test")).toEqual(["93.184.216.34"]);
    t = 999;
    expect(await r("a.test")).toEqual(["93.184.216.34"]);
    expect(inner.calls).toEqual(["a.test"]);
    t = 1000;
    await r("a.test");
    expect(inner.calls).toEqual(["a.test", "a.test"]);
  });

  test("a changed answer is seen once the TTL is over (a rebinding to a private address is then judged)", async () => {
    let t = 0;
    const table: Record<string, string[]> = { "b.test": ["93.184.216.34"] };
    const r = cachingResolver(counting(table).resolve, { ttlMs: 50, now: () => t });
    expect(await r("b.test")).toEqual(["93.184.216.34"]);
    table["b.test"] = ["10.0.0.1"];
    t = 60;
    expect(await r("b.test")).toEqual(["10.0.0.1"]);
  });

  test("failures are not remembered", async () => {
    const table: Record<string, string[]> = {};
    const inner = counting(table);
    const r = cachingResolver(inner.resolve, { ttlMs: 60_000 });
    await expect(r("c.test")).rejects.toThrow("ENOTFOUND");
    table["c.test"] = ["93.184.216.35"];
    expect(await r("c.test")).toEqual(["93.184.216.35"]);
    expect(inner.calls).toEqual(["c.test", "c.test"]);
  });

  test("concurrent look-ups of one name share one call; callers get their own arrays", async () => {
    const inner = counting({ "d.test": ["93.184.216.36"] });
    const r = cachingResolver(inner.resolve, { ttlMs: 60_000 });
    const [x, y] = await Promise.all([r("d.test"), r("d.test")]);
    expect(inner.calls).toEqual(["d.test"]);
    x.push("mutated");
    expect(y).toEqual(["93.184.216.36"]);
    expect(await r("d.test")).toEqual(["93.184.216.36"]);
  });

  test("at most maxEntries names are kept (the oldest goes first); ttlMs 0 disables the cache", async () => {
    const inner = counting({ "e1.test": ["1.1.1.1"], "e2.test": ["1.1.1.2"], "e3.test": ["1.1.1.3"] });
    const r = cachingResolver(inner.resolve, { ttlMs: 60_000, maxEntries: 2 });
    for (const h of ["e1.test", "e2.test", "e3.test", "e3.test", "e2.test", "e1.test"]) await r(h);
    expect(inner.calls).toEqual(["e1.test", "e2.test", "e3.test", "e1.test"]);
    const off = counting({ "f.test": ["1.1.1.4"] });
    const r0 = cachingResolver(off.resolve, { ttlMs: 0 });
    await r0("f.test");
    await r0("f.test");
    expect(off.calls).toEqual(["f.test", "f.test"]);
  });
});
