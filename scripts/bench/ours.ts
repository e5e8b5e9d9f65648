/**
 * Our two executables (dist/, from `npm run build`) as contenders of `npm run bench`, and the
 * one-shot starts that time start-to-listening. Each runs with an empty CODEX_HOME in the run's
 * temporary folder and without per-request log lines (responses `--log-level warn`, network
 * `--log-level error`), as the peers run with their access logs off.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Service } from "./peers.ts";
import { serviceOf } from "./peers.ts";
import { drainStderr, spawnChild, waitForStderr, type Child } from "./tools.ts";

const PATH = process.env.PATH ?? "/usr/bin:/bin";

/** Start the responses proxy with `key` on stdin, forwarding to `upstreamUrl`; waits until it listens. */
export async function startResponsesProxy(bin: string, upstreamUrl: string, key: string, port = 0): Promise<Service & { child: Child }> {
  // --log-level warn: no access line per request, as nginx runs with access_log off.
  const child = spawnChild([bin, "--port", String(port), "--upstream-url", upstreamUrl, "--log-level", "warn"], { stdin: "pipe" });
  const sink = child.proc.stdin as import("bun").FileSink;
  sink.write(key + "\n");
  await sink.end();
  try {
    const m = await waitForStderr(child, /listening on 127\.0\.0\.1:(\d+)/);
    drainStderr(child);
    return { ...serviceOf("ours", Number(m[1]), child), child };
  } catch (e) {
    await child.stop();
    throw e;
  }
}

/** Ports written by the network proxy's `--server-info`. */
export interface NetworkPorts {
  http: number;
  socks: number;
  admin: number;
}

/**
 * Start the network proxy with `args` (listen addresses and policy flags) and `--server-info`,
 * CODEX_HOME `home` (made if missing) and `env` added; resolves with the ports once the file appears (bounded: 10 s).
 */
export async function startNetworkProxy(
  bin: string,
  home: string,
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ service: Service; ports: NetworkPorts; child: Child }> {
  mkdirSync(home, { recursive: true });
  const info = join(home, "server-info.json");
  const child = spawnChild([bin, ...args, "--server-info", info, "--log-level", "error"], { env: { PATH, CODEX_HOME: home, ...env } });
  drainStderr(child);
  for (let i = 0; i < 1000 && !(await Bun.file(info).exists()); i++) {
    if (child.proc.exitCode !== null) break;
    await Bun.sleep(10);
  }
  if (!(await Bun.file(info).exists())) {
    await child.stop();
    throw new Error(`${name}: no server-info after 10 s`);
  }
  const ports = JSON.parse(readFileSync(info, "utf8")) as NetworkPorts;
  return { service: serviceOf(name, ports.http, child), ports, child };
}

/**
 * The limited-mode config of the MITM contender: only `host` allowed (a name that resolves to
 * loopback, hence `allow_local_binding`), HTTPS intercepted with a CA made on first start
 * (`home/network_proxy/mitm/ca.pem`). Written as `home/config.toml`; returns its path.
 */
export function writeMitmConfig(home: string, host: string): string {
  mkdirSync(home, { recursive: true });
  const file = join(home, "config.toml");
  writeFileSync(
    file,
    `[network_proxy]
mode = "limited"
proxy_url = "http://127.0.0.1:0"
admin_url = "http://127.0.0.1:0"
socks_url = "http://127.0.0.1:0"
[network_proxy.policy]
allowed_domains = ["${host}"]
allow_local_binding = true
[network_proxy.mitm]
enabled = true
`,
  );
  return file;
}
