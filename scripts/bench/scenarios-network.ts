/**
 * Network-proxy scenarios of `npm run bench` (full mode, nginx as the origin):
 * - HTTP forward: absolute-form `GET /small` (1 KiB) under wrk, keep-alive, vs squid and
 *   tinyproxy;
 * - tunnel throughput: curl downloading `/big` through CONNECT and SOCKS5, vs a direct
 *   download and socat (a C relay);
 * - fresh connections: new TCP connection → CONNECT / SOCKS5 → GET → origin closes
 *   (fresh-client.ts, its own process), vs squid and tinyproxy (CONNECT), microsocks and
 *   dante (SOCKS5), and the same exchange straight to the origin.
 */
import { join } from "node:path";
import type { Service, Started } from "./peers.ts";
import type { Contender, ScenarioDef, Unavailable } from "./rounds.ts";
import { childPids, cpuMsOf, runWrk } from "./tools.ts";

const FRESH_CLIENT = join(import.meta.dir, "fresh-client.ts");

function unavailableOf(peers: Started[]): Unavailable[] {
  return peers.flatMap((p) => (p.ok ? [] : [{ name: p.name, reason: p.reason }]));
}
function servicesOf(peers: Started[]): Service[] {
  return peers.flatMap((p) => (p.ok ? [p.service] : []));
}

/** Download `url` with curl (extra `args`); MiB/s as curl measured it. */
async function curlMiBps(url: string, args: string[]): Promise<number> {
  const p = Bun.spawn(["curl", "-fsS", "-o", "/dev/null", "-w", "%{speed_download}", ...args, url], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`curl ${args.join(" ")}: ${(await new Response(p.stderr).text()).trim()}`);
  return Number(out) / (1024 * 1024);
}

/** Run fresh-client.ts once; parses its JSON line. */
async function fresh(mode: "connect" | "socks5" | "direct", port: number, originPort: number, concurrency: number, seconds: number) {
  const p = Bun.spawn(
    [process.execPath, FRESH_CLIENT, "--mode", mode, "--port", String(port), "--origin-port", String(originPort),
      "--concurrency", String(concurrency), "--seconds", String(seconds)],
    { stdout: "pipe", stderr: "pipe" },
  );
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`fresh-client: ${(await new Response(p.stderr).text()).trim().slice(0, 300)}`);
  return JSON.parse(out) as { rate: number; p99ms: number; p50ms: number; errors: number; count: number };
}

/**
 * CPU µs per unit spent by `pids` while `work` runs; `units` comes from the work's result.
 * Waits (at most 1 s) until the first pid has no children left, so the CPU of a child forked
 * per connection (socat) is counted once it is reaped (cutime/cstime).
 */
async function withCpu<T>(pids: number[], work: () => Promise<T>, units: (r: T) => number): Promise<{ r: T; cpu?: number }> {
  const before = cpuMsOf(pids);
  const r = await work();
  for (let i = 0; i < 100 && pids.length > 0 && childPids(pids[0]!).length > 0; i++) await Bun.sleep(10);
  const after = cpuMsOf(pids);
  const n = units(r);
  return { r, cpu: before !== null && after !== null && n > 0 ? ((after - before) * 1000) / n : undefined };
}

export interface NetworkScenarioOptions {
  /** Our network proxy (full mode); `http` and `socks` ports. */
  ours: { service: Service; http: number; socks: number };
  originPort: number;
  squid: Started;
  tinyproxy: Started;
  socat: Started;
  microsocks: Started;
  dante: Started;
  seconds: number;
  connections: number;
  concurrency: number;
}

