/**
 * Soak (issue 8, SPEC-network §12): mixed load on both executables for `--minutes` (default
 * 10), printing each process's RSS and open descriptors every `--every` seconds (default 10)
 * with the operations done meanwhile. Not part of the tests; the plateau goes in the README.
 *
 * Processes (children, sources run by bun unless `--responses-bin` / `--network-bin` name
 * compiled executables): the responses proxy; a network proxy in full mode (plain HTTP,
 * CONNECT tunnels, SOCKS5); a network proxy in limited mode with MITM. Upstreams run here: an
 * HTTP origin (JSON, SSE), an HTTPS origin (MITM target), a TCP echo (tunnels) and a resetter
 * that drops every connection (upstream resets).
 *
 * Load, each a loop with a bounded number of workers: responses keep-alive JSON, SSE read to
 * the end, SSE aborted after the first event, fresh connections (`connection: close`); network
 * keep-alive and fresh plain HTTP, CONNECT and SOCKS5 tunnels with echo traffic, MITM GETs,
 * requests to the resetter (502), clients that send half a head and vanish.
 *
 *   bun scripts/soak.ts [--minutes 10] [--every 10] [--responses-bin PATH] [--network-bin PATH]
 */
import type { Subprocess } from "bun";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeTestPki } from "../test/helpers/pki.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    every: { type: "string", default: "10" },
    "responses-bin": { type: "string" },
    "network-bin": { type: "string" },
  },
});
const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const dir = mkdtempSync(join(tmpdir(), "codex-soak-"));
const pki = makeTestPki({ leafNames: ["localhost", "127.0.0.1"] });
writeFileSync(join(dir, "origin-ca.pem"), pki.caPem);

// ---- upstreams -------------------------------------------------------------------------
const enc = new TextEncoder();
const origin = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    const body = req.method === "POST" ? await req.text() : "";
    if (body.includes('"sse"')) {
      let n = 0;
      return new Response(
        new ReadableStream({
          async pull(c) {
            if (n++ >= 20) return c.close();
            await Bun.sleep(5);
            c.enqueue(enc.encode(`event: response.output_text.delta\ndata: {"delta":"${"x".repeat(64)}"}\n\n`));
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      );
    }
    return Response.json({ id: "resp_soak", output: [{ type: "message", content: "y".repeat(512) }] });
  },
});
const tlsOrigin = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: pki.leaf.cert, key: pki.leaf.key }, fetch: () => new Response("mitm ok") });
const echo = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (s, d) => void s.write(d) } });
const resetter = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => s.terminate(), data() {} } });

// ---- children --------------------------------------------------------------------------
interface Child {
  name: string;
  proc: Subprocess;
  ports: Record<string, number>;
}

async function spawnChild(name: string, argv: string[], env: Record<string, string>, patterns: Record<string, RegExp>, stdin?: string): Promise<Child> {
  const proc = Bun.spawn(argv, { stdin: stdin === undefined ? "ignore" : "pipe", stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
  if (stdin !== undefined && proc.stdin && typeof proc.stdin !== "number") {
    proc.stdin.write(stdin);
    await proc.stdin.end();
  }
  let err = "";
  const ports: Record<string, number> = {};
  const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  while (Object.keys(ports).length < Object.keys(patterns).length) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} exited: ${err}`);
    err += dec.decode(value, { stream: true });
    for (const [k, re] of Object.entries(patterns)) {
      const m = re.exec(err);
      if (m) ports[k] = Number(m[1]);
    }
  }
  // Keep draining stderr (decision lines) so the child never blocks on a full pipe.
  void (async () => {
    while (!(await reader.read()).done);
  })();
  return { name, proc, ports };
}

const responsesCmd = values["responses-bin"] ? [values["responses-bin"]] : [BUN, join(ROOT, "src/responses/main.ts")];
const networkCmd = values["network-bin"] ? [values["network-bin"]] : [BUN, join(ROOT, "src/network/main.ts")];
const netPorts = { http: /HTTP proxy listening on 127\.0\.0\.1:(\d+)/, socks: /SOCKS5 proxy listening on 127\.0\.0\.1:(\d+)/ };

function networkConfig(name: string, mode: "full" | "limited"): string {
  const home = join(dir, name);
  const file = join(dir, `${name}.toml`);
  writeFileSync(
    file,
    `[network_proxy]\nmode = "${mode}"\n[network_proxy.policy]\nallowed_domains = ["127.0.0.1", "localhost"]\nallow_local_binding = true\n` +
      `[network_proxy.mitm]\nenabled = ${mode === "limited"}\nca_cert_path = "${home}/ca.pem"\nca_key_path = "${home}/ca.key"\n`,
  );
  return file;
}
const listenArgs = ["--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
const responses = await spawnChild("responses", [...responsesCmd, "--upstream-url", `http://127.0.0.1:${origin.port}/v1/responses`], { HOME: dir }, { http: /listening on 127\.0\.0\.1:(\d+)/ }, "sk-soak_KEY\n");
const full = await spawnChild("network-full", [...networkCmd, "--config", networkConfig("full", "full"), ...listenArgs], { HOME: dir, CODEX_HOME: dir }, netPorts);
const limited = await spawnChild(
  "network-mitm",
  [...networkCmd, "--config", networkConfig("limited", "limited"), ...listenArgs],
  { HOME: dir, CODEX_HOME: dir, NODE_EXTRA_CA_CERTS: join(dir, "origin-ca.pem") },
  netPorts,
);
const mitmCa = readFileSync(join(dir, "limited", "ca.pem"), "utf8");
const children = [responses, full, limited];

// ---- load ------------------------------------------------------------------------------
const counts = new Map<string, { ok: number; err: number }>();
const count = (name: string, ok: boolean) => {
  const c = counts.get(name) ?? { ok: 0, err: 0 };
  if (ok) c.ok++;
  else c.err++;
  counts.set(name, c);
};
let running = true;

/** One raw exchange: connect, write, collect until `done(text)` or close; bounded by 10 s. */
function raw(port: number, payload: Uint8Array | string, done: (t: string) => boolean = () => false, abortAfterWrite = false): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const timer = setTimeout(() => resolve(text), 10_000);
    const finish = (s?: { end(): void }) => {
      clearTimeout(timer);
      s?.end();
      resolve(text);
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(s) {
          s.write(payload);
          if (abortAfterWrite) {
            s.terminate();
            finish();
          }
        },
        data(s, d) {
          text += Buffer.from(d).toString("latin1");
          if (done(text)) finish(s);
        },
        close: () => finish(),
        error: () => finish(),
      },
    }).catch(() => finish());
  });
}

