/**
 * Benchmark: codex-network-proxy side by side with its peers on loopback.
 * - Idle RSS of the compiled executables (network proxy right after start, before any
 *   traffic; responses proxy started with a dummy key), in MiB.
 * - HTTP forward (absolute-form GET of a 1 KiB object, keep-alive, wrk) vs squid: `--runs`
 *   interleaved rounds (the order alternates every round), medians of req/s and p99.
 * - CONNECT tunnel and SOCKS5 throughput (curl downloading a 1 GiB object) vs a direct
 *   connection to the same upstream, and (when socat is installed) vs a plain TCP relay in C
 *   (`socat -b 524288`, read/write like ours): the floor any user-space splice pays.
 *   Downloads are interleaved round by round (direct, CONNECT, SOCKS5, socat) so load from
 *   other processes hits every variant alike; figures are medians of `--runs` rounds.
 * The upstream is nginx serving static files. Prints figures and ratios (ours / peer).
 *
 * Usage: bun scripts/bench-network.ts [--seconds 10] [--connections 32] [--mib 1024] [--runs 7]
 *   [--skip-forward]
 * Needs: wrk, nginx, squid, curl on PATH (socat optional); `npm run build` done.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, have, median, runWrk, spawnChild, startStaticNginx, waitForPort, waitForStderr, type WrkResult } from "./bench/tools.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    mib: { type: "string", default: "1024" },
    runs: { type: "string", default: "7" },
    "skip-forward": { type: "boolean", default: false },
  },
});
const seconds = Math.min(120, Math.max(1, Number(values.seconds)));
const connections = Math.min(1024, Math.max(1, Number(values.connections)));
const mib = Math.min(8192, Math.max(16, Number(values.mib)));
const runs = Math.min(51, Math.max(1, Number(values.runs)));
const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "dist", "codex-network-proxy");
const RESPONSES_BIN = join(ROOT, "dist", "codex-responses-api-proxy");
for (const b of ["wrk", "nginx", "squid", "curl"]) if (!have(b)) throw new Error(`${b} not found on PATH`);
if (!(await Bun.file(BIN).exists())) throw new Error(`${BIN} missing: run npm run build`);

const dir = mkdtempSync(join(tmpdir(), "bench-network-"));
const { port: upPort, child: nginx } = await startStaticNginx(dir, { mib });

const squidPort = freePort();
writeFileSync(
  join(dir, "squid.conf"),
  `http_port 127.0.0.1:${squidPort}
http_access allow all
cache deny all
access_log none
cache_log /dev/null
pid_filename ${dir}/squid.pid
coredump_dir ${dir}
workers 1
`,
);
const squid = spawnChild(["squid", "-N", "-f", join(dir, "squid.conf")]);
await waitForPort(squidPort);

// A C relay peer: socat forwarding a port to nginx with a 512 KiB buffer (Bun reads 512 KiB too).
const socatPort = have("socat") ? freePort() : null;
const socat = socatPort
  ? spawnChild(["socat", "-b", "524288", `TCP-LISTEN:${socatPort},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${upPort}`])
  : null;
if (socatPort) await waitForPort(socatPort);

const infoFile = join(dir, "server-info.json");
const ours = spawnChild(
  [BIN, "--allow", "127.0.0.1", "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0",
    "--server-info", infoFile, "--log-level", "error"],
  { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", CODEX_HOME: join(dir, "codex-home") } },
);
for (let i = 0; i < 200 && !(await Bun.file(infoFile).exists()); i++) await Bun.sleep(50);
const info = JSON.parse(readFileSync(infoFile, "utf8")) as { http: number; socks: number | null };

/** Resident set of `pid` in MiB, with its file-backed part (mapped executable pages). */
function rssMiB(pid: number): { rss: number; file: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (k: string) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0) / 1024;
  return { rss: kib("VmRSS"), file: kib("RssFile"), anon: kib("RssAnon") };
}
const fmtRss = (r: { rss: number; file: number; anon: number }) =>
  `${r.rss.toFixed(1)} MiB (anon ${r.anon.toFixed(1)}, file ${r.file.toFixed(1)})`;

/** Idle RSS of the responses proxy executable: started with a dummy key, measured once it listens. */
async function responsesIdleRss(): Promise<string> {
  if (!(await Bun.file(RESPONSES_BIN).exists())) return "not built";
  const child = spawnChild([RESPONSES_BIN, "--upstream-url", "http://127.0.0.1:9/v1/responses"], { stdin: "pipe" });
  try {
    const sink = child.proc.stdin as import("bun").FileSink;
    sink.write("sk-bench_" + "x".repeat(40) + "\n");
    await sink.end();
    await waitForStderr(child, /listening on/);
    await Bun.sleep(1000); // let startup garbage be collected, as for the network proxy
    return fmtRss(rssMiB(child.proc.pid));
  } finally {
    await child.stop();
  }
}

