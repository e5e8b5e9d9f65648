/**
 * Micro-benchmark of the HTTP/1.1 client against a local Bun.serve upstream, next to
 * fetch(): sequential keep-alive requests, concurrent requests, and one large streamed body.
 * Usage: bun scripts/bench-http1.ts [requests=5000] [concurrency=32] [MiB=256]
 * Loopback only. Prints one line per case; never used as a test (timings vary).
 */
import { createHttp1Client } from "../src/http1/client.ts";

const [reqs = 5000, conc = 32, mib = 256] = process.argv.slice(2).map(Number);
const big = new Uint8Array(1024 * 1024).fill(0x61);
using server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  fetch(req) {
    if (new URL(req.url).pathname === "/big") {
      let left = mib;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (left-- > 0) c.enqueue(big);
            else c.close();
          },
        }),
      );
    }
    return new Response("ok");
  },
});
const base = `http://127.0.0.1:${server.port}`;
const client = createHttp1Client({ proxyEnv: null });
const host: [string, string] = ["host", `127.0.0.1:${server.port}`];

async function viaClient(path: string): Promise<number> {
  const res = await client.request({ url: new URL(base + path), method: "GET", headers: [host] });
  let n = 0;
  for await (const c of res.body) n += c.length;
  return n;
}
async function viaFetch(path: string): Promise<number> {
  const res = await fetch(base + path, { proxy: false } as RequestInit);
  return (await res.arrayBuffer()).byteLength;
}

async function run(label: string, fn: (p: string) => Promise<number>) {
  let t = performance.now();
  for (let i = 0; i < reqs; i++) await fn("/");
  const seq = reqs / ((performance.now() - t) / 1000);
  t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next++ < reqs) await fn("/");
    }),
  );
  const par = reqs / ((performance.now() - t) / 1000);
  t = performance.now();
  const bytes = await fn("/big");
  const mbps = bytes / 1048576 / ((performance.now() - t) / 1000);
  console.log(`${label}: sequential ${seq.toFixed(0)} req/s, ${conc} concurrent ${par.toFixed(0)} req/s, stream ${mbps.toFixed(0)} MiB/s`);
}

await run("http1 client", viaClient);
await run("fetch       ", viaFetch);
client.close();
