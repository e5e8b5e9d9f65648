/**
 * The peers of `npm run bench` (scripts/bench.ts), each started on loopback in its own folder
 * under the run's temporary directory, stopped by PID: nginx as a key-injecting reverse proxy
 * (`worker_processes auto` or 1), squid and tinyproxy (HTTP forward, CONNECT), socat (a C TCP
 * relay), microsocks and dante (SOCKS5), mitmproxy (`mitmdump`, HTTPS interception).
 *
 * A peer whose executable is missing or that does not come up is returned as
 * `{ ok: false, reason }` and reported "unavailable"; nothing here throws for that.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { childPids, drainStderr, freePort, have, spawnChild, waitForPort, type Child } from "./tools.ts";

/** A running contender process tree. */
export interface Service {
  name: string;
  port: number;
  /** The main process and its direct children (nginx workers, dante's helpers). */
  pids(): number[];
  stop(): Promise<void>;
}

/** A started service, or why it is unavailable. */
export type Started = { ok: true; service: Service } | { ok: false; name: string; reason: string };

/** Wrap a spawned child listening on `port` as a Service. */
export function serviceOf(name: string, port: number, child: Child): Service {
  return {
    name,
    port,
    pids: () => [child.proc.pid, ...childPids(child.proc.pid)],
    stop: () => child.stop(),
  };
}

/** Start `bin` (checked on PATH) with `start`; any failure becomes `{ ok: false }`. */
async function attempt(name: string, bin: string, start: () => Promise<Service>): Promise<Started> {
  if (!have(bin)) return { ok: false, name, reason: `${bin} not on PATH` };
  try {
    return { ok: true, service: await start() };
  } catch (e) {
    return { ok: false, name, reason: e instanceof Error ? e.message.slice(0, 200) : "failed to start" };
  }
}

/** Spawn, wait (bounded) for the port; on failure the child is stopped before rethrowing. */
async function spawnListening(name: string, cmd: string[], port: number, env?: Record<string, string>): Promise<Service> {
  const child = spawnChild(cmd, { env });
  try {
    await Promise.race([
      waitForPort(port),
      child.proc.exited.then((code) => {
        throw new Error(`${name} exited with ${code}`);
      }),
    ]);
  } catch (e) {
    await child.stop();
    throw e;
  }
  drainStderr(child); // microsocks logs every connection: a full pipe would stall it
  return serviceOf(name, port, child);
}

/** Write the config of nginx injecting the key in front of `upPort` into `d`; returns its path. */
export function nginxResponsesConf(d: string, port: number, upPort: number, key: string, workers: "auto" | 1): string {
  mkdirSync(join(d, "tmp"), { recursive: true });
  const file = join(d, "nginx.conf");
  writeFileSync(
    file,
    `worker_processes ${workers}; daemon off; pid ${d}/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off;
  client_body_temp_path ${d}/tmp/body; proxy_temp_path ${d}/tmp/proxy;
  fastcgi_temp_path ${d}/tmp/fcgi; uwsgi_temp_path ${d}/tmp/uwsgi; scgi_temp_path ${d}/tmp/scgi;
  upstream up { server 127.0.0.1:${upPort}; keepalive 64; }
  server { listen 127.0.0.1:${port};
    location = /v1/responses { proxy_pass http://up; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Authorization "Bearer ${key}"; proxy_buffering off; } } }
`,
  );
  return file;
}

/** nginx injecting `Authorization: Bearer <key>` in front of `upPort`, with `workers` workers. */
export function startNginxResponses(dir: string, upPort: number, key: string, workers: "auto" | 1): Promise<Started> {
  const name = `nginx (${workers === "auto" ? "workers auto" : "1 worker"})`;
  return attempt(name, "nginx", () => {
    const d = join(dir, `nginx-responses-${workers}`);
    const port = freePort();
    const conf = nginxResponsesConf(d, port, upPort, key, workers);
    return spawnListening(name, ["nginx", "-p", d, "-c", conf], port);
  });
}

/** squid, one worker, no cache, no logs (HTTP forward and CONNECT). */
export function startSquid(dir: string): Promise<Started> {
  return attempt("squid", "squid", () => {
    const d = join(dir, "squid");
    mkdirSync(d, { recursive: true });
    const port = freePort();
    writeFileSync(
      join(d, "squid.conf"),
      `http_port 127.0.0.1:${port}
http_access allow all
cache deny all
access_log none
cache_log /dev/null
pid_filename ${d}/squid.pid
coredump_dir ${d}
workers 1
`,
    );
    return spawnListening("squid", ["squid", "-N", "-f", join(d, "squid.conf")], port);
  });
}

/** tinyproxy in the foreground, every port allowed for CONNECT, critical logs only. */
export function startTinyproxy(dir: string): Promise<Started> {
  return attempt("tinyproxy", "tinyproxy", () => {
    const d = join(dir, "tinyproxy");
    mkdirSync(d, { recursive: true });
    const port = freePort();
    writeFileSync(
      join(d, "tinyproxy.conf"),
      `Port ${port}
Listen 127.0.0.1
Timeout 600
MaxClients 1024
LogLevel Critical
Allow 127.0.0.1
DisableViaHeader Yes
`,
    );
    return spawnListening("tinyproxy", ["tinyproxy", "-d", "-c", join(d, "tinyproxy.conf")], port);
  });
}

/** socat relaying a port to `upPort` with a 512 KiB buffer (Bun reads up to 512 KiB as well). */
export function startSocat(upPort: number): Promise<Started> {
  return attempt("socat", "socat", () => {
    const port = freePort();
    return spawnListening(
      "socat",
      ["socat", "-b", "524288", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${upPort}`],
      port,
    );
  });
}

/** microsocks, no authentication. */
export function startMicrosocks(): Promise<Started> {
  return attempt("microsocks", "microsocks", () => {
    const port = freePort();
    return spawnListening("microsocks", ["microsocks", "-i", "127.0.0.1", "-p", String(port)], port);
  });
}

/** dante (`danted`), no authentication, loopback in and out, logs to /dev/null. */
export function startDante(dir: string): Promise<Started> {
  return attempt("dante", "danted", () => {
    const d = join(dir, "dante");
    mkdirSync(d, { recursive: true });
    const port = freePort();
    writeFileSync(
      join(d, "danted.conf"),
      `logoutput: /dev/null
internal: 127.0.0.1 port = ${port}
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }
`,
    );
    return spawnListening("dante", ["danted", "-f", join(d, "danted.conf"), "-p", join(d, "danted.pid")], port);
  });
}

/** mitmdump in regular proxy mode with its own CA in `dir/mitmproxy`, trusting `originCert`. */
export function startMitmdump(dir: string, originCert: string): Promise<Started> {
  return attempt("mitmproxy", "mitmdump", () => {
    const port = freePort();
    const conf = join(dir, "mitmproxy");
    return spawnListening(
      "mitmproxy",
      ["mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", String(port), "--set", `confdir=${conf}`,
        "--set", "block_global=false", "--set", `ssl_verify_upstream_trusted_ca=${originCert}`,
        "--set", "stream_large_bodies=1m"],
      port,
      { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
    );
  });
}
