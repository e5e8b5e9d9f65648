/**
 * Start-to-listening and idle memory (`npm run bench`): each run spawns a fresh process on a
 * known port and measures the time from spawn to the first accepted TCP connect (polled every
 * millisecond, bounded: 10 s); one second later (startup garbage collected) it reads the
 * process's memory from /proc, then stops it by PID. Contenders: the responses proxy (key on
 * stdin), the network proxy in full mode with no config file, the network proxy with a
 * limited-mode MITM config (CA loaded at start), nginx (1 worker, the reverse-proxy config).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { nginxResponsesConf } from "./peers.ts";
import type { Contender } from "./rounds.ts";
import { childPids, freePort, memInfo, spawnChild, type Child } from "./tools.ts";

/** Idle memory of one start, MiB, summed over the process tree (nginx: master + worker). */
export interface IdleMemory {
  rss: number;
  anon: number;
  file: number;
  private: number;
}

/** Resolve once 127.0.0.1:port accepts a connection; polls every ms, at most `ms` in total. */
async function openedWithin(port: number, ms: number, child: Child): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (child.proc.exitCode !== null) throw new Error(`exited with ${child.proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: { open: (s) => (s.end(), resolve(true)), connectError: () => resolve(false), data() {} },
      }).catch(() => resolve(false));
    });
    if (ok) return;
    await Bun.sleep(1);
  }
  throw new Error(`port ${port} not open after ${ms} ms`);
}

function sumMemory(pids: number[]): IdleMemory {
  const out = { rss: 0, anon: 0, file: 0, private: 0 };
  for (const pid of pids) {
    const m = memInfo(pid);
    if (!m) continue;
    out.rss += m.rss;
    out.anon += m.anon;
    out.file += m.file;
    out.private += m.private;
  }
  return out;
}

export interface StartOptions {
  dir: string;
  responsesBin: string;
  networkBin: string;
  /** Config file of the MITM contender (its CA already made by the long-running instance). */
  mitmConfig: string;
  key: string;
  upPort: number;
  nginxAvailable: boolean;
}

/**
 * The start contenders, and the idle memory each run recorded (by contender name, one entry
 * per run) for the memory table.
 */
export function startContenders(o: StartOptions): { contenders: Contender[]; idle: Map<string, IdleMemory[]> } {
  const idle = new Map<string, IdleMemory[]>();
  const PATH = process.env.PATH ?? "/usr/bin:/bin";
  const home = join(o.dir, "start-home");
  mkdirSync(home, { recursive: true });
  const spawners: Array<{ name: string; spawn: (port: number) => Child }> = [
    {
      name: "ours responses",
      spawn: (port) => {
        const c = spawnChild([o.responsesBin, "--port", String(port), "--upstream-url", `http://127.0.0.1:${o.upPort}/v1/responses`, "--log-level", "warn"], { stdin: "pipe" });
        const sink = c.proc.stdin as import("bun").FileSink;
        sink.write(o.key + "\n");
        void sink.end();
        return c;
      },
    },
    {
      name: "ours network",
      spawn: (port) =>
        spawnChild([o.networkBin, "--http", `127.0.0.1:${port}`, "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--allow", "127.0.0.1", "--log-level", "error"], {
          env: { PATH, CODEX_HOME: home },
        }),
    },
    {
      name: "ours network (MITM)",
      spawn: (port) =>
        spawnChild([o.networkBin, "--config", o.mitmConfig, "--http", `127.0.0.1:${port}`, "--log-level", "error"], {
          env: { PATH, CODEX_HOME: join(o.mitmConfig, "..") },
        }),
    },
  ];
  if (o.nginxAvailable) {
    spawners.push({
      name: "nginx",
      spawn: (port) => {
        const d = join(o.dir, `nginx-start-${port}`);
        return spawnChild(["nginx", "-p", d, "-c", nginxResponsesConf(d, port, o.upPort, o.key, 1)]);
      },
    });
  }
  const contenders = spawners.map(({ name, spawn }) => ({
    name,
    async run() {
      const port = freePort();
      const t0 = performance.now();
      const child = spawn(port);
      try {
        await openedWithin(port, 10_000, child);
        const ms = performance.now() - t0;
        await Bun.sleep(1000);
        const list = idle.get(name) ?? [];
        list.push(sumMemory([child.proc.pid, ...childPids(child.proc.pid)]));
        idle.set(name, list);
        return { value: ms };
      } finally {
        await child.stop();
      }
    },
  }));
  return { contenders, idle };
}
