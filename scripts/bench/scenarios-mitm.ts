/**
 * MITM scenarios of `npm run bench` (limited mode, SPEC-network §6): HTTPS GETs of a 1 KiB
 * object from a TLS nginx origin named `localhost`, through our proxy (HTTP CONNECT; SOCKS5
 * for keep-alive), through mitmproxy (`mitmdump`), and direct (the limit):
 * - keep-alive: `clients` curl processes, each fetching a run of URLs over one connection;
 * - fresh connections: one curl with `--parallel` (16 in flight), `Connection: close`, so
 *   every request is a new connection, CONNECT and TLS handshake (curl resumes TLS sessions
 *   where the server allows, as it does for users);
 * - leaf issuance (scripts/bench-leaf.ts: shared leaf key vs a fresh key per host).
 * Request counts are sized per contender from a warm-up so that each run lasts about
 * `seconds`; the figure is requests per second of wall time, with the proxy's CPU per request.
 */
import { join } from "node:path";
import type { Service, Started } from "./peers.ts";
import type { Contender, ScenarioDef } from "./rounds.ts";
import { cpuMsOf } from "./tools.ts";

export const MITM_HOST = "localhost";
const LEAF_SCRIPT = join(import.meta.dir, "..", "bench-leaf.ts");
const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

/** curl processes × requests; returns requests/s and failures. */
async function keepAlive(route: string[], url: string, clients: number, requests: number): Promise<{ rps: number; failed: number }> {
  const t0 = performance.now();
  const outs = await Promise.all(
    Array.from({ length: clients }, () => {
      const p = Bun.spawn(["curl", "-s", ...route, "-o", "/dev/null", "-w", "%{http_code}\\n", `${url}?i=[1-${requests}]`], {
        stdout: "pipe",
        stderr: "ignore",
        env: ENV,
      });
      return new Response(p.stdout).text();
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const codes = outs.join("").trim().split("\n");
  return { rps: (clients * requests) / secs, failed: clients * requests - codes.filter((c) => c === "200").length };
}

/** One curl, `--parallel` with `inFlight` transfers, each on a new connection. */
async function freshTls(route: string[], url: string, inFlight: number, requests: number): Promise<{ rps: number; failed: number }> {
  const t0 = performance.now();
  const p = Bun.spawn(
    ["curl", "-s", "--parallel", "--parallel-immediate", "--parallel-max", String(inFlight), ...route, "-H", "Connection: close",
      "-o", "/dev/null", "-w", "%{http_code} %{exitcode} %{errormsg}\\n", `${url}?i=[1-${requests}]`],
    { stdout: "pipe", stderr: "ignore", env: ENV },
  );
  const out = await new Response(p.stdout).text();
  await p.exited;
  const secs = (performance.now() - t0) / 1000;
  const lines = out.trim().split("\n");
  const ok = lines.filter((l) => l.startsWith("200 ")).length;
  if (ok < requests) {
    // "<http_code> <curl exit code> <curl's error text>" of each failure, counted.
    const tally = new Map<string, number>();
    for (const l of lines) if (!l.startsWith("200 ")) tally.set(l, (tally.get(l) ?? 0) + 1);
    process.stderr.write(`[bench] fresh HTTPS: ${requests - ok} of ${requests} failed: ${JSON.stringify(Object.fromEntries(tally))}\n`);
  }
  return { rps: requests / secs, failed: requests - ok };
}

export interface MitmScenarioOptions {
  /** Our limited-mode proxy with the MITM on, and its CA file. */
  ours: { service: Service; http: number; socks: number; caCert: string };
  mitmproxy: Started;
  /** PEM of the CA of mitmproxy (in its confdir), when it runs. */
  mitmproxyCa: string;
  originPort: number;
  originCert: string;
  seconds: number;
  clients: number;
}

/** Requests per run so that a run lasts about `seconds`, from a short warm-up. */
async function sized(warm: () => Promise<{ rps: number }>, seconds: number, divisor: number, min: number, max: number): Promise<number> {
  const { rps } = await warm();
  return Math.round(Math.min(max, Math.max(min, (rps * seconds) / divisor)));
}

/** The MITM scenario definitions; `prepare()` must be awaited before running them (warm-up and sizing). */
export function mitmScenarios(o: MitmScenarioOptions): { prepare(): Promise<void>; scenarios: ScenarioDef[] } {
  const url = `https://${MITM_HOST}:${o.originPort}/small`;
  const routes: Array<{ name: string; route: string[]; pids: () => number[]; keepAliveOnly?: boolean }> = [
    { name: "ours", route: ["--cacert", o.ours.caCert, "-x", `http://127.0.0.1:${o.ours.http}`], pids: () => o.ours.service.pids() },
    {
      name: "ours SOCKS5",
      route: ["--cacert", o.ours.caCert, "-x", `socks5h://127.0.0.1:${o.ours.socks}`],
      pids: () => o.ours.service.pids(),
      keepAliveOnly: true,
    },
  ];
  if (o.mitmproxy.ok) {
    const s = o.mitmproxy.service;
    routes.push({ name: "mitmproxy", route: ["--cacert", o.mitmproxyCa, "-x", `http://127.0.0.1:${s.port}`], pids: () => s.pids() });
  }
  routes.push({ name: "direct", route: ["--cacert", o.originCert], pids: () => [] });

  const kaRequests = new Map<string, number>();
  const freshRequests = new Map<string, number>();
  const measured = (
    name: string,
    pids: () => number[],
    work: () => Promise<{ rps: number; failed: number }>,
    requests: () => number,
  ): Contender => ({
    name,
    async run() {
      const ps = pids();
      const before = cpuMsOf(ps);
      const r = await work();
      const after = cpuMsOf(ps);
      const cpu = ps.length && before !== null && after !== null ? ((after - before) * 1000) / requests() : undefined;
      return { value: r.rps, cpu, errors: r.failed };
    },
  });

  const keepAliveContenders = routes.map((r) =>
    measured(r.name, r.pids, () => keepAlive(r.route, url, o.clients, kaRequests.get(r.name)!), () => o.clients * kaRequests.get(r.name)!),
  );
  const freshContenders = routes
    .filter((r) => !r.keepAliveOnly)
    .map((r) => measured(r.name, r.pids, () => freshTls(r.route, url, 16, freshRequests.get(r.name)!), () => freshRequests.get(r.name)!));

  // One bench-leaf run measures both ways; the second contender of a round reuses it.
  let leafRun: { figures: Promise<[number, number]>; used: Set<string> } | null = null;
  const leafFigures = async (): Promise<[number, number]> => {
    const p = Bun.spawn([process.execPath, LEAF_SCRIPT, "200", "1"], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(p.stdout).text();
    await p.exited;
    const m = out.match(/([\d.]+) ms\/host \(shared key\), ([\d.]+) ms\/host/);
    if (!m) throw new Error(`bench-leaf printed: ${out.trim()}`);
    return [Number(m[1]), Number(m[2])];
  };
  const leaf: Contender[] = ["shared key (ours)", "fresh key per host"].map((name, i) => ({
    name,
    async run() {
      if (!leafRun || leafRun.used.has(name)) leafRun = { figures: leafFigures(), used: new Set() };
      leafRun.used.add(name);
      return { value: (await leafRun.figures)[i]! };
    },
  }));

  const peerRatios = (names: string[]): Array<[string, string]> =>
    names.flatMap((ours) => [...(o.mitmproxy.ok ? [[ours, "mitmproxy"] as [string, string]] : []), [ours, "direct"] as [string, string]]);
  const unavailable = o.mitmproxy.ok ? [] : [{ name: o.mitmproxy.name, reason: o.mitmproxy.reason }];
  return {
    async prepare() {
      for (const r of routes) {
        // Warm-ups long enough that process start and the first handshake do not dominate
        // (an underestimated rate would shorten the faster contender's runs the most).
        kaRequests.set(r.name, await sized(() => keepAlive(r.route, url, o.clients, 200), o.seconds, o.clients, 100, 10000));
        if (!r.keepAliveOnly) freshRequests.set(r.name, await sized(() => freshTls(r.route, url, 16, 200), o.seconds, 1, 100, 20000));
      }
    },
    scenarios: [
      {
        id: "mitm-keepalive",
        title: `MITM: HTTPS keep-alive GET 1 KiB, ${o.clients} curl clients`,
        unit: "req/s",
        higherIsBetter: true,
        cpuUnit: "µs/req",
        contenders: keepAliveContenders,
        unavailable,
        ratios: peerRatios(["ours", "ours SOCKS5"]),
      },
      {
        id: "mitm-fresh",
        title: "MITM: HTTPS fresh connections, GET 1 KiB, 16 in flight (curl --parallel, Connection: close)",
        unit: "req/s",
        higherIsBetter: true,
        cpuUnit: "µs/req",
        contenders: freshContenders,
        unavailable,
        ratios: peerRatios(["ours"]),
      },
      {
        id: "mitm-leaf",
        title: "MITM: leaf certificate issuance (200 hosts per run)",
        unit: "ms/host",
        higherIsBetter: false,
        contenders: leaf,
        unavailable: [],
        ratios: [["shared key (ours)", "fresh key per host"]],
      },
    ],
  };
}
