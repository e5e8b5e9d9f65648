/**
 * Descriptor exhaustion (issue 8 row 6, SPEC-network §12), both executables in a child process
 * under `ulimit -n 128` (soft = hard, so raising the soft limit cannot help).
 *
 * Bun's listener retries `accept` on EMFILE in a busy loop (~170,000 failed accept4 calls a
 * second, measured with strace on a plain `Bun.listen`): with the table full the process spun
 * and served nobody. The products never let the table fill: the connection cap is at most
 * (RLIMIT_NOFILE − 64) / 2, so a flood past it is accepted and closed at once, the admitted
 * connections keep being served, and new clients are served again as soon as slots free.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const LIMIT = 128;
/** effectiveMaxConnections(8192, 128) */
const CAP = (LIMIT - 64) / 2;
const FLOOD = 300;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Spawn `argv` under `ulimit -n LIMIT`; resolves with the port matched in stderr by `re`. */
async function spawnLimited(argv: string[], home: string, re: RegExp, stdin?: string) {
  const quoted = argv.map((a) => `'${a}'`).join(" ");
  const proc = Bun.spawn(["bash", "-c", `ulimit -n ${LIMIT} && exec ${quoted}`], {
    stdin: stdin === undefined ? "ignore" : "pipe",
    stdout: "ignore",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, CODEX_HOME: home },
  });
  if (stdin !== undefined && proc.stdin && typeof proc.stdin !== "number") {
    proc.stdin.write(stdin);
    await proc.stdin.end();
  }
  let err = "";
  const reader = proc.stderr.getReader();
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before listening: ${err}`);
    err += dec.decode(value, { stream: true });
    const m = re.exec(err);
    if (m) {
      reader.releaseLock();
      void proc.stderr.pipeTo(new WritableStream()).catch(() => {});
      return { proc, port: Number(m[1]) };
    }
  }
}

/** CPU ticks (1/100 s) used so far by `pid` (utime + stime). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

interface Client {
  socket: Socket<undefined>;
  closed: boolean;
  text: string;
  onData?: () => void;
}

/**
 * Open FLOOD connections; resolves once FLOOD − CAP of them were closed by the server (the
 * ones past the cap). Before the fix the server stopped accepting at EMFILE and these sat in
 * the backlog forever: this never resolved.
 */
async function flood(port: number): Promise<Client[]> {
  const clients: Client[] = [];
  let closed = 0;
  const enough = Promise.withResolvers<void>();
  for (let i = 0; i < FLOOD; i++) {
    const c = { closed: false, text: "" } as Client;
    const gone = () => {
      if (c.closed) return;
      c.closed = true;
      if (++closed >= FLOOD - CAP) enough.resolve();
    };
    try {
      c.socket = await Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          data(_s, d) {
            c.text += new TextDecoder("latin1").decode(d);
            c.onData?.();
          },
          close: gone,
          error() {},
        },
      });
    } catch {
      gone(); // reset by the server before the connect completed on our side
    }
    clients.push(c);
  }
  await enough.promise;
  return clients;
}

/** Send `req` on `c` and resolve with the answer's head once `until` matches. */
function ask(c: Client, req: string, until: (t: string) => boolean): Promise<string> {
  const got = Promise.withResolvers<string>();
  c.text = "";
  c.onData = () => until(c.text) && got.resolve(c.text);
  c.socket.write(req);
  return got.promise;
}

async function exhaustAndRecover(port: number, pid: number, req: string, until: (t: string) => boolean) {
  const clients = await flood(port);
  const open = clients.filter((c) => !c.closed);
  expect(open.length).toBe(CAP);
  // The admitted connections are still served, and the process is not spinning meanwhile.
  const t0 = performance.now();
  const ticks0 = cpuTicks(pid);
  // One request per admitted connection (the network proxy closes after its own 400).
  for (const c of open) expect(await ask(c, req, until)).toStartWith("HTTP/1.1 ");
  const elapsedTicks = (performance.now() - t0) / 10;
  // A spinning accept loop burns a whole core; serving these small requests does not.
  expect(cpuTicks(pid) - ticks0).toBeLessThan(elapsedTicks * 0.8 + 20);
  // Free the slots: new clients are served again.
  for (const c of open) c.socket.end();
  for (let i = 0; i < 200; i++) {
    const [c] = await new Promise<Client[]>((resolve) => {
      const one = { closed: false, text: "" } as Client;
      void Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          open: (s) => {
            one.socket = s;
            resolve([one]);
          },
          data(_s, d) {
            one.text += new TextDecoder("latin1").decode(d);
            one.onData?.();
          },
          close() {
            one.closed = true;
            one.onData?.();
          },
          error() {},
        },
      });
    });
    const answer = await ask(c!, req, (t) => until(t) || c!.closed);
    c!.socket.end();
    if (answer.startsWith("HTTP/1.1 ")) return;
  }
  throw new Error("never served again after the connections closed");
}

describe.skipIf(process.platform !== "linux")("descriptor exhaustion under ulimit -n 128", () => {
  test("codex-responses-api-proxy keeps serving and recovers", async () => {
    const home = mkdtempSync(join(tmpdir(), "fd-rp-"));
    dirs.push(home);
    const { proc, port } = await spawnLimited(
      [BUN, join(ROOT, "src/responses/main.ts"), "--upstream-url", "http://127.0.0.1:9/v1/responses"],
      home,
      /listening on 127\.0\.0\.1:(\d+)/,
      "sk-fd_TEST\n",
    );
    try {
      await exhaustAndRecover(port, proc.pid, "GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", (t) => t.includes("\r\n\r\n"));
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  }, 30_000);

  test("codex-network-proxy keeps serving and recovers", async () => {
    const home = mkdtempSync(join(tmpdir(), "fd-np-"));
    dirs.push(home);
    const cfg = join(home, "config.toml");
    writeFileSync(cfg, '[network_proxy]\nmode = "full"\n');
    const { proc, port } = await spawnLimited(
      [BUN, join(ROOT, "src/network/main.ts"), "--config", cfg, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
      home,
      /HTTP proxy listening on 127\.0\.0\.1:(\d+)/,
    );
    try {
      // A request the proxy answers itself (missing host → 400), kept alive.
      await exhaustAndRecover(port, proc.pid, "GET / HTTP/1.1\r\n\r\n", (t) => t.includes("\r\n\r\n"));
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
    }
  }, 30_000);
});
