/**
 * Benchmark: codex-responses-api-proxy vs nginx as a key-injecting reverse proxy, side by
 * side on loopback, in front of the same upstream (a Bun server answering a small SSE
 * stream, in its own process). Load from wrk (POST /v1/responses, keep-alive, one thread).
 * nginx runs one worker, as our proxy runs one JS thread. `--runs` interleaved rounds (the
 * order alternates every round, so neither profits from a quieter machine); prints the
 * medians of req/s and p99 for both, the ratios (ours / nginx; p99 ratio nginx / ours, so
 * > 1 means we are better), and the CPU time each proxy process spent per request (Linux).
 *
 * Usage: bun scripts/bench-responses.ts [--seconds 10] [--connections 32] [--runs 5] [--binary PATH] [--log-level warn|info|omit]
 * `--log-level` (default warn, as nginx runs with `access_log off`): `info` measures the cost of
 * our access line per request (stderr drained to nowhere); `omit` passes no flag (binaries
 * older than the flag).
 * Needs: wrk and nginx on PATH (apt-get install wrk nginx-light), `npm run build` done.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { childPids, cpuMs, freePort, have, median, runWrk, spawnChild, waitForPort, waitForStderr, type WrkResult } from "./bench/tools.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "32" },
    runs: { type: "string", default: "5" },
    binary: { type: "string" },
    "log-level": { type: "string", default: "warn" },
  },
});
const runs = Math.min(51, Math.max(1, Number(values.runs)));
const seconds = Math.min(120, Math.max(1, Number(values.seconds)));
const connections = Math.min(1024, Math.max(1, Number(values.connections)));
const ROOT = join(import.meta.dir, "..");
// --binary: measure another build (e.g. an older commit's) against the same peer and load.
const BIN = values.binary ?? join(ROOT, "dist", "codex-responses-api-proxy");
const KEY = "sk-bench_" + "x".repeat(40);

for (const b of ["wrk", "nginx"]) if (!have(b)) throw new Error(`${b} not found on PATH`);
if (!(await Bun.file(BIN).exists())) throw new Error(`${BIN} missing: run npm run build`);

const dir = mkdtempSync(join(tmpdir(), "bench-responses-"));
const SSE =
  'event: response.created\ndata: {"type":"response.created"}\n\n' +
  'event: response.completed\ndata: {"type":"response.completed","response":{"id":"r","status":"completed"}}\n\n';

// The upstream runs in its own process so it does not share an event loop with wrk's peers.
const upstreamScript = join(dir, "upstream.ts");
writeFileSync(
  upstreamScript,
  `const body = ${JSON.stringify(SSE)};
   const s = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, async fetch(req) {
     if (req.headers.get("authorization") !== ${JSON.stringify("Bearer " + KEY)}) return new Response("no key", { status: 401 });
     await req.arrayBuffer();
     return new Response(body, { headers: { "content-type": "text/event-stream" } });
   }});
   console.error("upstream on " + s.port);`,
);
const upstream = spawnChild([process.execPath, upstreamScript]);
const upPort = Number((await waitForStderr(upstream, /upstream on (\d+)/))[1]);

const logLevel = values["log-level"]!;
const logArgs = logLevel === "omit" ? [] : ["--log-level", logLevel];
const proxy = spawnChild([BIN, "--upstream-url", `http://127.0.0.1:${upPort}/v1/responses`, ...logArgs], { stdin: "pipe" });
(proxy.proc.stdin as import("bun").FileSink).write(KEY + "\n");
await (proxy.proc.stdin as import("bun").FileSink).end();
const ourPort = Number((await waitForStderr(proxy, /listening on 127\.0\.0\.1:(\d+)/))[1]);
// Keep reading stderr (access lines): a full pipe would stall the proxy and measure the pipe.
void (async () => {
  for await (const _ of proxy.proc.stderr as ReadableStream<Uint8Array>);
})();

const nginxPort = freePort();
mkdirSync(join(dir, "nginx"), { recursive: true });
writeFileSync(
  join(dir, "nginx.conf"),
  `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx/body;
  proxy_temp_path ${dir}/nginx/proxy;
  fastcgi_temp_path ${dir}/nginx/fcgi; uwsgi_temp_path ${dir}/nginx/uwsgi; scgi_temp_path ${dir}/nginx/scgi;
  upstream up { server 127.0.0.1:${upPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${nginxPort};
    location = /v1/responses {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer ${KEY}";
      proxy_buffering off;
    }
  }
}
`,
);
const nginx = spawnChild(["nginx", "-p", dir, "-c", join(dir, "nginx.conf")]);
await waitForPort(nginxPort);

const script = `wrk.method = "POST"
wrk.body = '{"model":"gpt-test","input":"hello","stream":true}'
wrk.headers["Content-Type"] = "application/json"
`;
/** One measured wrk run and the CPU the proxy process used per request (µs), when known. */
interface Sample extends WrkResult {
  cpuUsPerReq: number | null;
}

