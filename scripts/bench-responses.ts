/**
 * Benchmark: codex-responses-api-proxy vs nginx as a key-injecting reverse proxy, side by
 * side on loopback, in front of the same upstream (a Bun server answering a small SSE
 * stream). Load from wrk (POST /v1/responses, keep-alive). Prints req/s and p99 for both
 * and the ratios (ours / nginx; p99 ratio nginx / ours so > 1 means we are better).
 *
 * Usage: bun scripts/bench-responses.ts [--seconds 10] [--connections 32]
 * Needs: wrk and nginx on PATH (apt-get install wrk nginx-light), `npm run build` done.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, have, runWrk, spawnChild, waitForPort, waitForStderr } from "./bench/tools.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "10" }, connections: { type: "string", default: "32" } },
});
const seconds = Math.min(120, Math.max(1, Number(values.seconds)));
const connections = Math.min(1024, Math.max(1, Number(values.connections)));
const ROOT = join(import.meta.dir, "..");
const BIN = join(ROOT, "dist", "codex-responses-api-proxy");
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

const proxy = spawnChild([BIN, "--upstream-url", `http://127.0.0.1:${upPort}/v1/responses`], { stdin: "pipe" });
(proxy.proc.stdin as import("bun").FileSink).write(KEY + "\n");
await (proxy.proc.stdin as import("bun").FileSink).end();
const ourPort = Number((await waitForStderr(proxy, /listening on 127\.0\.0\.1:(\d+)/))[1]);

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
try {
  // Warm-up both, then measure alternately so neither profits from a quieter machine.
  await runWrk(`http://127.0.0.1:${ourPort}/v1/responses`, { seconds: 2, connections, script });
  await runWrk(`http://127.0.0.1:${nginxPort}/v1/responses`, { seconds: 2, connections, script });
  const ours = await runWrk(`http://127.0.0.1:${ourPort}/v1/responses`, { seconds, connections, script });
  const peer = await runWrk(`http://127.0.0.1:${nginxPort}/v1/responses`, { seconds, connections, script });
  console.log(`connections=${connections} seconds=${seconds}`);
  console.log(`codex-responses-api-proxy: ${ours.rps.toFixed(0)} req/s, p99 ${ours.p99ms.toFixed(2)} ms, errors ${ours.errors}`);
  console.log(`nginx (key-injecting):     ${peer.rps.toFixed(0)} req/s, p99 ${peer.p99ms.toFixed(2)} ms, errors ${peer.errors}`);
  console.log(`ratio req/s ours/nginx: ${(ours.rps / peer.rps).toFixed(2)}`);
  console.log(`ratio p99 nginx/ours:   ${(peer.p99ms / ours.p99ms).toFixed(2)}`);
} finally {
  await Promise.all([proxy.stop(), nginx.stop(), upstream.stop()]);
}
