// npm launcher for the compiled executables (SPEC §5). Plain Node (no Bun needed): finds the
// platform binary, runs it with inherited stdio (so a key can be piped through), forwards
// SIGINT/SIGTERM/SIGHUP, and mirrors the child's end: same exit code, or the same signal
// re-raised on ourselves after removing our handlers (a child killed by SIGTERM must not look
// like a clean exit 0 — the reference launcher's bug).
//
// Where the binary comes from (the esbuild/biome layout): the `codex-proxies` package lists one
// package per platform, `@codex-proxies/<target>`, as exactly pinned optionalDependencies with
// `os`/`cpu`/`libc` fields, so npm installs only the one for this machine. In a source checkout
// (no platform package) the binary is `dist/<target>/` or `dist/` (`npm run build`).
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Package scope of the per-platform packages: `@codex-proxies/<target>`. */
export const PLATFORM_SCOPE = "@codex-proxies";

/**
 * The C library family on Linux, decided as npm does (npm-install-checks): `/usr/bin/ldd`
 * names musl or the GNU C Library; else the process report (glibc reports its version, a musl
 * process has `ld-musl-`/`libc.musl-` among its shared objects). null when unknown.
 */
export function libcFamily() {
  try {
    const ldd = readFileSync("/usr/bin/ldd", "utf8");
    if (ldd.includes("musl")) return "musl";
    if (ldd.includes("GNU C Library")) return "glibc";
  } catch {
    // no ldd: fall through to the report
  }
  const report = typeof process.report?.getReport === "function" ? process.report.getReport() : null;
  if (report?.header?.glibcVersionRuntime) return "glibc";
  const objects = Array.isArray(report?.sharedObjects) ? report.sharedObjects : [];
  if (objects.some((f) => f.includes("libc.musl-") || f.includes("ld-musl-"))) return "musl";
  return null;
}

/** Release target name for this machine (`linux-arm64-musl`, `windows-x64`, …), or null. */
export function platformTarget(platform = process.platform, arch = process.arch, libc = libcFamily) {
  const cpu = arch === "x64" ? "x64" : arch === "arm64" ? "arm64" : null;
  if (!cpu) return null;
  if (platform === "linux") return libc() === "musl" ? `linux-${cpu}-musl` : `linux-${cpu}`;
  if (platform === "darwin") return `darwin-${cpu}`;
  if (platform === "win32" && cpu === "x64") return "windows-x64";
  return null;
}

/**
 * Candidate paths of `name`, most specific first: the platform package's `bin/`, then a source
 * checkout's `dist/<target>/` and `dist/` (host build).
 */
export function candidatePaths(name, packageRoot, target = platformTarget(), resolvePackage = defaultResolve(packageRoot)) {
  const exe = target === "windows-x64" || process.platform === "win32" ? `${name}.exe` : name;
  const out = [];
  const pkgDir = target ? resolvePackage(`${PLATFORM_SCOPE}/${target}`) : null;
  if (pkgDir) out.push(join(pkgDir, "bin", exe));
  const dist = join(packageRoot, "dist");
  if (target) out.push(join(dist, target, exe));
  out.push(join(dist, exe));
  return out;
}

/** Folder of installed package `pkg` as Node resolves it from `packageRoot`, or null. */
function defaultResolve(packageRoot) {
  const require = createRequire(join(packageRoot, "package.json"));
  return (pkg) => {
    try {
      return dirname(require.resolve(`${pkg}/package.json`));
    } catch {
      return null;
    }
  };
}

/** The error text when no binary is found: names the platform package that is missing. */
export function missingBinaryMessage(name, target, platform = process.platform, arch = process.arch) {
  if (!target) return `${name}: no prebuilt executable for ${platform}-${arch} (supported: Linux x64/arm64 glibc or musl, macOS x64/arm64, Windows x64)\n`;
  return (
    `${name}: the platform package ${PLATFORM_SCOPE}/${target} is not installed.\n` +
    `npm installs it as an optional dependency of codex-proxies; it is missing after --omit=optional,\n` +
    `--no-optional or a lockfile made on another platform. Reinstall with optional dependencies\n` +
    `(npm i -g codex-proxies), or install ${PLATFORM_SCOPE}/${target} of the same version next to it.\n`
  );
}

/** Run executable `name` with this process's arguments; never returns. */
export function launch(name) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const target = platformTarget();
  const binary = candidatePaths(name, root, target).find((p) => existsSync(p));
  if (!binary) {
    process.stderr.write(missingBinaryMessage(name, target));
    process.exit(1);
  }
  // Handlers go in before the child exists, so a signal that arrives while it starts is
  // forwarded (or, before spawn returned, delivered as soon as it has).
  let child = null;
  let pending = null;
  const handlers = new Map();
  for (const sig of FORWARDED) {
    const h = () => {
      if (!child) pending = sig;
      else if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  child = spawn(binary, process.argv.slice(2), { stdio: "inherit" });
  if (pending) child.kill(pending);
  child.on("error", (err) => {
    process.stderr.write(`${name}: failed to start ${binary}: ${err.message}\n`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    for (const [sig, h] of handlers) process.off(sig, h);
    if (signal) {
      process.kill(process.pid, signal);
      // Not reached for fatal signals; a signal ignored by the parent still ends with 128+n.
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    process.exit(code ?? 1);
  });
}
