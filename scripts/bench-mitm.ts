/**
 * Benchmark: limited-mode HTTPS through the MITM (SPEC-network §6) side by side with
 * mitmproxy (the peer named in the goals: `mitmdump` in regular proxy mode with its own CA,
 * no addons, `-q`, `block_global=false`, upstream verified against the origin's certificate,
 * `stream_large_bodies=1m` so large bodies pass through instead of being buffered) and with the
 * same requests sent directly to the TLS origin (nginx).
 *
 * Both of our front ends are measured: HTTP CONNECT (TLS via `upgradeTLS`) and SOCKS5 (the
 * peeked ClientHello forces the node:tls bridge).
 * - keep-alive GETs of a 1 KiB object: `--clients` curl processes, each fetching
 *   `--requests` URLs over one connection (curl URL globbing), total requests per second;
 * - one download of `--mib` MiB, MB/s;
 * - leaf issuance, ms per host.
 * Every variant runs once per round for `--runs` rounds, the order rotating every round, and
 * the medians are reported with the ratios (ours / mitmproxy, ours / direct). On a small
 * machine the clients (curl, TLS) and the origin share the CPUs with the proxy, so wall-clock
 * throughput is capped by the direct figure; the CPU time the proxy process itself spent per
 * request (ours: this process; mitmproxy: /proc/<pid>/stat) is reported too, as efficiency.
 * Our proxy runs in this process (injected resolver: allowed.test → 127.0.0.1); curl, nginx
 * and mitmdump are separate processes (curl `--connect-to` maps allowed.test for mitmdump).
 * Asserts nothing.
 *
 * Usage: bun scripts/bench-mitm.ts [--requests 2000] [--clients 8] [--mib 256] [--runs 3]
 * Needs: nginx, curl, openssl on PATH; mitmdump optional (apt-get install mitmproxy).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "../src/log.ts";
import { parseConfig } from "../src/network/config.ts";
import { loadOrCreateCa } from "../src/network/mitm/ca.ts";
import { createLeafKey, issueLeaf } from "../src/network/mitm/leaf.ts";
import { startNetworkProxy } from "../src/network/server.ts";
import { cpuMs, freePort, have, median, spawnChild, startStaticNginx, waitForPort } from "./bench/tools.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    clients: { type: "string", default: "8" },
    mib: { type: "string", default: "256" },
    runs: { type: "string", default: "3" },
  },
});
const requests = Math.min(100_000, Math.max(10, Number(values.requests)));
const clients = Math.min(64, Math.max(1, Number(values.clients)));
const mib = Math.min(4096, Math.max(8, Number(values.mib)));
const runs = Math.min(21, Math.max(1, Number(values.runs)));
for (const b of ["nginx", "curl", "openssl"]) if (!have(b)) throw new Error(`${b} not found on PATH`);

const dir = mkdtempSync(join(tmpdir(), "bench-mitm-"));
const originKey = join(dir, "origin.key");
const originCert = join(dir, "origin.pem");
const gen = Bun.spawnSync([
  "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
  "-keyout", originKey, "-out", originCert, "-days", "2", "-subj", "/CN=allowed.test",
  "-addext", "subjectAltName=DNS:allowed.test",
]);
if (gen.exitCode !== 0) throw new Error(`openssl failed: ${gen.stderr.toString()}`);

const { port: upPort, child: nginx } = await startStaticNginx(dir, { mib, tls: { cert: originCert, key: originKey } });

// mitmproxy peer: regular (explicit proxy) mode, its own CA in its confdir, pass-through.
const mitmdumpPort = have("mitmdump") ? freePort() : null;
const mitmConf = join(dir, "mitmproxy");
const mitmdump = mitmdumpPort
  ? spawnChild(
      [
        "mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", String(mitmdumpPort),
        "--set", `confdir=${mitmConf}`, "--set", "block_global=false",
        "--set", `ssl_verify_upstream_trusted_ca=${originCert}`, "--set", "stream_large_bodies=1m",
      ],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir } },
    )
  : null;
if (mitmdumpPort) await waitForPort(mitmdumpPort);

// The MITM's upstream client reads extra trust anchors from the environment on first use.
process.env.NODE_EXTRA_CA_CERTS = originCert;
const config = parseConfig(
  `[network_proxy]
mode = "limited"
proxy_url = "http://127.0.0.1:0"
admin_url = "http://127.0.0.1:0"
socks_url = "http://127.0.0.1:0"
[network_proxy.policy]
allowed_domains = ["allowed.test"]
allow_local_binding = true
[network_proxy.mitm]
enabled = true
`,
  join(dir, "config.toml"),
);
const proxy = await startNetworkProxy({
  config,
  configFile: null,
  resolver: async (h) => {
    if (h === "allowed.test") return ["127.0.0.1"];
    throw new Error(`ENOTFOUND ${h}`);
  },
  log: createLogger({ level: "error" }),
  handleSignals: false,
});
const caPath = config.mitm.caCertPath;
const viaMitm = ["--cacert", caPath, "-x", `http://127.0.0.1:${proxy.ports.http}`];
// SOCKS5 peeks the ClientHello, so its MITM runs TLS through the node:tls bridge.
const viaSocks = ["--cacert", caPath, "-x", `socks5h://127.0.0.1:${proxy.ports.socks}`];
const direct = ["--cacert", originCert, "--resolve", `allowed.test:${upPort}:127.0.0.1`];
// mitmdump resolves CONNECT targets itself: curl sends CONNECT 127.0.0.1 with SNI allowed.test.
const viaMitmproxy = mitmdumpPort
  ? ["--cacert", join(mitmConf, "mitmproxy-ca-cert.pem"), "-x", `http://127.0.0.1:${mitmdumpPort}`,
      "--connect-to", `allowed.test:${upPort}:127.0.0.1:${upPort}`]
  : null;
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

/** `clients` curls × `requests` keep-alive GETs; requests per second over all of them. */
async function keepAliveRps(route: string[]): Promise<{ rps: number; failed: number }> {
  const t0 = performance.now();
  const runs = Array.from({ length: clients }, () => {
    const p = Bun.spawn(
      ["curl", "-s", ...route, "-o", "/dev/null", "-w", "%{http_code}\\n", `https://allowed.test:${upPort}/small?i=[1-${requests}]`],
      { stdout: "pipe", stderr: "ignore", env },
    );
    return new Response(p.stdout).text();
  });
  const outs = await Promise.all(runs);
  const secs = (performance.now() - t0) / 1000;
  const codes = outs.join("").trim().split("\n");
  return { rps: (clients * requests) / secs, failed: codes.filter((c) => c !== "200").length };
}

