/**
 * Benchmark: limited-mode HTTPS through the MITM (SPEC-network §6) against the same requests
 * sent directly to the TLS origin (nginx). mitmproxy is the peer named in the goals; when
 * `mitmdump` is on PATH it is measured the same way, otherwise only the direct baseline is.
 *
 * Both front ends are measured: HTTP CONNECT (TLS via `upgradeTLS`) and SOCKS5 (the peeked
 * ClientHello forces the node:tls bridge).
 * - keep-alive GETs of a 1 KiB object: `--clients` curl processes, each fetching
 *   `--requests` URLs over one connection (curl URL globbing), total requests per second;
 * - one download of `--mib` MiB, MB/s;
 * - leaf issuance, ms per host.
 * The proxy runs in this process (injected resolver: allowed.test → 127.0.0.1); curl and
 * nginx are separate processes. Prints figures and ratios; asserts nothing.
 *
 * Usage: bun scripts/bench-mitm.ts [--requests 2000] [--clients 8] [--mib 256]
 * Needs: nginx, curl, openssl on PATH.
 */
import { chmodSync, mkdirSync, mkdtempSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "../src/log.ts";
import { parseConfig } from "../src/network/config.ts";
import { loadOrCreateCa } from "../src/network/mitm/ca.ts";
import { createLeafKey, issueLeaf } from "../src/network/mitm/leaf.ts";
import { startNetworkProxy } from "../src/network/server.ts";
import { freePort, have, spawnChild, waitForPort } from "./bench/tools.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "2000" },
    clients: { type: "string", default: "8" },
    mib: { type: "string", default: "256" },
  },
});
const requests = Math.min(100_000, Math.max(10, Number(values.requests)));
const clients = Math.min(64, Math.max(1, Number(values.clients)));
const mib = Math.min(4096, Math.max(8, Number(values.mib)));
for (const b of ["nginx", "curl", "openssl"]) if (!have(b)) throw new Error(`${b} not found on PATH`);

const dir = mkdtempSync(join(tmpdir(), "bench-mitm-"));
chmodSync(dir, 0o755); // nginx workers started by root run as nobody and must read www/
mkdirSync(join(dir, "www"));
mkdirSync(join(dir, "nginx"));
writeFileSync(join(dir, "www", "small"), "x".repeat(1024));
writeFileSync(join(dir, "www", "big"), "");
truncateSync(join(dir, "www", "big"), mib * 1024 * 1024); // sparse: no disk I/O

// The origin's own certificate (its own trust anchor), trusted by the MITM's upstream client.
const originKey = join(dir, "origin.key");
const originCert = join(dir, "origin.pem");
const gen = Bun.spawnSync([
  "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
  "-keyout", originKey, "-out", originCert, "-days", "2", "-subj", "/CN=allowed.test",
  "-addext", "subjectAltName=DNS:allowed.test",
]);
if (gen.exitCode !== 0) throw new Error(`openssl failed: ${gen.stderr.toString()}`);

const upPort = freePort();
writeFileSync(
  join(dir, "nginx.conf"),
  `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx/body; proxy_temp_path ${dir}/nginx/proxy;
  fastcgi_temp_path ${dir}/nginx/fcgi; uwsgi_temp_path ${dir}/nginx/uwsgi; scgi_temp_path ${dir}/nginx/scgi;
  server { listen 127.0.0.1:${upPort} ssl; ssl_certificate ${originCert}; ssl_certificate_key ${originKey};
    root ${dir}/www; } }
`,
);
const nginx = spawnChild(["nginx", "-p", dir, "-c", join(dir, "nginx.conf")]);
await waitForPort(upPort);

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

try {
  await keepAliveRps(viaMitm); // warm-up (JIT, leaf issued, pools)
  const mitm = await keepAliveRps(viaMitm);
  const base = await keepAliveRps(direct);
  const socks = await keepAliveRps(viaSocks);
  await downloadMBps(viaMitm); // warm-up: the first large body through the process runs slower (JIT)
  const mitmDl = await downloadMBps(viaMitm);
  const socksDl = await downloadMBps(viaSocks);
  const baseDl = await downloadMBps(direct);

  const ca = await loadOrCreateCa(caPath, config.mitm.caKeyPath, { create: false });
  const key = await createLeafKey();
  for (let i = 0; i < 50; i++) issueLeaf(ca, key, `warm${i}.test`);
  const n = 500;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) issueLeaf(ca, key, `h${i}.bench.test`);
  const leafMs = (performance.now() - t0) / n;

  console.log(`MITM keep-alive GET 1 KiB, ${clients} clients × ${requests}:`);
  console.log(`  through MITM   ${mitm.rps.toFixed(0)} req/s (${mitm.failed} failed)`);
  console.log(`  SOCKS5 + MITM  ${socks.rps.toFixed(0)} req/s (${socks.failed} failed)`);
  console.log(`  direct TLS     ${base.rps.toFixed(0)} req/s (${base.failed} failed)`);
  console.log(`  ratio          ${(mitm.rps / base.rps).toFixed(2)}× direct`);
  console.log(`MITM download ${mib} MiB:`);
  console.log(`  through MITM   ${mitmDl.toFixed(0)} MB/s`);
  console.log(`  SOCKS5 + MITM  ${socksDl.toFixed(0)} MB/s`);
  console.log(`  direct TLS     ${baseDl.toFixed(0)} MB/s`);
  console.log(`  ratio          ${(mitmDl / baseDl).toFixed(2)}× direct`);
  console.log(`leaf issuance  ${leafMs.toFixed(3)} ms/host`);
  if (!have("mitmdump")) console.log("mitmdump not on PATH: the mitmproxy comparison was not run");
} finally {
  await proxy.stop();
  await nginx.stop();
}
