// npm launcher for the compiled executables (SPEC §5). Plain Node (no Bun needed): finds the
// platform binary, runs it with inherited stdio (so a key can be piped through), forwards
// SIGINT/SIGTERM/SIGHUP, and mirrors the child's end: same exit code, or the same signal
// re-raised on ourselves after removing our handlers (a child killed by SIGTERM must not look
// like a clean exit 0 — the reference launcher's bug).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Bun's cross-compile target name for this machine, or null when unsupported. */
export function platformTarget(platform = process.platform, arch = process.arch) {
  const cpu = arch === "x64" ? "x64" : arch === "arm64" ? "arm64" : null;
  if (!cpu) return null;
  if (platform === "linux") {
    // glibc reports its version in the process report; musl does not.
    const report = typeof process.report?.getReport === "function" ? process.report.getReport() : null;
    const glibc = report?.header?.glibcVersionRuntime;
    return glibc ? `linux-${cpu}` : `linux-${cpu}-musl`;
  }
  if (platform === "darwin") return `darwin-${cpu}`;
  if (platform === "win32" && cpu === "x64") return "windows-x64";
  return null;
}

/** Candidate paths of `name`, most specific first: dist/<target>/, then dist/ (host build). */
export function candidatePaths(name, packageRoot, target = platformTarget()) {
  const exe = process.platform === "win32" ? `${name}.exe` : name;
  const dist = join(packageRoot, "dist");
  return [...(target ? [join(dist, target, exe)] : []), join(dist, exe)];
}

/** Run executable `name` with this process's arguments; never returns. */
export function launch(name) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const binary = candidatePaths(name, root).find((p) => existsSync(p));
  if (!binary) {
    process.stderr.write(
      `${name}: no executable for ${process.platform}-${process.arch} in ${join(root, "dist")} (run \`npm run build\`)\n`,
    );
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