/** One download of the big object; MB/s as curl measured it. */
async function downloadMBps(route: string[]): Promise<number> {
  const p = Bun.spawn(
    ["curl", "-s", ...route, "-o", "/dev/null", "-w", "%{http_code} %{speed_download}", `https://allowed.test:${upPort}/big`],
    { stdout: "pipe", stderr: "ignore", env },
  );
  const [code, speed] = (await new Response(p.stdout).text()).split(" ");
  if (code !== "200") throw new Error(`download failed: HTTP ${code}`);
  return Number(speed) / 1e6;
}

/** CPU seconds (user + system) used so far by the proxy behind `name`; null for direct. */
function proxyCpuSeconds(name: string): number | null {
  if (name === "mitmproxy") {
    const ms = cpuMs(mitmdump!.proc.pid);
    return ms === null ? null : ms / 1000;
  }
  if (name === "direct TLS") return null;
  const u = process.cpuUsage(); // our proxy runs in this process; curl and nginx do not
  return (u.user + u.system) / 1e6;
}

interface Measured {
  median: number;
  all: number[];
  /** Median proxy CPU milliseconds per unit of work (request or MB), or null. */
  cpuPerUnit: number | null;
}

/** Run every variant once per round, rotating the order; medians per variant. */
async function interleaved(
  variants: Array<{ name: string; route: string[] }>,
  measure: (route: string[]) => Promise<{ value: number; units: number }>,
): Promise<Map<string, Measured>> {
  const got = new Map<string, { xs: number[]; cpu: number[] }>(variants.map((v) => [v.name, { xs: [], cpu: [] }]));
  for (let r = 0; r < runs; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    for (const v of order) {
      const before = proxyCpuSeconds(v.name);
      const m = await measure(v.route);
      const after = proxyCpuSeconds(v.name);
      const g = got.get(v.name)!;
      g.xs.push(m.value);
      if (before !== null && after !== null) g.cpu.push(((after - before) * 1000) / m.units);
    }
  }
  return new Map(
    [...got].map(([k, g]) => [k, { median: median(g.xs), all: g.xs, cpuPerUnit: g.cpu.length ? median(g.cpu) : null }]),
  );
}

