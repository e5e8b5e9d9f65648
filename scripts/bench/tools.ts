/**
 * Shared pieces of the benchmark scripts: spawning peers, waiting for a port, running wrk
 * and parsing its summary. Benchmarks compare our proxies with a peer (nginx, squid, a
 * direct connection) in the same run and report ratios; nothing here asserts timings.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A spawned child with a `stop()` that kills it and waits for exit. */
export interface Child {
  proc: ReturnType<typeof Bun.spawn>;
  stop(): Promise<void>;
}

/** Spawn `cmd` with piped stderr; throws when the binary is missing. */
export function spawnChild(cmd: string[], opts: { stdin?: "pipe" | "ignore"; env?: Record<string, string> } = {}): Child {
  const proc = Bun.spawn(cmd, {
    stdin: opts.stdin ?? "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: opts.env ?? { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  return {
    proc,
    async stop() {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(t);
    },
  };
}

/** Resolve once a TCP connect to 127.0.0.1:port succeeds; bounded to ~10 s (200 attempts). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          open(s) {
            s.end();
            resolve(true);
          },
          connectError() {
            resolve(false);
          },
          data() {},
        },
      }).catch(() => resolve(false));
    });
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`port ${port} did not open`);
}

/** Read a child's stderr until a line matching `re` appears; returns the match. */
export async function waitForStderr(child: Child, re: RegExp): Promise<RegExpMatchArray> {
  const reader = (child.proc.stderr as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let text = "";
  for (let i = 0; i < 10_000; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    const m = text.match(re);
    if (m) {
      reader.releaseLock();
      return m;
    }
  }
  throw new Error(`child exited before printing ${re}: ${text}`);
}

/** Ask the kernel for a free port (bind 0, read, close). Only for peers that need a port in a config file. */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

export interface WrkResult {
  rps: number;
  p99ms: number;
  errors: number;
}

/** Run wrk for `seconds` with `connections` against `url`, optional Lua `script` text. */
export async function runWrk(url: string, opts: { seconds: number; connections: number; script?: string }): Promise<WrkResult> {
  const args = ["wrk", "-t1", `-c${opts.connections}`, `-d${opts.seconds}s`, "--latency"];
  const scriptDir = opts.script ? mkdtempSync(join(tmpdir(), "wrk-")) : null;
  if (scriptDir) {
    const f = join(scriptDir, "s.lua");
    await Bun.write(f, opts.script!);
    args.push("-s", f);
  }
  args.push(url);
  const p = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0);
  const p99raw = out.match(/\s99%\s+([\d.]+)(us|ms|s)/);
  const unit = p99raw?.[2] === "us" ? 0.001 : p99raw?.[2] === "s" ? 1000 : 1;
  const p99ms = p99raw ? Number(p99raw[1]) * unit : NaN;
  const nonOk = Number(out.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  const sockErr = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const errors = nonOk + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p99ms, errors };
}

/** Whether an executable exists on PATH. */
export function have(bin: string): boolean {
  return Bun.which(bin) !== null;
}

/** Median of a non-empty list (mean of the middle two for even lengths). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * CPU time (user + system, milliseconds) used so far by process `pid` and its threads, from
 * `/proc/<pid>/stat` (Linux; clock ticks assumed 100 Hz, the Linux default). null elsewhere.
 */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * CPU milliseconds (user + system) of several processes together, including what their
 * reaped children used (cutime + cstime: socat forks a child per connection); null if any is
 * unreadable.
 */
export function cpuMsOf(pids: number[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      sum += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
      return null;
    }
  }
  return sum;
}

/**
 * Memory of `pid` in MiB from /proc (Linux): resident set (`rss`) split into anonymous
 * (`anon`: the private heap and stacks) and file-backed (`file`: mapped executable pages,
 * clean and shared with the page cache), the peak resident set (`hwm`, VmHWM), and the
 * private part of the resident set (`private`: Private_Clean + Private_Dirty of
 * smaps_rollup). null when the process is gone.
 */
export function memInfo(pid: number): { rss: number; anon: number; file: number; hwm: number; private: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const roll = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kib = (text: string, k: string) => Number(text.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0) / 1024;
    return {
      rss: kib(status, "VmRSS"),
      anon: kib(status, "RssAnon"),
      file: kib(status, "RssFile"),
      hwm: kib(status, "VmHWM"),
      private: kib(roll, "Private_Clean") + kib(roll, "Private_Dirty"),
    };
  } catch {
    return null;
  }
}

/** Read and discard a child's stderr from now on, so a chatty child never blocks on a full pipe. */
export function drainStderr(child: Child): void {
  const stream = child.proc.stderr as ReadableStream<Uint8Array>;
  if (stream.locked) return;
  void (async () => {
    const reader = stream.getReader();
    for (;;) {
      const { done } = await reader.read().catch(() => ({ done: true }));
      if (done) return;
    }
  })();
}

/** Child process ids of `pid` (Linux `/proc/<pid>/task/<pid>/children`), e.g. nginx's worker. */
export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8");
    return text.trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Start nginx (1 worker) as a static origin in `dir`: `/small` (1 KiB) and `/big` (a sparse
 * file of `mib` MiB, so no disk I/O), plain or TLS with the given PEM files. Returns the port
 * and the child. `dir` is made 0755: nginx workers started by root run as nobody.
 */
export async function startStaticNginx(
  dir: string,
  opts: { mib: number; tls?: { cert: string; key: string } },
): Promise<{ port: number; child: Child }> {
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "www"), { recursive: true });
  mkdirSync(join(dir, "nginx"), { recursive: true });
  writeFileSync(join(dir, "www", "small"), "x".repeat(1024));
  writeFileSync(join(dir, "www", "big"), "");
  truncateSync(join(dir, "www", "big"), opts.mib * 1024 * 1024);
  const port = freePort();
  const listen = opts.tls
    ? `listen 127.0.0.1:${port} ssl; ssl_certificate ${opts.tls.cert}; ssl_certificate_key ${opts.tls.key};`
    : `listen 127.0.0.1:${port};`;
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx/body; proxy_temp_path ${dir}/nginx/proxy;
  fastcgi_temp_path ${dir}/nginx/fcgi; uwsgi_temp_path ${dir}/nginx/uwsgi; scgi_temp_path ${dir}/nginx/scgi;
  server { ${listen} root ${dir}/www; } }
`,
  );
  const child = spawnChild(["nginx", "-p", dir, "-c", join(dir, "nginx.conf")]);
  await waitForPort(port);
  return { port, child };
}
