/**
 * `npm run bench`: every scenario for every contender in one run, on loopback, side by side.
 * Each scenario runs `--rounds` rounds; in each round every contender runs once, the order
 * rotating by one every round; figures are medians with their spread, and ratios ours ÷ peer
 * are given as the ratio of the medians and as the median and spread of the per-round ratios.
 *
 * Scenarios (scripts/bench/scenarios-*.ts): start to listening and idle memory; the responses
 * proxy vs nginx (`worker_processes auto` and 1 worker) and the upstream itself, and the time
 * to the first SSE event; HTTP forward vs squid and tinyproxy; CONNECT and SOCKS5 throughput
 * vs a direct download and socat; fresh connections (CONNECT vs squid and tinyproxy, SOCKS5 vs
 * microsocks and dante); MITM keep-alive and fresh-connection HTTPS vs mitmproxy, leaf
 * issuance; peak RSS under load. A peer that is not installed or does not start is reported
 * "unavailable". Prints Markdown on stdout (progress on stderr) and writes JSON (`--json`).
 * Every process is started by this script and stopped by PID at the end (also on Ctrl-C).
 *
 * Usage: npm run bench -- [--rounds 3] [--seconds 5] [--connections 64] [--concurrency 16]
 *   [--mib 1024] [--clients 8] [--only id,id] [--json dist/bench.json]
 *   [--responses-bin PATH] [--network-bin PATH] [--busy N]
 * `--only` takes scenario ids or their prefixes: start, responses, forward, tunnel, connect,
 * socks5, mitm (e.g. `--only connect-fresh,socks5`).
 * Needs: `npm run build`; wrk, curl, nginx, openssl; peers from apt (README, Performance).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startDante, startMicrosocks, startMitmdump, startSocat, startSquid, startTinyproxy, type Started } from "./bench/peers.ts";
import { startNetworkProxy, startResponsesProxy, writeMitmConfig } from "./bench/ours.ts";
import { renderMemory, renderScenario, renderTargets, type MemoryRow } from "./bench/report.ts";
import { runScenario, stat, type ScenarioDef, type ScenarioResult } from "./bench/rounds.ts";
import { checkTargets } from "./bench/targets.ts";
import { MITM_HOST, mitmScenarios } from "./bench/scenarios-mitm.ts";
import { networkScenarios } from "./bench/scenarios-network.ts";
import { BENCH_KEY, responsesScenarios, startResponsesPeers, startSseUpstream } from "./bench/scenarios-responses.ts";
import { startContenders } from "./bench/scenarios-start.ts";
import { have, memInfo, spawnChild, startStaticNginx, type Child } from "./bench/tools.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "64" },
    concurrency: { type: "string", default: "16" },
    mib: { type: "string", default: "1024" },
    clients: { type: "string", default: "8" },
    only: { type: "string" },
    json: { type: "string", default: "dist/bench.json" },
    // Measure other builds (e.g. an older commit's) against the same peers and load.
    "responses-bin": { type: "string" },
    "network-bin": { type: "string" },
    // Busy-machine runs: this many CPU hogs (`yes > /dev/null`) run through every scenario.
    busy: { type: "string", default: "0" },
  },
});
const clamp = (v: string | undefined, lo: number, hi: number) => Math.min(hi, Math.max(lo, Number(v)));
const rounds = clamp(values.rounds, 1, 21);
const seconds = clamp(values.seconds, 1, 60);
const connections = clamp(values.connections, 1, 1024);
const concurrency = clamp(values.concurrency, 1, 256);
const mib = clamp(values.mib, 16, 8192);
const clients = clamp(values.clients, 1, 64);
const busy = clamp(values.busy, 0, 8);
const only = values.only ? new Set(values.only.split(",")) : null;
const wanted = (id: string) => !only || only.has(id) || only.has(id.split("-")[0]!);

const ROOT = join(import.meta.dir, "..");
const RESPONSES_BIN = resolve(values["responses-bin"] ?? join(ROOT, "dist", "codex-responses-api-proxy"));
const NETWORK_BIN = resolve(values["network-bin"] ?? join(ROOT, "dist", "codex-network-proxy"));
for (const b of ["wrk", "curl", "nginx", "openssl"]) if (!have(b)) throw new Error(`${b} not found on PATH (see README, Performance)`);
for (const b of [RESPONSES_BIN, NETWORK_BIN]) if (!(await Bun.file(b).exists())) throw new Error(`${b} missing: run npm run build`);

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const dir = mkdtempSync(join(tmpdir(), "bench-"));
chmodSync(dir, 0o755); // nginx workers started by root run as nobody and must reach their files
for (const d of ["origin", "tls-origin"]) mkdirSync(join(dir, d));
/** Everything started, stopped in reverse order at the end. */
const stops: Array<() => Promise<void>> = [];
const keep = (s: Started): Started => {
  if (s.ok) stops.push(() => s.service.stop());
  else log(`${s.name} unavailable: ${s.reason}`);
  return s;
};
const keepChild = (c: Child) => stops.push(() => c.stop());
let stopping: Promise<void> | null = null;
const stopAll = () =>
  (stopping ??= (async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  })());
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
process.on("SIGTERM", () => void stopAll().then(() => process.exit(143)));