const variants = [
  { name: "through MITM", route: viaMitm },
  { name: "SOCKS5 + MITM", route: viaSocks },
  { name: "direct TLS", route: direct },
  ...(viaMitmproxy ? [{ name: "mitmproxy", route: viaMitmproxy }] : []),
];

try {
  // Warm-ups (JIT, leaf issued, pools; the first large body through a process runs slower).
  for (const v of variants) await keepAliveRps(v.route);
  for (const v of variants) await downloadMBps(v.route);
  let failed = 0;
  const rps = await interleaved(variants, async (route) => {
    const r = await keepAliveRps(route);
    failed += r.failed;
    return { value: r.rps, units: clients * requests };
  });
  const dl = await interleaved(variants, async (route) => ({ value: await downloadMBps(route), units: (mib * 1024 * 1024) / 1e6 }));

  const ca = await loadOrCreateCa(caPath, config.mitm.caKeyPath, { create: false });
  const key = await createLeafKey();
  for (let i = 0; i < 50; i++) issueLeaf(ca, key, `warm${i}.test`);
  const n = 500;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) issueLeaf(ca, key, `h${i}.bench.test`);
  const leafMs = (performance.now() - t0) / n;

  const report = (title: string, unit: string, per: string, m: Map<string, Measured>) => {
    console.log(`${title} (medians of ${runs} interleaved runs):`);
    for (const [name, { median: x, all, cpuPerUnit }] of m) {
      const cpu = cpuPerUnit === null ? "" : `, proxy CPU ${cpuPerUnit.toFixed(3)} ms/${per}`;
      console.log(`  ${name.padEnd(14)} ${x.toFixed(0).padStart(7)} ${unit}${cpu}   (runs: ${all.map((v) => v.toFixed(0)).join(" ")})`);
    }
    const ours = m.get("through MITM")!;
    const socks = m.get("SOCKS5 + MITM")!;
    const peer = m.get("mitmproxy");
    console.log(`  ratio          ${(ours.median / m.get("direct TLS")!.median).toFixed(2)}× direct`);
    if (peer) {
      console.log(`  ratio          ${(ours.median / peer.median).toFixed(1)}× mitmproxy throughput (SOCKS5 + MITM: ${(socks.median / peer.median).toFixed(1)}×)`);
      if (peer.cpuPerUnit && ours.cpuPerUnit && socks.cpuPerUnit) {
        console.log(`  ratio          ${(peer.cpuPerUnit / ours.cpuPerUnit).toFixed(1)}× mitmproxy CPU efficiency (SOCKS5 + MITM: ${(peer.cpuPerUnit / socks.cpuPerUnit).toFixed(1)}×)`);
      }
    }
  };
  report(`MITM keep-alive GET 1 KiB, ${clients} clients × ${requests} (${failed} failed)`, "req/s", "req", rps);
  report(`MITM download ${mib} MiB`, "MB/s ", "MB", dl);
  console.log(`leaf issuance  ${leafMs.toFixed(3)} ms/host`);
  if (!mitmdump) console.log("mitmdump not on PATH: the mitmproxy comparison was not run");
} finally {
  await proxy.stop();
  await Promise.all([nginx.stop(), mitmdump?.stop()]);
}
