/**
 * Responses-proxy scenarios of `npm run bench`: POST /v1/responses under wrk (keep-alive,
 * `connections` connections) through our proxy, nginx injecting the key (`worker_processes
 * auto` and 1 worker) and straight to the upstream (the limit); and the time to the first SSE
 * event of a streamed answer (sequential requests, one keep-alive connection).
 *
 * The upstream is a Bun server in its own process answering a two-event SSE stream (checking
 * the key); a body mentioning "slow" gets its second event 20 ms after the first, so the time
 * to the first event shows whether a proxy holds bytes back.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startNginxResponses, type Service, type Started } from "./peers.ts";
import type { Contender, ScenarioDef, Unavailable } from "./rounds.ts";
import { cpuMsOf, drainStderr, runWrk, spawnChild, waitForStderr, type Child } from "./tools.ts";

export const BENCH_KEY = "sk-bench_" + "x".repeat(40);

const SSE_CREATED = 'event: response.created\ndata: {"type":"response.created"}\n\n';
const SSE_COMPLETED = 'event: response.completed\ndata: {"type":"response.completed","response":{"id":"r","status":"completed"}}\n\n';

/** Start the SSE upstream in its own process; returns its port and child. */
export async function startSseUpstream(dir: string): Promise<{ port: number; child: Child }> {
  const file = join(dir, "sse-upstream.ts");
  writeFileSync(
    file,
    `const created = ${JSON.stringify(SSE_CREATED)}, completed = ${JSON.stringify(SSE_COMPLETED)};
const s = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, async fetch(req) {
  if (req.headers.get("authorization") !== ${JSON.stringify("Bearer " + BENCH_KEY)}) return new Response("no key", { status: 401 });
  const body = await req.text();
  const headers = { "content-type": "text/event-stream" };
  if (!body.includes("slow")) return new Response(created + completed, { headers });
  return new Response(new ReadableStream({ type: "direct", async pull(c) {
    c.write(created); await c.flush(); await Bun.sleep(20); c.write(completed); c.close();
  } }), { headers });
} });
console.error("upstream on " + s.port);
`,
  );
  const child = spawnChild([process.execPath, file]);
  const port = Number((await waitForStderr(child, /upstream on (\d+)/))[1]);
  drainStderr(child);
  return { port, child };
}

const WRK_BODY = `wrk.method = "POST"
wrk.body = '{"model":"gpt-test","input":"hello","stream":true}'
wrk.headers["Content-Type"] = "application/json"
`;

/** The peers of the responses scenarios, started once for the whole run. */
export async function startResponsesPeers(dir: string, upPort: number): Promise<Started[]> {
  return [await startNginxResponses(dir, upPort, BENCH_KEY, "auto"), await startNginxResponses(dir, upPort, BENCH_KEY, 1)];
}

/** Time (ms) from sending a streamed request to the first SSE event, `n` times in a row. */
async function firstEventTimes(url: string, headers: Record<string, string>, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: '{"model":"gpt-test","input":"slow","stream":true}',
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    const t = performance.now() - t0;
    if (res.status !== 200 || !new TextDecoder().decode(first.value).includes("response.created")) {
      throw new Error(`first event: HTTP ${res.status}`);
    }
    times.push(t);
    while (!(await reader.read()).done);
  }
  return times;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** The scenario definitions for the responses proxy. */
export function responsesScenarios(opts: {
  ours: Service;
  peers: Started[];
  upPort: number;
  seconds: number;
  connections: number;
}): ScenarioDef[] {
  const { seconds, connections } = opts;
  const unavailable: Unavailable[] = opts.peers.flatMap((p) => (p.ok ? [] : [{ name: p.name, reason: p.reason }]));
  const services = [opts.ours, ...opts.peers.flatMap((p) => (p.ok ? [p.service] : []))];
  const directAuth = `wrk.headers["Authorization"] = "Bearer ${BENCH_KEY}"\n`;

  const rps: Contender[] = services.map((s) => ({
    name: s.name,
    async run() {
      const pids = s.pids();
      const before = cpuMsOf(pids);
      const r = await runWrk(`http://127.0.0.1:${s.port}/v1/responses`, { seconds, connections, script: WRK_BODY });
      const after = cpuMsOf(pids);
      const n = r.rps * seconds;
      const cpu = before !== null && after !== null && n > 0 ? ((after - before) * 1000) / n : undefined;
      return { value: r.rps, p99ms: r.p99ms, cpu, errors: r.errors };
    },
  }));
  rps.push({
    name: "direct",
    async run() {
      const r = await runWrk(`http://127.0.0.1:${opts.upPort}/v1/responses`, { seconds, connections, script: WRK_BODY + directAuth });
      return { value: r.rps, p99ms: r.p99ms, errors: r.errors };
    },
  });

  const firstEvent = (name: string, port: number, headers: Record<string, string>): Contender => ({
    name,
    async run() {
      const xs = await firstEventTimes(`http://127.0.0.1:${port}/v1/responses`, headers, 100);
      return { value: quantile(xs, 0.5), p99ms: quantile(xs, 0.99) };
    },
  });
  const ttfe = [...services.map((s) => firstEvent(s.name, s.port, {})), firstEvent("direct", opts.upPort, { authorization: `Bearer ${BENCH_KEY}` })];

  const peersOf = (names: string[]) => names.map((n) => ["ours", n] as [string, string]);
  const peerNames = [...services.slice(1).map((s) => s.name), "direct"];
  return [
    {
      id: "responses-rps",
      title: `responses proxy: POST /v1/responses, ${connections} connections (wrk)`,
      unit: "req/s",
      higherIsBetter: true,
      cpuUnit: "µs/req",
      contenders: rps,
      unavailable,
      ratios: peersOf(peerNames),
    },
    {
      id: "responses-first-event",
      title: "responses proxy: time to first SSE event (100 sequential streamed requests, median)",
      unit: "ms",
      higherIsBetter: false,
      contenders: ttfe,
      unavailable,
      ratios: peersOf(peerNames),
    },
  ];
}
