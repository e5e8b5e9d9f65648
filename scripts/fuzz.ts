/**
 * Long fuzz run (issue 8): every target of test/fuzz/targets.ts for `--seconds` each (default
 * 30) or `--runs` inputs, whichever ends first. Prints inputs tried, failures and, for a
 * failure, the seed and the shrunk counterexample (replay: `--seed <n> --only "<target>"`).
 * Exit 1 when any target failed. Not part of `npm test` (the CI run is test/fuzz/fuzz.test.ts).
 *
 *   bun scripts/fuzz.ts [--seconds 30] [--runs 10000000] [--seed N] [--only NAME]
 */
import fc from "fast-check";
import { parseArgs } from "node:util";
import { FUZZ_TARGETS } from "../test/fuzz/targets.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "30" }, runs: { type: "string", default: "10000000" }, seed: { type: "string" }, only: { type: "string" } },
});
const seconds = Number(values.seconds);
let failed = 0;
let total = 0;
for (const [name, property] of Object.entries(FUZZ_TARGETS)) {
  if (values.only && values.only !== name) continue;
  const t0 = performance.now();
  const r = fc.check(property, {
    numRuns: Number(values.runs),
    interruptAfterTimeLimit: seconds * 1000,
    seed: values.seed === undefined ? undefined : Number(values.seed),
  });
  const ms = performance.now() - t0;
  total += r.numRuns;
  const line = `${name.padEnd(26)} ${String(r.numRuns).padStart(9)} inputs in ${(ms / 1000).toFixed(1)} s`;
  if (r.failed) {
    failed++;
    console.log(`${line}  FAILED seed=${r.seed} path=${r.counterexamplePath}\n  ${r.errorInstance instanceof Error ? r.errorInstance.message : String(r.errorInstance)}\n  counterexample: ${fc.stringify(r.counterexample)}`);
  } else console.log(`${line}  ok`);
}
console.log(`total: ${total} inputs, ${failed} failing target(s)`);
process.exit(failed > 0 ? 1 : 0);
