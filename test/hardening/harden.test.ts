import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { hardenProcess } from "../../src/hardening/harden.ts";
import type { Libc, OsError } from "../../src/hardening/libc.ts";

const BUN = process.execPath;
const isLinux = process.platform === "linux";
const isRoot = process.getuid?.() === 0;
/** As root, the fixture runs as nobody (65534) so that root owning its /proc files means something. */
const SETPRIV = isRoot ? Bun.which("setpriv") : null;
const asNobody = SETPRIV ? [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"] : [];

describe("pre-main hardening in a child process (SPEC §3)", () => {
  test.skipIf(!isLinux || (isRoot && !SETPRIV))("Linux: not dumpable (its /proc files belong to root), RLIMIT_CORE 0/0, LD_* removed for self and children", async () => {
    const proc = Bun.spawn([...asNobody, BUN, join(import.meta.dir, "fixture-pre-main.ts")], {
      env: { PATH: process.env.PATH, LD_FOO: "x", LD_BAR: "y", KEEP_ME: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({
      dumpable: 0,
      core: ["0", "0"],
      envLdFoo: null,
      envKeep: "1",
      child: "unset|0",
      uid: isRoot ? 65534 : process.getuid!(),
      procOwner: 0,
    });
  });
});

/** A fake libc whose calls fail as configured. */
function fakeLibc(platform: Libc["platform"], fail: { prctl?: OsError; ptrace?: OsError; setrlimit?: OsError }): Libc & { calls: string[] } {
  const calls: string[] = [];
  const no = () => {
    throw new Error("unused");
  };
  return {
    platform,
    pageSize: 4096,
    calls,
    setDumpable: () => (calls.push("prctl"), fail.prctl ?? null),
    getDumpable: () => 0,
    denyAttach: () => (calls.push("ptrace"), fail.ptrace ?? null),
    setCoreLimitZero: () => (calls.push("setrlimit"), fail.setrlimit ?? null),
    getCoreLimit: () => ({ soft: 0n, hard: 0n }),
    raiseNoFileLimit: no,
    unsetenv: (n) => void calls.push(`unsetenv ${n}`),
    read: no,
    openRead: no,
    close: no,
    envValueView: no,
    waitReadable: no,
    waitWritable: no,
    write: no,
    pipe: no,
    EAGAIN: 11,
    allocLockedPages: no,
  };
}

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function runHarden(libc: Libc, env: Record<string, string>) {
  const lines: string[] = [];
  try {
    const removed = hardenProcess({ libc, env, stderr: (l) => lines.push(l), exit: (c) => { throw new Exit(c); } });
    return { code: null, lines, removed };
  } catch (e) {
    if (e instanceof Exit) return { code: e.code, lines, removed: null };
    throw e;
  }
}

const EPERM = { errno: 1, message: "Operation not permitted (os error 1)" };

describe.skipIf(process.platform === "win32")("hardenProcess messages and exit codes", () => {
  test("Linux order and LD_* removal", () => {
    const libc = fakeLibc("linux", {});
    const env: Record<string, string> = { LD_PRELOAD: "x", LD_LIBRARY_PATH: "y", DYLD_X: "z", PATH: "/bin", XLD_NOT: "1" };
    const r = runHarden(libc, env);
    expect(r).toEqual({ code: null, lines: [], removed: ["LD_PRELOAD", "LD_LIBRARY_PATH"] });
    expect(libc.calls).toEqual(["prctl", "setrlimit", "unsetenv LD_PRELOAD", "unsetenv LD_LIBRARY_PATH"]);
    expect(env).toEqual({ DYLD_X: "z", PATH: "/bin", XLD_NOT: "1" });
  });

  test("Linux prctl failure → exit 5", () => {
    expect(runHarden(fakeLibc("linux", { prctl: EPERM }), {})).toEqual({
      code: 5,
      lines: ["ERROR: prctl(PR_SET_DUMPABLE, 0) failed: Operation not permitted (os error 1)"],
      removed: null,
    });
  });

  test("setrlimit failure → exit 7", () => {
    expect(runHarden(fakeLibc("linux", { setrlimit: EPERM }), {})).toEqual({
      code: 7,
      lines: ["ERROR: setrlimit(RLIMIT_CORE) failed: Operation not permitted (os error 1)"],
      removed: null,
    });
  });

  test("macOS: ptrace failure → exit 6; DYLD_* removed", () => {
    expect(runHarden(fakeLibc("darwin", { ptrace: EPERM }), {})).toEqual({
      code: 6,
      lines: ["ERROR: ptrace(PT_DENY_ATTACH) failed: Operation not permitted (os error 1)"],
      removed: null,
    });
    const libc = fakeLibc("darwin", {});
    const env = { DYLD_INSERT_LIBRARIES: "x", LD_PRELOAD: "y" };
    expect(runHarden(libc, env).removed).toEqual(["DYLD_INSERT_LIBRARIES"]);
    expect(libc.calls).toEqual(["ptrace", "setrlimit", "unsetenv DYLD_INSERT_LIBRARIES"]);
  });

  test.skipIf(process.platform !== "linux")("no loadable C library: fails closed like a failed prctl (exit 5)", () => {
    const lines: string[] = [];
    let code: number | null = null;
    try {
      hardenProcess({
        loadLibc: () => {
          throw new Error("cannot load the C library (libc.so.6)");
        },
        env: {},
        stderr: (l) => lines.push(l),
        exit: (c) => {
          throw new Exit(c);
        },
      });
    } catch (e) {
      if (!(e instanceof Exit)) throw e;
      code = e.code;
    }
    expect({ code, lines }).toEqual({ code: 5, lines: ["ERROR: prctl(PR_SET_DUMPABLE, 0) failed: cannot load the C library (libc.so.6)"] });
  });

  test("FreeBSD: setrlimit only, LD_* removed", () => {
    const libc = fakeLibc("freebsd", {});
    expect(runHarden(libc, { LD_PRELOAD: "x" }).removed).toEqual(["LD_PRELOAD"]);
    expect(libc.calls).toEqual(["setrlimit", "unsetenv LD_PRELOAD"]);
  });
});
