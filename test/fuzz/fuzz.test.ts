/**
 * A short, bounded fuzz run in CI (issue 8): each target of targets.ts for a few hundred
 * inputs and at most ~1 s. Longer runs: `bun scripts/fuzz.ts`. A failure prints the
 * counterexample and its seed (fast-check), so it can be replayed.
 */
import { test } from "bun:test";
import fc from "fast-check";
import { FUZZ_TARGETS } from "./targets.ts";

for (const [name, property] of Object.entries(FUZZ_TARGETS)) {
  test(`fuzz: ${name}`, () => {
    fc.assert(property, { numRuns: 300, interruptAfterTimeLimit: 1000 });
  });
}
