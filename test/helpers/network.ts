/**
 * Shared test helpers for the network proxy: a RuntimeConfig builder, an injected resolver
 * that maps test names (`allowed.test`) to loopback, a capturing logger, an in-process
 * context and full proxy, fake upstreams (HTTP and raw TCP echo), and curl through a proxy.
 *
 * Everything listens on 127.0.0.1 port 0 and returns a handle with `stop()`.
 * Modules that may land later (server.ts) are imported lazily so this file always loads.
 */
import type { Socket, TCPSocketListener } from "bun";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type LogFormat, type Logger } from "../../src/log.ts";
import type { RuntimeConfig } from "../../src/network/types.ts";
import type { Resolver } from "../../src/network/policy.ts";
import { createNetworkContext, type NetworkContextHandle } from "../../src/network/context.ts";
import { removeLater } from "./temp.ts";
import { childEnv } from "./child.ts";
import { within } from "./within.ts";

/** Recursive partial, for config overrides. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/**
 * A complete RuntimeConfig for tests: enabled, mode full, nothing allowed, every listener on
 * 127.0.0.1:0, SOCKS5 on, MITM off with CA paths inside a fresh (not yet created) temp folder.
 * `over` is merged one level deep into `policy` and `mitm`.
 */
export function testConfig(over: DeepPartial<RuntimeConfig> = {}): RuntimeConfig {
  // A fresh folder name, created only if something (the MITM CA) writes there; removed by
  // removeTempDirs (test/helpers/temp.ts) at the end of the file.
  const dir = removeLater(join(tmpdir(), `cnp-test-${randomUUID()}`));
  const base: RuntimeConfig = {
    enabled: true,
    mode: "full",
    proxyUrl: "http://127.0.0.1:0",
    adminUrl: "http://127.0.0.1:0",
    enableSocks5: true,
    socksUrl: "http://127.0.0.1:0",
    enableSocks5Udp: false,
    allowUpstreamProxy: false,
    dangerouslyAllowNonLoopbackProxy: false,
    dangerouslyAllowNonLoopbackAdmin: false,
    maxConnections: 8192,
    policy: { allowedDomains: [], deniedDomains: [], allowLocalBinding: false, allowUnixSockets: [] },
    mitm: {
      enabled: false,
      inspect: false,
      maxBodyBytes: 4096,
      caCertPath: join(dir, "network_proxy/mitm/ca.pem"),
      caKeyPath: join(dir, "network_proxy/mitm/ca.key"),
      hooks: [],
      caMode: "file",
    },
    adminTokenFile: null,
  };
  const { policy, mitm, ...rest } = over;
  return {
    ...base,
    ...(rest as Partial<RuntimeConfig>),
    policy: { ...base.policy, ...(policy as Partial<RuntimeConfig["policy"]>) },
    mitm: { ...base.mitm, ...(mitm as Partial<RuntimeConfig["mitm"]>) },
  };
}

/** A resolver that answers from a fixed table and remembers every name it was asked. */
export interface MapResolver extends Resolver {
  /** Names looked up so far, in order (to prove denied names are never resolved). */
  readonly lookups: string[];
}

/**
 * Resolver from a table `{ "allowed.test": ["127.0.0.1"] }`. Names are matched lowercase.
 * A name not in the table rejects like a failed DNS lookup (`ENOTFOUND <name>`).
 * Default table: `allowed.test`, `other.test` → 127.0.0.1.
 */
export function mapResolver(
  table: Record<string, string[]> = { "allowed.test": ["127.0.0.1"], "other.test": ["127.0.0.1"] },
): MapResolver {
  const lookups: string[] = [];
  const fn = async (host: string): Promise<string[]> => {
    lookups.push(host);
    const hit = table[host.toLowerCase()];
    if (!hit) {
      const err = new Error(`ENOTFOUND ${host}`) as Error & { code: string };
      err.code = "ENOTFOUND";
      throw err;
    }
    return [...hit];
  };
  return Object.assign(fn, { lookups });
}