await Bun.sleep(1000);
console.log(`idle RSS: network proxy ${fmtRss(rssMiB(ours.proc.pid))}; responses proxy ${await responsesIdleRss()}`);

/** Absolute-form GET through a forward proxy: wrk connects to the proxy, the request-target names the origin. */
const forwardScript = `wrk.headers["Host"] = "127.0.0.1:${upPort}"
request = function() return wrk.format("GET", "http://127.0.0.1:${upPort}/small") end
`;

/** Download the big object with curl (extra args, optional other origin port); returns MiB/s. */
async function curlMiBps(args: string[], port = upPort): Promise<number> {
  const p = Bun.spawn(["curl", "-fsS", "-o", "/dev/null", "-w", "%{speed_download}", ...args, `http://127.0.0.1:${port}/big`], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`curl ${args.join(" ")} failed`);
  return Number(out) / (1024 * 1024);
}

try {
  if (!values["skip-forward"]) {
    const peers = [
      { name: "ours", url: `http://127.0.0.1:${info.http}/` },
      { name: "squid", url: `http://127.0.0.1:${squidPort}/` },
    ];
    for (const p of peers) await runWrk(p.url, { seconds: 2, connections, script: forwardScript }); // warm-up
    const got = new Map<string, WrkResult[]>(peers.map((p) => [p.name, []]));
    for (let r = 0; r < runs; r++) {
      // Alternate who goes first so drift (thermal, other load) does not favour one side.
      for (const p of r % 2 === 0 ? peers : [...peers].reverse()) {
        got.get(p.name)!.push(await runWrk(p.url, { seconds, connections, script: forwardScript }));
      }
    }
    const med = (name: string) => {
      const xs = got.get(name)!;
      return {
        rps: median(xs.map((x) => x.rps)),
        p99: median(xs.map((x) => x.p99ms)),
        errors: xs.reduce((a, x) => a + x.errors, 0),
        runs: xs.map((x) => x.rps.toFixed(0)).join(" "),
      };
    };
    const o = med("ours");
    const s = med("squid");
    console.log(`HTTP forward (1 KiB GET, ${connections} connections, medians of ${runs} interleaved ${seconds} s runs):`);
    console.log(`  ours   ${o.rps.toFixed(0)} req/s, p99 ${o.p99.toFixed(2)} ms, errors ${o.errors} (runs: ${o.runs})`);
    console.log(`  squid  ${s.rps.toFixed(0)} req/s, p99 ${s.p99.toFixed(2)} ms, errors ${s.errors} (runs: ${s.runs})`);
    console.log(`  ratio  ${(o.rps / s.rps).toFixed(2)}× squid req/s; p99 squid/ours ${(s.p99 / o.p99).toFixed(2)} (> 1: ours lower)`);
  }

  const variants: Array<{ name: string; run: () => Promise<number> }> = [
    { name: "direct", run: () => curlMiBps([]) },
    { name: "CONNECT", run: () => curlMiBps(["-p", "-x", `http://127.0.0.1:${info.http}`]) },
  ];
  if (info.socks) variants.push({ name: "SOCKS5", run: () => curlMiBps(["--socks5", `127.0.0.1:${info.socks}`]) });
  if (socatPort) variants.push({ name: "socat relay (C peer)", run: () => curlMiBps([], socatPort) });
  const seen = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  await curlMiBps(["-p", "-x", `http://127.0.0.1:${info.http}`]); // warm-up
  for (let r = 0; r < runs; r++) for (const v of variants) seen.get(v.name)!.push(await v.run());
  const direct = median(seen.get("direct")!);
  for (const v of variants) {
    const xs = seen.get(v.name)!;
    const m = median(xs);
    console.log(`${v.name} throughput: median ${m.toFixed(0)} MiB/s over ${runs} runs, ratio to direct ${(m / direct).toFixed(2)} (runs: ${xs.map((x) => x.toFixed(0)).join(" ")})`);
  }
  console.log(`network proxy RSS after the run: ${fmtRss(rssMiB(ours.proc.pid))}`);
} finally {
  await Promise.all([ours.stop(), squid.stop(), nginx.stop(), socat?.stop()]);
}
