/**
 * Temporary folders for tests (issue 14, row 2: a run leaves the temp folder as it found it).
 * `tempDir()` makes a folder under `os.tmpdir()` (the run's private folder, see test/setup.ts)
 * and remembers it; every test file that makes one, directly or through a helper
 * (`testConfig`, `originCert`, `selfSignedCert`, `startMitmContext`), ends with
 * `afterAll(removeTempDirs)`. Files run one after another in one process, so the list holds
 * the current file's folders. test/setup.ts fails the run if anything is left.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made = new Set<string>();

/** A fresh folder `<tmpdir>/<prefix>XXXXXX`, removed by the next {@link removeTempDirs}. */
export function tempDir(prefix = "cp-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Remember `path` (made elsewhere, or only maybe created later) for {@link removeTempDirs}. */
export function removeLater(path: string): string {
  made.add(path);
  return path;
}

/** Remove every folder made by {@link tempDir} or passed to {@link removeLater} so far. */
export function removeTempDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}
