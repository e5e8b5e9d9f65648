// Child-process fixture: hardening must already have run when this module body executes.
import "../../src/hardening/pre-main.ts";
import { loadLibc } from "../../src/hardening/libc.ts";

const libc = loadLibc()!;
const limit = libc.getCoreLimit();
const child = Bun.spawnSync(["sh", "-c", 'printf "%s|" "${LD_FOO-unset}"; ulimit -c'], { env: process.env });
const status = await Bun.file("/proc/self/status").text();
console.log(
  JSON.stringify({
    dumpable: libc.getDumpable(),
    core: "soft" in limit ? [String(limit.soft), String(limit.hard)] : limit,
    envLdFoo: process.env.LD_FOO ?? null,
    envKeep: process.env.KEEP_ME ?? null,
    child: child.stdout.toString().trim(),
    // /proc/<pid>/status has no dumpable line, but a non-dumpable process's /proc files are owned by root.
    statusReadable: status.includes("Name:"),
  }),
);
