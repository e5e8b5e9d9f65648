/**
 * Preloaded by `bun test` (bunfig.toml): the per-test timeout, and the run's temporary folder
 * guard (issue 14, row 2).
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
import { afterAll, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The per-test bound. bunfig.toml's `[test] timeout` is not read by bun 1.4.5 (tests died at
// 5 s, the built-in default: a cold python3 start alone takes 7 s on a loaded 2-core machine).
setDefaultTimeout(30_000);

const runTmp = mkdtempSync(join(tmpdir(), "codex-proxies-test-"));
process.env.TMPDIR = runTmp;

afterAll(() => {
  const left = readdirSync(runTmp);
  rmSync(runTmp, { recursive: true, force: true });
  if (left.length > 0) {
    throw new Error(`the run left ${left.length} entries in its temporary folder (tests must remove what they create): ${left.sort().join(", ")}`);
  }
});
