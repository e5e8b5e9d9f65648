/**
 * Shared by the release tests. They check what `npm run release` wrote into
 * `$CODEX_PROXIES_RELEASE_DIR` (its `--outdir`, usually `dist`): `.ci/run` builds the release
 * and sets it; elsewhere the tests are skipped (visibly), because building 14 executables
 * inside `bun test` would take minutes, and artifacts left from an older commit must not be
 * tested as if they were current.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TARGETS } from "../../scripts/build.ts";

export const ROOT = join(import.meta.dir, "..", "..");
/** The release's --outdir, or undefined when the tests are to be skipped. */
export const RELEASE_DIR = process.env.CODEX_PROXIES_RELEASE_DIR;
export const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
/** Release target names (`linux-x64`, …, `windows-x64`). */
export const TARGET_NAMES = TARGETS.map((t) => t.slice("bun-".length));
export const EXECUTABLES = ["codex-responses-api-proxy", "codex-network-proxy"] as const;

/** The archive's top folder for a target, e.g. `codex-proxies-0.1.0-linux-x64`. */
export const baseName = (target: string) => `codex-proxies-${VERSION}-${target}`;

/** Runs a command to completion; stdout/stderr as text. */
export function sh(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = Bun.spawnSync(argv, { cwd: opts.cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...opts.env } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/** The commit HEAD of this checkout (what a release built here must name). */
export const HEAD = sh(["git", "rev-parse", "HEAD"], { cwd: ROOT }).out.trim();