const loadBefore = loadavg();
const t0 = performance.now();
const results: ScenarioResult[] = [];
const memoryRows: MemoryRow[] = [];
try {
  // Origins: plain nginx (1 KiB and `mib` MiB objects), TLS nginx for the MITM, the SSE upstream.
  const origin = await startStaticNginx(join(dir, "origin"), { mib });
  keepChild(origin.child);
  for (let i = 0; i < busy; i++) keepChild(spawnChild(["yes"]));
  const sse = await startSseUpstream(dir);
  keepChild(sse.child);
  const originKey = join(dir, "origin.key");
  const originCert = join(dir, "origin.pem");
  const gen = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", originKey, "-out", originCert, "-days", "2", "-subj", `/CN=${MITM_HOST}`, "-addext", `subjectAltName=DNS:${MITM_HOST}`]);
  if (gen.exitCode !== 0) throw new Error(`openssl: ${gen.stderr.toString()}`);
  const tlsOrigin = await startStaticNginx(join(dir, "tls-origin"), { mib: 16, tls: { cert: originCert, key: originKey } });
  keepChild(tlsOrigin.child);

  // Ours.
  const responses = await startResponsesProxy(RESPONSES_BIN, `http://127.0.0.1:${sse.port}/v1/responses`, BENCH_KEY);
  keepChild(responses.child);
  const net = await startNetworkProxy(NETWORK_BIN, join(dir, "network-home"), "ours", [
    "--allow", "127.0.0.1", "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
  keepChild(net.child);
  const mitmHome = join(dir, "mitm-home");
  const mitmConfig = writeMitmConfig(mitmHome, MITM_HOST);
  const mitm = await startNetworkProxy(NETWORK_BIN, mitmHome, "ours", ["--config", mitmConfig], { NODE_EXTRA_CA_CERTS: originCert });
  keepChild(mitm.child);

  // Peers.
  const responsesPeers = (await startResponsesPeers(dir, sse.port)).map(keep);
  const squid = keep(await startSquid(dir));
  const tinyproxy = keep(await startTinyproxy(dir));
  const socat = keep(await startSocat(origin.port));
  const microsocks = keep(await startMicrosocks());
  const dante = keep(await startDante(dir));
  const mitmproxy = keep(await startMitmdump(dir, originCert));

  const start = startContenders({ dir, responsesBin: RESPONSES_BIN, networkBin: NETWORK_BIN, mitmConfig, key: BENCH_KEY, upPort: sse.port, nginxAvailable: true });
  const mitmSet = mitmScenarios({
    ours: { service: mitm.service, http: mitm.ports.http, socks: mitm.ports.socks, caCert: join(mitmHome, "network_proxy", "mitm", "ca.pem") },
    mitmproxy,
    mitmproxyCa: join(dir, "mitmproxy", "mitmproxy-ca-cert.pem"),
    originPort: tlsOrigin.port,
    originCert,
    seconds,
    clients,
  });
  const startDef: ScenarioDef = {
      id: "start",
      title: "start to listening (spawn → first accepted connect)",
      unit: "ms",
      higherIsBetter: false,
      contenders: start.contenders,
      unavailable: [],
      ratios: [["ours responses", "nginx"], ["ours network", "nginx"], ["ours network (MITM)", "nginx"]],
  };
  const defs: ScenarioDef[] = [
    startDef,
    ...responsesScenarios({ ours: responses, peers: responsesPeers, upPort: sse.port, seconds, connections }),
    ...networkScenarios({ ours: { service: net.service, http: net.ports.http, socks: net.ports.socks }, originPort: origin.port, squid, tinyproxy, socat, microsocks, dante, seconds, connections, concurrency }),
    ...mitmSet.scenarios,
  ].filter((d) => wanted(d.id));
  if (defs.some((d) => d.id.startsWith("mitm-"))) {
    log("MITM warm-up and sizing");
    await mitmSet.prepare();
  }
  // VmHWM only grows: read right after the scenario that loads a process with
  // `--connections` connections, it is that load's peak (later scenarios: 1 GiB tunnels, MITM).
  const peakOf = (pids: number[]) => pids.reduce((a, p) => a + (memInfo(p)?.hwm ?? 0), 0) || null;
  const loadPeak = new Map<string, number | null>();
  const afterLoad: Record<string, Array<[string, () => number[]]>> = {
    "responses-rps": [["ours responses", () => responses.pids()]],
    "forward-rps": [["ours network", () => net.service.pids()]],
    "mitm-keepalive": [["ours network (MITM)", () => mitm.service.pids()]],
  };
  for (const def of defs) {
    log(`scenario ${def.id}`);
    results.push(await runScenario(def, rounds, log));
    for (const [name, pids] of afterLoad[def.id] ?? []) loadPeak.set(name, peakOf(pids()));
  }

  // Memory: idle from the starts, peak from the long-running instances after all the load.
  const idleOf = (name: string) => {
    const xs = start.idle.get(name);
    if (!xs?.length) return null;
    const m = (k: "rss" | "anon" | "file" | "private") => stat(xs.map((x) => x[k]))!.median;
    return { rss: m("rss"), anon: m("anon"), file: m("file"), private: m("private") };
  };
  const nginxAuto = responsesPeers[0]!;
  const row = (name: string, pids: number[]): MemoryRow => ({ name, idle: idleOf(name), loadPeak: loadPeak.get(name) ?? null, peak: peakOf(pids) });
  memoryRows.push(
    row("ours responses", responses.pids()),
    row("ours network", net.service.pids()),
    row("ours network (MITM)", mitm.service.pids()),
    { ...row("nginx", nginxAuto.ok ? nginxAuto.service.pids() : []), name: "nginx (idle: 1 worker; peak: workers auto, summed)" },
  );
} finally {
  await stopAll();
}

const loadAfter = loadavg();
const minutes = (performance.now() - t0) / 60_000;
const cpu = cpus()[0]?.model ?? "unknown CPU";
const machine = `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${process.platform} ${Bun.spawnSync(["uname", "-r"]).stdout.toString().trim()}`;
const command = [
  `npm run bench -- --rounds ${rounds} --seconds ${seconds} --connections ${connections} --concurrency ${concurrency}`,
  `--mib ${mib} --clients ${clients}`,
  ...(values.only ? [`--only ${values.only}`] : []),
  ...(busy ? [`--busy ${busy}`] : []),
  ...(values["responses-bin"] ? [`--responses-bin ${values["responses-bin"]}`] : []),
  ...(values["network-bin"] ? [`--network-bin ${values["network-bin"]}`] : []),
].join(" ");
const header = [
  `## npm run bench, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
  "",
  `- machine: ${machine}`,
  `- command: \`${command}\` (${minutes.toFixed(1)} min)`,
  `- load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join(" ")}, after ${loadAfter.map((x) => x.toFixed(2)).join(" ")}`,
  `- ratios are ours ÷ peer: above 1 is better for ours where higher is better, below 1 where lower is better (ms, p99, CPU)`,
];
const targets = checkTargets(results, memoryRows);
const out = [header.join("\n"), ...results.map(renderScenario), ...(memoryRows.length ? [renderMemory(memoryRows)] : []), renderTargets(targets)];
console.log(out.join("\n\n"));
writeFileSync(
  resolve(ROOT, values.json!),
  JSON.stringify({ date: new Date().toISOString(), machine, command, loadBefore, loadAfter, minutes, scenarios: results, memory: memoryRows, targets }, null, 2),
);
log(`JSON written to ${values.json}`);
