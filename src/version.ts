/**
 * What `--version` prints after the program name, for both executables:
 * `<package version> (commit <40-hex git commit>[-dirty])` in a build made by `scripts/build.ts`
 * or `scripts/release.ts`, which define `CODEX_PROXIES_COMMIT` with `bun build --define`;
 * `<package version> (commit unknown: run from source)` when Bun runs the sources directly.
 */
import { version } from "../package.json" with { type: "json" };

/** Set at build time by `--define CODEX_PROXIES_COMMIT='"<hex>"'`; absent when run from source. */
declare const CODEX_PROXIES_COMMIT: string | undefined;

/** Package version from package.json, e.g. `0.1.0`. */
export const PACKAGE_VERSION: string = version;

/** Git commit the executable was built from, or null when run from source. */
export const BUILD_COMMIT: string | null = typeof CODEX_PROXIES_COMMIT === "string" ? CODEX_PROXIES_COMMIT : null;

/** `0.1.0 (commit 0123…)`: the text after the program name on a `--version` line. */
export const VERSION_TEXT = `${PACKAGE_VERSION} (commit ${BUILD_COMMIT ?? "unknown: run from source"})`;
