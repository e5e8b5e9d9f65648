/**
 * Measure how many plaintext copies of the API key live in the responses proxy's memory
 * (SPEC §1.3 "beyond": the goal is exactly one, the locked page).
 *
 *   sudo bun scripts/key-copies.ts [--requests N] [--binary PATH] [--concurrency C] [--tls] [--full-scan] [--control] [--verbose] [--github-oidc]
 *   sudo bun scripts/key-copies.ts --network [--requests N] [--concurrency C] [--env-source] [--binary PATH] [--full-scan] [--control]
 *
 * Starts the compiled proxy (building it into dist/ when missing) with a random key piped
 * on stdin, sends N requests (default 1000) through it to a fake upstream served by this
 * script (a different process, so its copies do not count), then reads every readable
 * region of /proc/<pid>/mem and counts occurrences of the key (as Latin-1/ASCII bytes and as
 * UTF-16LE, the two ways JavaScriptCore stores strings). Prints
 * `key copies after N requests: <count>`. `--tls` makes the fake upstream https (a throwaway
 * CA passed through NODE_EXTRA_CA_CERTS), the production path (BoringSSL in the proxy).
 * Only resident or swapped pages are read (see dataRuns); `--full-scan` reads every readable
 * byte instead (several GB of reserved address space, slow) to cross-check that shortcut.
 * `--control` also puts the key in the proxy's environment, a copy the scan must find.
 * `--github-oidc` measures workload identity mode instead (SPEC §1.8; scripts/lib/key-copies-oidc.ts):
 * the request token, the current access token, retired access tokens and the subject JWT.
 *
 * `--network` measures a MITM hook secret in the network proxy instead (SPEC-network §10;
 * scripts/lib/key-copies-network.ts): N requests through intercepted CONNECT tunnels
 * (`--concurrency` connections, default 1), the secret from `secret_file` or, with
 * `--env-source`, from `secret_env_var`.
 *
 * Must run as root: the proxy sets PR_SET_DUMPABLE=0, which makes /proc/<pid>/mem owned
 * by root (and ptrace-protected) for everybody else, including the proxy's own user.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { makeTestPki } from "../test/helpers/pki.ts";
import { needles as encodings, scan } from "./lib/mem-scan.ts";
import { runGithubOidc } from "./lib/key-copies-oidc.ts";
import { runNetworkKeyCopies } from "./lib/key-copies-network.ts";

const ROOT = resolve(import.meta.dir, "..");

interface Options {
  requests: number;
  binary: string;
  concurrency: number;
  tls: boolean;
  fullScan: boolean;
  control: boolean;
  verbose: boolean;
  githubOidc: boolean;
  network: boolean;
  envSource: boolean;
  concurrencySet: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { requests: 1000, binary: join(ROOT, "dist", "codex-responses-api-proxy"), concurrency: 8, tls: false, fullScan: false, control: false, verbose: false, githubOidc: false, network: false, envSource: false, concurrencySet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--requests") o.requests = Number(next());
    else if (a === "--binary") o.binary = resolve(next());
    else if (a === "--concurrency") {
      o.concurrency = Number(next());
      o.concurrencySet = true;
    } else if (a === "--network") o.network = true;
    else if (a === "--env-source") o.envSource = true;
    else if (a === "--verbose") o.verbose = true;
    else if (a === "--tls") o.tls = true;
    else if (a === "--full-scan") o.fullScan = true;
    else if (a === "--control") o.control = true;
    else if (a === "--github-oidc") o.githubOidc = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.requests) || o.requests < 0) throw new Error("--requests must be a non-negative integer");
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new Error("--concurrency must be a positive integer");
  return o;
}

function randomKey(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  return "sk-keycopies-" + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (process.platform !== "linux") throw new Error("key-copies needs Linux /proc");
  if (process.getuid?.() !== 0) {
    process.stderr.write("warning: not root; /proc/<pid>/mem of a non-dumpable process is readable only by root\n");
  }
  if (o.network) {
    return runNetworkKeyCopies({
      requests: o.requests,
      concurrency: o.concurrencySet ? o.concurrency : 1,
      binary: o.binary === join(ROOT, "dist", "codex-responses-api-proxy") ? undefined : o.binary,
      source: o.envSource ? "env" : "file",
      control: o.control,
      fullScan: o.fullScan,
    });
  }
  if (!existsSync(o.binary)) {
    process.stderr.write(`building ${o.binary} ...\n`);
    const r = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts"), "--only", "responses"], { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("build failed");
  }

  if (o.githubOidc) return runGithubOidc(o);

  const key = randomKey();
  const pki = o.tls ? makeTestPki() : null;
  const tmp = mkdtempSync(join(tmpdir(), "key-copies-"));
  const caFile = join(tmp, "ca.pem");
  if (pki) writeFileSync(caFile, pki.caPem);
  const upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    ...(pki ? { tls: { cert: pki.leaf.cert, key: pki.leaf.key } } : {}),
    async fetch(req) {
      const auth = req.headers.get("authorization");
      await req.arrayBuffer();
      if (auth !== `Bearer ${key}`) return new Response("bad key", { status: 401 });
      return new Response('event: response.completed\ndata: {"type":"response.completed"}\n\n', {
        headers: { "content-type": "text/event-stream" },
      });
    },
  });

  const upstreamUrl = pki ? `https://localhost:${upstream.port}/v1/responses` : `http://127.0.0.1:${upstream.port}/v1/responses`;
  // --log-level warn: no access line per request (this stderr is not read after the listening line).
  const proxy = Bun.spawn([o.binary, "--upstream-url", upstreamUrl, "--log-level", "warn"], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ...(pki ? { NODE_EXTRA_CA_CERTS: caFile } : {}),
      // Negative control: a key in the environment must be found (the figure then exceeds 1).
      ...(o.control ? { KEY_COPIES_CONTROL: key } : {}),
    },
  });
  proxy.stdin.write(key + "\n");
  await proxy.stdin.end();
  const reader = proxy.stderr.getReader();
  let head = "";
  while (!head.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`proxy exited before listening: ${head}`);
    head += new TextDecoder().decode(value);
  }
  const m = head.match(/listening on 127\.0\.0\.1:(\d+)/);
  if (!m) throw new Error(`unexpected proxy output: ${head}`);
  const base = `http://127.0.0.1:${m[1]}`;

  try {
    // JavaScriptCore keeps strings as Latin-1 when it can and as UTF-16 otherwise: count both.
    const needles = encodings(key);
    const report = (label: string) => {
      const hits = needles.flatMap((n) => scan(proxy.pid, n.bytes, o.fullScan).map((h) => ({ ...h, enc: n.enc })));
      if (o.verbose) {
        for (const h of hits) {
          const withPrefix = (() => {
            const fd = openSync(`/proc/${proxy.pid}/mem`, "r");
            const b = Buffer.alloc(7);
            try {
              readSync(fd, b, 0, 7, h.address - 7);
            } catch {
              /* region start */
            } finally {
              closeSync(fd);
            }
            return b.toString("latin1") === "Bearer ";
          })();
          process.stderr.write(
            `  ${label}: 0x${h.address.toString(16)} in ${h.region.perms} ${h.region.name || "[anon]"} ` +
              `(region 0x${h.region.start.toString(16)}+0x${(h.address - h.region.start).toString(16)}, size ${h.region.end - h.region.start})` +
              `${h.enc === "utf16le" ? " as UTF-16" : ""}${withPrefix ? " preceded by 'Bearer '" : ""}\n`,
          );
        }
      }
      return hits.length;
    };
    const atStart = report("start");
    process.stderr.write(`key copies after startup: ${atStart}\n`);

    let sent = 0;
    let failed = 0;
    const worker = async () => {
      while (sent < o.requests) {
        sent++;
        const res = await fetch(`${base}/v1/responses`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-test", input: "hello", stream: true }),
        });
        await res.arrayBuffer();
        if (res.status !== 200) failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(o.requests, 1)) }, worker));
    if (failed) process.stderr.write(`warning: ${failed} requests did not get 200\n`);

    const count = report("after");
    // Scanner self-check: the upstream URL is certainly in the proxy's memory; if it is not
    // found, the scan is blind and the key figure means nothing.
    const control = scan(proxy.pid, Buffer.from(upstreamUrl, "latin1"), o.fullScan).length;
    process.stderr.write(`scanner self-check: upstream URL found ${control} times\n`);
    if (control === 0) throw new Error("scanner self-check failed: could not find the upstream URL in the proxy's memory");
    process.stdout.write(`key copies after ${o.requests} requests: ${count}\n`);
    return 0;
  } finally {
    proxy.kill("SIGTERM");
    await proxy.exited;
    upstream.stop(true);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`key-copies: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