/** The scenario definitions for the network proxy in full mode. */
export function networkScenarios(o: NetworkScenarioOptions): ScenarioDef[] {
  const { seconds, connections, concurrency, originPort } = o;
  const ours = o.ours.service;

  // HTTP forward: the request-target names the origin; wrk connects to the proxy.
  const forwardScript = `wrk.headers["Host"] = "127.0.0.1:${originPort}"
request = function() return wrk.format("GET", "http://127.0.0.1:${originPort}/small") end
`;
  const forwardPeers = [o.squid, o.tinyproxy];
  const forward: Contender[] = [ours, ...servicesOf(forwardPeers)].map((s) => ({
    name: s.name,
    async run() {
      const { r, cpu } = await withCpu(
        s.pids(),
        () => runWrk(`http://127.0.0.1:${s.port}/`, { seconds, connections, script: forwardScript }),
        (w) => w.rps * seconds,
      );
      return { value: r.rps, p99ms: r.p99ms, cpu, errors: r.errors };
    },
  }));

  // Throughput: one big download per run.
  const big = `http://127.0.0.1:${originPort}/big`;
  const throughput: Contender[] = [
    { name: "direct", run: async () => ({ value: await curlMiBps(big, []) }) },
    {
      name: "ours CONNECT",
      run: async () => {
        const { r, cpu } = await withCpu(ours.pids(), () => curlMiBps(big, ["-p", "-x", `http://127.0.0.1:${o.ours.http}`]), () => 1);
        return { value: r, cpu: cpu === undefined ? undefined : cpu / 1000 };
      },
    },
    {
      name: "ours SOCKS5",
      run: async () => {
        const { r, cpu } = await withCpu(ours.pids(), () => curlMiBps(big, ["--socks5", `127.0.0.1:${o.ours.socks}`]), () => 1);
        return { value: r, cpu: cpu === undefined ? undefined : cpu / 1000 };
      },
    },
  ];
  if (o.socat.ok) {
    const s = o.socat.service;
    throughput.push({
      name: "socat",
      run: async () => {
        const { r, cpu } = await withCpu(s.pids(), () => curlMiBps(`http://127.0.0.1:${s.port}/big`, []), () => 1);
        return { value: r, cpu: cpu === undefined ? undefined : cpu / 1000 };
      },
    });
  }

  const freshContender = (name: string, mode: "connect" | "socks5" | "direct", s: Service | null): Contender => ({
    name,
    async run() {
      const { r, cpu } = await withCpu(
        s?.pids() ?? [],
        () => fresh(mode, s?.port ?? originPort, originPort, concurrency, seconds),
        (f) => f.count,
      );
      return { value: r.rate, p99ms: r.p99ms, cpu: s ? cpu : undefined, errors: r.errors };
    },
  });
  const connectPeers = [o.squid, o.tinyproxy];
  const socksPeers = [o.microsocks, o.dante];
  const ofPeers = (list: Started[], mode: "connect" | "socks5") => servicesOf(list).map((s) => freshContender(s.name, mode, s));

  return [
    {
      id: "forward-rps",
      title: `HTTP forward: GET 1 KiB, ${connections} connections (wrk)`,
      unit: "req/s",
      higherIsBetter: true,
      cpuUnit: "µs/req",
      contenders: forward,
      unavailable: unavailableOf(forwardPeers),
      ratios: servicesOf(forwardPeers).map((s) => ["ours", s.name]),
    },
    {
      id: "tunnel-throughput",
      title: "tunnel throughput: one curl download of /big",
      unit: "MiB/s",
      higherIsBetter: true,
      cpuUnit: "ms/download",
      contenders: throughput,
      unavailable: unavailableOf([o.socat]),
      ratios: [
        ["ours CONNECT", "direct"],
        ["ours SOCKS5", "direct"],
        ...(o.socat.ok ? ([["ours CONNECT", "socat"], ["ours SOCKS5", "socat"]] as Array<[string, string]>) : []),
      ],
    },
    {
      id: "connect-fresh",
      title: `CONNECT fresh connections (${concurrency} in flight; connect, CONNECT, 200, GET 1 KiB, close)`,
      unit: "conn/s",
      higherIsBetter: true,
      cpuUnit: "µs/conn",
      contenders: [freshContender("ours", "connect", ours), ...ofPeers(connectPeers, "connect"), freshContender("direct", "direct", null)],
      unavailable: unavailableOf(connectPeers),
      ratios: [...servicesOf(connectPeers).map((s) => ["ours", s.name] as [string, string]), ["ours", "direct"]],
    },
    {
      id: "socks5-fresh",
      title: `SOCKS5 fresh connections (${concurrency} in flight; greeting, CONNECT, REP, GET 1 KiB, close)`,
      unit: "conn/s",
      higherIsBetter: true,
      cpuUnit: "µs/conn",
      contenders: [
        { ...freshContender("ours", "socks5", { ...ours, port: o.ours.socks }) },
        ...ofPeers(socksPeers, "socks5"),
        freshContender("direct", "direct", null),
      ],
      unavailable: unavailableOf(socksPeers),
      ratios: [...servicesOf(socksPeers).map((s) => ["ours", s.name] as [string, string]), ["ours", "direct"]],
    },
  ];
}
