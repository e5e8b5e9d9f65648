/**
 * Preloaded by `bun test` (bunfig.toml): the run's temporary folder guard (issue 14, row 2).
 * (The per-test bound, 30 s, is `--timeout 30000` in package.json's test script: bun 1.4.5
 * reads no timeout from bunfig.toml, and `setDefaultTimeout` in a preload covers only the
 * first file.)
 *
 * Every test file runs in one process. Before any of them, TMPDIR is pointed at a fresh private
 * folder (`codex-proxies-test-XXXXXX` under the outer temp folder), so `os.tmpdir()` in tests
 * and in children started with `childEnv()` (test/helpers/child.ts) lands there. After the last
 * test file, the folder must be empty: every test removes what it creates (MITM CA keys among
 * them). Leftovers fail the run, named, and are then removed so a failed run does not litter
 * either. Children started with a hand-made env that drops TMPDIR escape this guard; CI's
 * before/after comparison of /tmp (.ci/run) catches those.
 *
 * Bun quirk: `Bun.spawn` without `env` passes the environment the process started with, not
 * `process.env` as changed here; helpers pass `env` explicitly.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runTmp = mkdtempSync(join(tmpdir(), "codex-proxies-test-"));
process.env.TMPDIR = runTmp;

afterAll(() => {
  const left = readdirSync(runTmp);
  rmSync(runTmp, { recursive: true, force: true });
  if (left.length > 0) {
    throw new Error(`the run left ${left.length} entries in its temporary folder (tests must remove what they create): ${left.sort().join(", ")}`);
  }
});