async function measure(port: number, pid: number | undefined): Promise<Sample> {
  const before = pid === undefined ? null : cpuMs(pid);
  const r = await runWrk(`http://127.0.0.1:${port}/v1/responses`, { seconds, connections, script });
  const after = pid === undefined ? null : cpuMs(pid);
  const n = r.rps * seconds;
  return { ...r, cpuUsPerReq: before !== null && after !== null && n > 0 ? ((after - before) * 1000) / n : null };
}

function summary(xs: Sample[]) {
  const cpu = xs.map((x) => x.cpuUsPerReq).filter((x): x is number => x !== null);
  return {
    rps: median(xs.map((x) => x.rps)),
    p99: median(xs.map((x) => x.p99ms)),
    cpu: cpu.length ? median(cpu) : null,
    errors: xs.reduce((a, x) => a + x.errors, 0),
    list: xs.map((x) => `${x.rps.toFixed(0)}/${x.p99ms.toFixed(2)}`).join(" "),
  };
}

try {
  // nginx's master forks one worker; that worker does the proxying.
  const nginxWorker = childPids(nginx.proc.pid)[0];
  // Warm-up both, then interleave the measured runs, alternating the order every round.
  await runWrk(`http://127.0.0.1:${ourPort}/v1/responses`, { seconds: 2, connections, script });
  await runWrk(`http://127.0.0.1:${nginxPort}/v1/responses`, { seconds: 2, connections, script });
  const ours: Sample[] = [];
  const peer: Sample[] = [];
  for (let r = 0; r < runs; r++) {
    if (r % 2 === 0) {
      ours.push(await measure(ourPort, proxy.proc.pid));
      peer.push(await measure(nginxPort, nginxWorker));
    } else {
      peer.push(await measure(nginxPort, nginxWorker));
      ours.push(await measure(ourPort, proxy.proc.pid));
    }
  }
  const o = summary(ours);
  const n = summary(peer);
  const cpu = (c: number | null) => (c === null ? "" : `, CPU ${c.toFixed(1)} µs/request`);
  console.log(`connections=${connections} seconds=${seconds}, medians of ${runs} interleaved runs`);
  console.log(`codex-responses-api-proxy: ${o.rps.toFixed(0)} req/s, p99 ${o.p99.toFixed(2)} ms, errors ${o.errors}${cpu(o.cpu)} (runs req/s/p99: ${o.list})`);
  console.log(`nginx (key-injecting):     ${n.rps.toFixed(0)} req/s, p99 ${n.p99.toFixed(2)} ms, errors ${n.errors}${cpu(n.cpu)} (runs req/s/p99: ${n.list})`);
  console.log(`ratio req/s ours/nginx: ${(o.rps / n.rps).toFixed(2)}`);
  console.log(`ratio p99 nginx/ours:   ${(n.p99 / o.p99).toFixed(2)}`);
} finally {
  await Promise.all([proxy.stop(), nginx.stop(), upstream.stop()]);
}
