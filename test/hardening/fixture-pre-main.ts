// Child-process fixture: hardening must already have run when this module body executes.
import "../../src/hardening/pre-main.ts";
import { loadLibc } from "../../src/hardening/libc.ts";

const libc = loadLibc()!;
const limit = libc.getCoreLimit();
const child = Bun.spawnSync(["sh", "-c", 'printf "%s|" "${LD_FOO-unset}"; ulimit -c'], { env: process.env });
import { statSync } from "node:fs";
console.log(
  JSON.stringify({
    dumpable: libc.getDumpable(),
    core: "soft" in limit ? [String(limit.soft), String(limit.hard)] : limit,
    envLdFoo: process.env.LD_FOO ?? null,
    envKeep: process.env.KEEP_ME ?? null,
    child: child.stdout.toString().trim(),
    // Seen from the kernel, not from our own flag: a non-dumpable process's /proc/<pid> files
    // belong to root (proc(5), PR_SET_DUMPABLE). Run as a non-root uid, this differs from `uid`.
    uid: process.getuid?.() ?? null,
    procOwner: statSync("/proc/self/status").uid,
  }),
);
