/**
 * Benchmark: codex-network-proxy side by side with its peers on loopback.
 * - HTTP forward (absolute-form GET of a 1 KiB object, keep-alive, wrk) vs squid.
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
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, have, runWrk, spawnChild, waitForPort } from "./bench/tools.ts";

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
for (const b of ["wrk", "nginx", "squid", "curl"]) if (!have(b)) throw new Error(`${b} not found on PATH`);
if (!(await Bun.file(BIN).exists())) throw new Error(`${BIN} missing: run npm run build`);

const dir = mkdtempSync(join(tmpdir(), "bench-network-"));
// mkdtemp makes the folder 0700; nginx workers run as an unprivileged user when started by root.
chmodSync(dir, 0o755);
mkdirSync(join(dir, "www"), { recursive: true });
mkdirSync(join(dir, "nginx"), { recursive: true });
writeFileSync(join(dir, "www", "small"), "x".repeat(1024));
writeFileSync(join(dir, "www", "big"), "");
truncateSync(join(dir, "www", "big"), mib * 1024 * 1024); // sparse file: no disk I/O

const upPort = freePort();
writeFileSync(
  join(dir, "nginx.conf"),
  `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx/body; proxy_temp_path ${dir}/nginx/proxy;
  fastcgi_temp_path ${dir}/nginx/fcgi; uwsgi_temp_path ${dir}/nginx/uwsgi; scgi_temp_path ${dir}/nginx/scgi;
  server { listen 127.0.0.1:${upPort}; root ${dir}/www; } }
`,
);
const nginx = spawnChild(["nginx", "-p", dir, "-c", join(dir, "nginx.conf")]);
await waitForPort(upPort);

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
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

try {
  if (!values["skip-forward"]) {
    const url = `http://127.0.0.1:${info.http}/`;
    await runWrk(url, { seconds: 2, connections, script: forwardScript });
    await runWrk(`http://127.0.0.1:${squidPort}/`, { seconds: 2, connections, script: forwardScript });
    const fwdOurs = await runWrk(url, { seconds, connections, script: forwardScript });
    const fwdSquid = await runWrk(`http://127.0.0.1:${squidPort}/`, { seconds, connections, script: forwardScript });
    console.log(`HTTP forward: ours ${fwdOurs.rps.toFixed(0)} req/s p99 ${fwdOurs.p99ms.toFixed(2)} ms (errors ${fwdOurs.errors}); squid ${fwdSquid.rps.toFixed(0)} req/s p99 ${fwdSquid.p99ms.toFixed(2)} ms (errors ${fwdSquid.errors}); ratio ${(fwdOurs.rps / fwdSquid.rps).toFixed(2)}`);
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
  const rss = Number(readFileSync(`/proc/${ours.proc.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;
  console.log(`network proxy RSS after the run: ${rss.toFixed(1)} MiB`);
} finally {
  await Promise.all([ours.stop(), squid.stop(), nginx.stop(), socat?.stop()]);
}