/** A logger that keeps every line (text or JSON) in `lines`, and optionally echoes to stderr. */
export function captureLogger(format: LogFormat = "text", echo = !!process.env.TEST_LOG): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  // No timestamps: tests compare whole lines (test/log.test.ts pins the timestamp format).
  const log = createLogger({
    format,
    level: "debug",
    now: null,
    sink: (line) => {
      lines.push(line);
      if (echo) process.stderr.write(line + "\n");
    },
  });
  return { log, lines };
}

/**
 * An in-process NetworkContext for listener tests: `testConfig(over)` + `mapResolver(table)`
 * + a capturing logger. Returns the context, the resolver and the captured log lines.
 * Note: allowing `allowed.test` with the default resolver (→ 127.0.0.1) needs
 * `policy.allowLocalBinding: true`, otherwise the DNS-rebinding check denies it
 * (`not_allowed_local`, SPEC-network §3.3 step 6).
 */
export function createTestContext(
  over: DeepPartial<RuntimeConfig> = {},
  table?: Record<string, string[]>,
): { ctx: NetworkContextHandle; resolver: MapResolver; lines: string[]; log: Logger } {
  const resolver = mapResolver(table);
  const { log, lines } = captureLogger();
  const ctx = createNetworkContext({ config: testConfig(over), resolver, log });
  return { ctx, resolver, lines, log };
}

/** What a fake HTTP upstream saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Fake HTTP/1.1 origin on 127.0.0.1:0. Default answer: 200 `text/plain` body `hello from upstream`.
 * Every request is pushed to `seen`. Pass `fetch` to answer differently.
 */
export function startFakeHttpUpstream(fetch?: (req: Request) => Response | Promise<Response>): {
  port: number;
  seen: SeenRequest[];
  stop(): Promise<void>;
} {
  const seen: SeenRequest[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const body = await req.text();
      seen.push({ method: req.method, url: req.url, headers: Object.fromEntries(req.headers), body });
      if (fetch) return fetch(new Request(req.url, { method: req.method, headers: req.headers, body: body || undefined }));
      return new Response("hello from upstream", { headers: { "content-type": "text/plain" } });
    },
  });
  return { port: server.port!, seen, stop: () => server.stop(true) };
}

/** Raw TCP echo server on 127.0.0.1:0 (for CONNECT / SOCKS5 tunnels). Counts connections. */
export function startTcpEcho(): { port: number; connections(): number; stop(): void } {
  let count = 0;
  const listener: TCPSocketListener<undefined> = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        count++;
      },
      data(s: Socket<undefined>, chunk) {
        // Tests send small payloads; a partial write would only truncate the echo.
        s.write(chunk);
      },
    },
  });
  return { port: listener.port, connections: () => count, stop: () => listener.stop(true) };
}

/** Result of a curl run. */
export interface CurlResult {
  exitCode: number;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/**
 * Run curl with `args` (e.g. `["-x", "http://127.0.0.1:1234", "http://allowed.test/"]`).
 * Adds `-sS -D -` to capture the last response head; the proxy environment is cleared so curl
 * never goes anywhere but where `args` say. Bounded by curl's own `--max-time 10`.
 */
export async function curl(args: string[]): Promise<CurlResult> {
  const proc = Bun.spawn(["curl", "-sS", "--max-time", "10", "-D", "-", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: childEnv(),
  });
  const [out, err, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  // With -D - the heads come first (one per response, e.g. CONNECT 200 then the real one).
  let rest = out;
  let status = 0;
  let headers: Record<string, string> = {};
  for (let i = 0; i < 5 && /^HTTP\/[\d.]+ \d{3}/.test(rest); i++) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) break;
    const head = rest.slice(0, end).split("\r\n");
    status = Number(head[0]!.split(" ")[1]);
    headers = {};
    for (const line of head.slice(1)) {
      const c = line.indexOf(":");
      if (c > 0) headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
    }
    rest = rest.slice(end + 4);
  }
  return { exitCode, status, headers, body: rest, stderr: err };
}

