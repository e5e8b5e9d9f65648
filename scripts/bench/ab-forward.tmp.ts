// Temporary A/B (not committed): plain HTTP forward through two builds of the network proxy,
// interleaved wrk runs, req/s and proxy CPU ms per request.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMs, median, runWrk, spawnChild, startStaticNginx } from "./tools.ts";

const bins = { base: "/tmp/issue7-base/dist/codex-network-proxy", new: "/tmp/issue7-new/dist/codex-network-proxy" };
const dir = mkdtempSync(join(tmpdir(), "ab-forward-"));
const { port: upPort, child: nginx } = await startStaticNginx(dir, { mib: 16 });
const procs: Record<string, { port: number; pid: number; stop(): Promise<void> }> = {};
for (const [name, bin] of Object.entries(bins)) {
  const info = join(dir, `${name}.json`);
  const c = spawnChild([bin, "--allow", "127.0.0.1", "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--server-info", info, "--log-level", "error"], { env: { PATH: process.env.PATH!, CODEX_HOME: join(dir, name) } });
  for (let i = 0; i < 200 && !(await Bun.file(info).exists()); i++) await Bun.sleep(50);
  procs[name] = { port: JSON.parse(readFileSync(info, "utf8")).http, pid: c.proc.pid, stop: () => c.stop() };
}
const script = `wrk.headers["Host"] = "127.0.0.1:${upPort}"\nrequest = function() return wrk.format("GET", "http://127.0.0.1:${upPort}/small") end\n`;
const res: Record<string, { rps: number[]; cpu: number[] }> = { base: { rps: [], cpu: [] }, new: { rps: [], cpu: [] } };
for (const n of ["base", "new"]) await runWrk(`http://127.0.0.1:${procs[n]!.port}/`, { seconds: 2, connections: 32, script });
const rounds = Number(process.argv[2] ?? 8);
for (let r = 0; r < rounds; r++) {
  for (const n of r % 2 === 0 ? ["base", "new"] : ["new", "base"]) {
    const p = procs[n]!;
    const c0 = cpuMs(p.pid)!;
    const w = await runWrk(`http://127.0.0.1:${p.port}/`, { seconds: 5, connections: 32, script });
    const c1 = cpuMs(p.pid)!;
    res[n]!.rps.push(w.rps);
    res[n]!.cpu.push((c1 - c0) / (w.rps * 5));
  }
}
for (const n of ["base", "new"]) {
  console.log(`${n}: median ${median(res[n]!.rps).toFixed(0)} req/s, ${median(res[n]!.cpu).toFixed(4)} CPU ms/req (req/s runs: ${res[n]!.rps.map((x) => x.toFixed(0)).join(" ")})`);
}
console.log(`ratio new/base: req/s ${(median(res.new!.rps) / median(res.base!.rps)).toFixed(3)}, CPU/req ${(median(res.new!.cpu) / median(res.base!.cpu)).toFixed(3)}`);
for (const p of Object.values(procs)) await p.stop();
await nginx.stop();
