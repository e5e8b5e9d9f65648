/**
 * `scripts/key-copies.ts --network`: how many plaintext copies of a MITM hook secret live in
 * the network proxy's memory after N injected requests (SPEC-network §10 "beyond": the goal
 * is exactly one, the locked page).
 *
 * Starts the compiled network proxy (full mode, MITM on, one hook injecting
 * `authorization: Bearer <secret>` for a TLS origin served by this script), drives N
 * requests through HTTP CONNECT tunnels it intercepts (`concurrency` keep-alive connections,
 * each its own MITM tunnel), checks the origin saw the secret on every one, then counts the
 * secret in /proc/<pid>/mem (Latin-1 and UTF-16). Options:
 * - `source: "env"` reads the secret from `secret_env_var` instead of `secret_file`;
 * - `control` also puts the secret in the proxy's environment under an unrelated name, a copy
 *   the scan must find (negative control: the figure then exceeds 1).
 * A self-check finds the origin's address string in the proxy's memory, so a blind scan
 * cannot report 0 or 1 by accident.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { makeTestPki } from "../../test/helpers/pki.ts";
import { countCopies } from "./mem-scan.ts";

const ROOT = resolve(import.meta.dir, "../..");

export interface NetworkKeyCopiesOptions {
  requests: number;
  concurrency: number;
  binary?: string;
  source: "file" | "env";
  control: boolean;
  fullScan: boolean;
}

function randomSecret(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return "hook-keycopies-" + Array.from(crypto.getRandomValues(new Uint8Array(40)), (b) => alphabet[b % alphabet.length]).join("");
}

/** One keep-alive HTTPS connection through the proxy's CONNECT (MITM CA trusted). */
async function tunnel(proxyPort: number, port: number, ca: string): Promise<TLSSocket> {
  const raw = netConnect(proxyPort, "127.0.0.1");
  await new Promise<void>((ok, fail) => {
    let head = "";
    const onData = (b: Buffer) => {
      head += b.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      raw.off("data", onData);
      if (head.startsWith("HTTP/1.1 200")) ok();
      else fail(new Error(`CONNECT refused: ${head.split("\r\n")[0]}`));
    };
    raw.on("data", onData);
    raw.once("error", fail);
    raw.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  });
  const tls = tlsConnect({ socket: raw, ca });
  await new Promise<void>((ok, fail) => {
    tls.once("secureConnect", ok);
    tls.once("error", fail);
  });
  return tls;
}

