// Types of bin/launch.js (plain Node JavaScript so that the npm launcher needs no build step).

/** Package scope of the per-platform packages: `@codex-proxies/<target>`. */
export declare const PLATFORM_SCOPE: "@codex-proxies";
/** C library family on Linux as npm decides it, or null when unknown. */
export declare function libcFamily(): "glibc" | "musl" | null;
/** Release target for a platform/arch (`linux-arm64-musl`, `windows-x64`, …), or null. */
export declare function platformTarget(platform?: string, arch?: string, libc?: () => string | null): string | null;
/** Candidate executable paths, most specific first. */
export declare function candidatePaths(name: string, packageRoot: string, target?: string | null, resolvePackage?: (pkg: string) => string | null): string[];
/** The error text printed when no executable is found. */
export declare function missingBinaryMessage(name: string, target: string | null, platform?: string, arch?: string): string;
/** Runs executable `name` with this process's arguments; never returns. */
export declare function launch(name: string): never;
