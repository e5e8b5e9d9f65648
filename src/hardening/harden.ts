/**
 * Process hardening run before anything else (SPEC §3), for both executables.
 *
 * | OS      | steps, in order                                                     | on failure |
 * | Linux   | prctl(PR_SET_DUMPABLE, 0); setrlimit(RLIMIT_CORE, {0,0}); drop LD_* | exit 5 / 7 |
 * | macOS   | ptrace(PT_DENY_ATTACH); setrlimit(RLIMIT_CORE, {0,0}); drop DYLD_*  | exit 6 / 7 |
 * | FreeBSD | setrlimit(RLIMIT_CORE, {0,0}); drop LD_*                            | exit 7     |
 * | Windows | nothing                                                             | —          |
 */
import { loadLibc, type Libc } from "./libc.ts";

/** Exit codes of SPEC §3. */
export const HARDEN_EXIT = { prctl: 5, ptrace: 6, setrlimit: 7 } as const;

/** Injection points for tests; defaults are the real process. */
export interface HardenDeps {
  libc?: Libc | null;
  /** Loader used when `libc` is not given (default: loadLibc). */
  loadLibc?: () => Libc | null;
  env?: Record<string, string | undefined>;
  /** Writes one line (without newline) to stderr. */
  stderr?: (line: string) => void;
  exit?: (code: number) => never;
}

/**
 * Harden the current process per SPEC §3. On a failing call it prints
 * `ERROR: <call> failed: <os error>` to stderr and exits with that call's code.
 * Returns the names of the environment variables it removed.
 */
export function hardenProcess(deps: HardenDeps = {}): string[] {
  const platform = process.platform;
  if (platform !== "linux" && platform !== "darwin" && platform !== "freebsd") return [];
  const env = deps.env ?? process.env;
  const stderr = deps.stderr ?? ((line: string) => process.stderr.write(line + "\n"));
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  let libc: Libc | null;
  try {
    libc = deps.libc === undefined ? (deps.loadLibc ?? loadLibc)() : deps.libc;
  } catch (e) {
    // Fail closed: without libc the first hardening call cannot run, so report it as failed.
    const why = e instanceof Error ? e.message : String(e);
    if (platform === "linux") stderr(`ERROR: prctl(PR_SET_DUMPABLE, 0) failed: ${why}`);
    else if (platform === "darwin") stderr(`ERROR: ptrace(PT_DENY_ATTACH) failed: ${why}`);
    else stderr(`ERROR: setrlimit(RLIMIT_CORE) failed: ${why}`);
    return exit(platform === "linux" ? HARDEN_EXIT.prctl : platform === "darwin" ? HARDEN_EXIT.ptrace : HARDEN_EXIT.setrlimit);
  }
  if (!libc) return [];

  if (libc.platform === "linux") {
    const err = libc.setDumpable(0);
    if (err) {
      stderr(`ERROR: prctl(PR_SET_DUMPABLE, 0) failed: ${err.message}`);
      exit(HARDEN_EXIT.prctl);
    }
  } else if (libc.platform === "darwin") {
    const err = libc.denyAttach();
    if (err) {
      stderr(`ERROR: ptrace(PT_DENY_ATTACH) failed: ${err.message}`);
      exit(HARDEN_EXIT.ptrace);
    }
  }

  const err = libc.setCoreLimitZero();
  if (err) {
    stderr(`ERROR: setrlimit(RLIMIT_CORE) failed: ${err.message}`);
    exit(HARDEN_EXIT.setrlimit);
  }

  const prefix = libc.platform === "darwin" ? "DYLD_" : "LD_";
  const removed = Object.keys(env).filter((name) => name.startsWith(prefix));
  for (const name of removed) {
    // Bun keeps its own copy of the environment: delete there (what process.env sees) and in
    // the C environment. Bun.spawn without an `env` option still passes the copy Bun made at
    // start (deleted variables included, Bun 1.4.5): every spawn in src/ passes `env`.
    delete env[name];
    libc.unsetenv(name);
  }
  return removed;
}