/** Send `count` GETs one after another on `tls`; returns how many got 200. */
async function drive(tls: TLSSocket, port: number, count: number): Promise<number> {
  let ok = 0;
  let buf = "";
  let waiter: ((status: number) => void) | null = null;
  tls.on("data", (b: Buffer) => {
    buf += b.toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0 || !waiter) return;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
    if (buf.length < end + 4 + len) return;
    const status = Number(buf.slice(9, 12));
    buf = buf.slice(end + 4 + len);
    const w = waiter;
    waiter = null;
    w(status);
  });
  for (let i = 0; i < count; i++) {
    const status = await new Promise<number>((ok2, fail) => {
      waiter = ok2;
      tls.once("close", () => fail(new Error("connection closed")));
      tls.write(`GET /v1/items/${i} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    });
    if (status === 200) ok++;
    tls.removeAllListeners("close");
  }
  tls.end();
  return ok;
}

/** Run the measurement; prints the figure on stdout. Returns the exit code. */
export async function runNetworkKeyCopies(o: NetworkKeyCopiesOptions): Promise<number> {
  const binary = o.binary ?? join(ROOT, "dist", "codex-network-proxy");
  if (!existsSync(binary)) {
    process.stderr.write(`building ${binary} ...\n`);
    const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts"), "--only", "network"], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("build failed");
  }
  const secret = randomSecret();
  const tmp = mkdtempSync(join(tmpdir(), "key-copies-net-"));
  const pki = makeTestPki({ leafNames: ["localhost", "127.0.0.1"] });
  const originCa = join(tmp, "origin-ca.pem");
  writeFileSync(originCa, pki.caPem);
  const secretFile = join(tmp, "token");
  writeFileSync(secretFile, secret + "\n", { mode: 0o600 });
  let seen = 0;
  let wrong = 0;
  const origin = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: pki.leaf.cert, key: pki.leaf.key },
    fetch(req) {
      // Compared in this process (a different one): its copies do not count.
      if (req.headers.get("authorization") === `Bearer ${secret}`) seen++;
      else wrong++;
      return new Response("ok");
    },
  });
  const source = o.source === "file" ? `secret_file = "${secretFile}"` : `secret_env_var = "HOOK_SECRET"`;
  const config = join(tmp, "config.toml");
  writeFileSync(
    config,
    `[network_proxy]
mode = "full"
[network_proxy.policy]
allowed_domains = ["127.0.0.1:${origin.port}"]
[network_proxy.mitm]
enabled = true
ca_cert_path = "${join(tmp, "mitm", "ca.pem")}"
ca_key_path = "${join(tmp, "mitm", "ca.key")}"
[[network_proxy.mitm.hooks]]
name = "key-copies"
host = "127.0.0.1:${origin.port}"
match = { methods = ["GET"], path_prefixes = ["/v1/"] }
actions = { inject_request_headers = [{ name = "authorization", prefix = "Bearer ", ${source} }] }
`,
  );
  const proxy = Bun.spawn([binary, "run", "--config", config, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      NODE_EXTRA_CA_CERTS: originCa,
      ...(o.source === "env" ? { HOOK_SECRET: secret } : {}),
      // Negative control: a copy in the environment block that the scan must find.
      ...(o.control ? { KEY_COPIES_CONTROL: secret } : {}),
    },
  });
  try {
    // Read stderr to the end (decision lines keep coming); wait for the listening line, bounded.
    let err = "";
    const started = Promise.withResolvers<void>();
    const timer = setTimeout(() => started.reject(new Error(`proxy did not start within 20 s: ${err}`)), 20_000);
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proxy.stderr) {
        if (err.length < 65536) err += dec.decode(chunk, { stream: true });
        if (/HTTP proxy listening on [\d.]+:\d+/.test(err)) started.resolve();
      }
      started.reject(new Error(`proxy exited: ${err}`));
    })();
    try {
      await started.promise;
    } finally {
      clearTimeout(timer);
    }
    const proxyPort = Number(/HTTP proxy listening on [\d.]+:(\d+)/.exec(err)![1]);
    const mitmCa = await Bun.file(join(tmp, "mitm", "ca.pem")).text();

    const atStart = countCopies(proxy.pid, secret, o.fullScan);
    process.stderr.write(`secret copies after startup: ${atStart}\n`);
    const originPort = origin.port!;
    const per = Math.ceil(o.requests / o.concurrency);
    let left = o.requests;
    const jobs: Array<Promise<number>> = [];
    for (let c = 0; c < o.concurrency && left > 0; c++) {
      const n = Math.min(per, left);
      left -= n;
      jobs.push(tunnel(proxyPort, originPort, mitmCa).then((t) => drive(t, originPort, n)));
    }
    const ok = (await Promise.all(jobs)).reduce((a, b) => a + b, 0);
    if (ok !== o.requests || seen !== o.requests || wrong !== 0) {
      throw new Error(`${ok} of ${o.requests} requests got 200; the origin saw the secret ${seen} times and another value ${wrong} times`);
    }
    const count = countCopies(proxy.pid, secret, o.fullScan);
    const self = countCopies(proxy.pid, `127.0.0.1:${origin.port}`, o.fullScan);
    process.stderr.write(`scanner self-check: origin address found ${self} times\n`);
    if (self === 0) throw new Error("scanner self-check failed: the origin address is not in the proxy's memory");
    process.stdout.write(
      `secret copies after ${o.requests} injected requests (${o.concurrency} MITM connection${o.concurrency === 1 ? "" : "s"}, secret_${o.source === "file" ? "file" : "env_var"}${o.control ? ", control" : ""}): ${count}\n`,
    );
    return 0;
  } finally {
    proxy.kill("SIGTERM");
    await proxy.exited;
    origin.stop(true);
    rmSync(tmp, { recursive: true, force: true });
  }
}