/** Options of {@link startTestProxy}. */
export interface TestProxyOptions {
  config?: DeepPartial<RuntimeConfig>;
  /** Resolver table (default: allowed.test, other.test → 127.0.0.1). */
  table?: Record<string, string[]>;
  /** Config file that reloads read (default: none: a reload re-applies `config`). */
  configFile?: string | null;
  /** Watch `configFile` for changes (default false, so a test's POST /reload is the only trigger). */
  watch?: boolean;
}

/**
 * Start the whole proxy in-process (HTTP, SOCKS5 when enabled, admin) with an injected
 * resolver and a capturing logger. Use `await using proxy = await startTestProxy(...)` or
 * call `proxy.stop()` in afterAll. `proxy.ports` has the bound ports.
 */
export async function startTestProxy(opts: TestProxyOptions = {}) {
  // Lazy: server.ts pulls in every listener module.
  const { startNetworkProxy } = await import("../../src/network/server.ts");
  const resolver = mapResolver(opts.table);
  const { log, lines } = captureLogger();
  const proxy = await startNetworkProxy({
    config: testConfig(opts.config),
    configFile: opts.configFile ?? null,
    resolver,
    log,
    handleSignals: false,
    watch: opts.watch ?? false,
  });
  return Object.assign(proxy, { resolver, lines });
}

/**
 * Parse Prometheus text exposition into `name{labels}` → value. Throws on a malformed line,
 * a sample without `# HELP` and `# TYPE` lines before it, or a TYPE other than counter/gauge.
 */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Set<string>();
  const helped = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const m = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (m) {
      if (m[1] === "TYPE" && m[3] !== "counter" && m[3] !== "gauge") throw new Error(`unexpected TYPE: ${line}`);
      (m[1] === "HELP" ? helped : typed).add(m[2]!);
      continue;
    }
    const s = /^([a-z_]+)(\{[^}]*\})? (\d+)$/.exec(line);
    if (!s) throw new Error(`bad sample line: ${line}`);
    if (!typed.has(s[1]!) || !helped.has(s[1]!)) throw new Error(`sample without HELP/TYPE: ${line}`);
    out.set(s[1]! + (s[2] ?? ""), Number(s[3]));
  }
  return out;
}

/** Resolves true when a TCP connect to 127.0.0.1:`port` is refused, false when it is accepted. */
export async function connectRefused(port: number): Promise<boolean> {
  try {
    const s = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    s.end();
    return false;
  } catch {
    return true;
  }
}

/** A network proxy CLI child process (see {@link spawnNetworkProxy}). */
export interface ProxyChild {
  proc: ReturnType<typeof Bun.spawn>;
  /** Everything the child wrote on stderr so far. */
  stderr(): string;
  /** Resolve once stderr contains `text`; reject after `ms` (default 10 s: a failsafe, never a wait). */
  waitFor(text: string, ms?: number): Promise<void>;
}

/**
 * Run the real entry (`src/network/main.ts`) with `args` in a child: HOME and CODEX_HOME set to
 * `home`, a minimal environment (no proxy variables), stderr collected as it arrives.
 */
export function spawnNetworkProxy(
  args: string[],
  home: string,
  stdout: "pipe" | "ignore" = "ignore",
  env: Record<string, string> = {},
): ProxyChild {
  const root = join(import.meta.dir, "../..");
  const proc = Bun.spawn([join(root, "node_modules/.bin/bun"), join(root, "src/network/main.ts"), ...args], {
    env: childEnv({ HOME: home, CODEX_HOME: home, ...env }),
    stdout,
    stderr: "pipe",
  });
  let stderr = "";
  const waiters: Array<{ text: string; resolve(): void }> = [];
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      stderr += dec.decode(chunk, { stream: true });
      for (const w of waiters) if (stderr.includes(w.text)) w.resolve();
    }
  })();
  const waitFor = (text: string, ms = 10_000): Promise<void> => {
    const d = Promise.withResolvers<void>();
    waiters.push({ text, resolve: d.resolve });
    if (stderr.includes(text)) d.resolve();
    return within(d.promise, ms, `stderr to show ${text}`).catch((e: Error) => {
      throw new Error(`${e.message}; stderr: ${stderr}`);
    });
  };
  return { proc, stderr: () => stderr, waitFor };
}