const rp = `http://127.0.0.1:${responses.ports.http}/v1/responses`;
const fullProxy = `http://127.0.0.1:${full.ports.http}`;
const mitmProxy = `http://127.0.0.1:${limited.ports.http}`;
const scenarios: Record<string, () => Promise<boolean>> = {
  "responses keep-alive": async () => (await fetch(rp, { method: "POST", body: '{"input":"hi"}', proxy: undefined })).text().then((t) => t.includes("resp_soak")),
  "responses SSE": async () => (await (await fetch(rp, { method: "POST", body: '{"stream":"sse"}' })).text()).split("\n\n").length > 20,
  "responses SSE aborted": async () => {
    const ac = new AbortController();
    const r = await fetch(rp, { method: "POST", body: '{"stream":"sse"}', signal: ac.signal });
    await r.body!.getReader().read();
    ac.abort();
    return true;
  },
  "responses fresh conn": async () =>
    (await raw(responses.ports.http!, `POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`)).startsWith("HTTP/1.1 200"),
  "network keep-alive": async () => (await (await fetch(`http://127.0.0.1:${origin.port}/json`, { proxy: fullProxy })).text()).includes("resp_soak"),
  "network fresh conn": async () =>
    (await raw(full.ports.http!, `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nhost: 127.0.0.1:${origin.port}\r\nconnection: close\r\n\r\n`)).startsWith("HTTP/1.1 200"),
  "CONNECT tunnel": async () => {
    const data = "t".repeat(1024);
    const t = await raw(full.ports.http!, `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n\r\n${data}`, (s) => s.endsWith(data));
    return t.endsWith(data);
  },
  "SOCKS5 tunnel": async () => {
    const ip = [127, 0, 0, 1];
    const data = "s".repeat(1024);
    const msg = Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 1, ...ip, echo.port >> 8, echo.port & 255]), Buffer.from(data)]);
    const t = await raw(full.ports.socks!, msg, (s) => s.endsWith(data));
    return t.endsWith(data);
  },
  "MITM GET": async () => (await (await fetch(`https://127.0.0.1:${tlsOrigin.port}/m`, { proxy: mitmProxy, tls: { ca: mitmCa } })).text()) === "mitm ok",
  "upstream reset": async () => (await fetch(`http://127.0.0.1:${resetter.port}/r`, { proxy: fullProxy })).status === 502,
  "half head, vanish": async () => {
    await raw(full.ports.http!, "GET http://127.0.0.1/ HTTP/1.1\r\nhost: 127", undefined, true);
    await raw(responses.ports.http!, "POST /v1/responses HTTP/1.1\r\nhost: 127", undefined, true);
    return true;
  },
};

async function worker(name: string, fn: () => Promise<boolean>) {
  while (running) {
    try {
      count(name, await fn());
    } catch {
      count(name, false);
    }
  }
}
const WORKERS_EACH = 2;
const workers = Object.entries(scenarios).flatMap(([name, fn]) => Array.from({ length: WORKERS_EACH }, () => worker(name, fn)));

// ---- sampling --------------------------------------------------------------------------
function sample(pid: number): { rssMiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { rssMiB: Math.round(rssKb / 102.4) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
}
const every = Number(values.every) * 1000;
const end = Date.now() + Number(values.minutes) * 60_000;
const start = Date.now();
console.log(`soak: ${values.minutes} min, ${workers.length} workers; columns: t(s) then per process RSS MiB / open fds; ops ok/err since the last line`);
let lastOps = 0;
while (Date.now() < end) {
  await Bun.sleep(every);
  const cols = children.map((c) => {
    const s = sample(c.proc.pid);
    return `${c.name} ${s.rssMiB} MiB ${s.fds} fds`;
  });
  let ok = 0;
  let err = 0;
  for (const c of counts.values()) {
    ok += c.ok;
    err += c.err;
  }
  console.log(`${String(Math.round((Date.now() - start) / 1000)).padStart(4)}s  ${cols.join(" | ")} | ops ${ok - lastOps} (${err} err total)`);
  lastOps = ok;
}
running = false;
await Promise.race([Promise.all(workers), Bun.sleep(15_000)]);
console.log("per scenario (ok/err):");
for (const [name, c] of counts) console.log(`  ${name.padEnd(24)} ${c.ok}/${c.err}`);
for (const c of children) c.proc.kill();
origin.stop(true);
tlsOrigin.stop(true);
echo.stop(true);
resetter.stop(true);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
