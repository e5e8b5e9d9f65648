import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN, ROOT, startProxyChild } from "../../helpers/responses.ts";

const KEY = "sk-compiled_KEY-9";

/**
 * Whether this process may read /proc/<pid>/mem of a non-dumpable process (the key scan):
 * that takes CAP_SYS_PTRACE in the effective set (ptrace(2), "ptrace access mode checking"),
 * which a default container root lacks, and Yama must not forbid attaching altogether (3).
 */
function canReadNonDumpableMemory(): boolean {
  if (process.platform !== "linux") return false;
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  const CAP_SYS_PTRACE = 19n;
  if (!capEff || ((BigInt(`0x${capEff}`) >> CAP_SYS_PTRACE) & 1n) === 0n) return false;
  const yama = existsSync("/proc/sys/kernel/yama/ptrace_scope") ? readFileSync("/proc/sys/kernel/yama/ptrace_scope", "utf8").trim() : "0";
  return yama !== "3";
}

describe("the compiled executable (scripts/build.ts)", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-bin-"));
  const bin = join(dir, "codex-responses-api-proxy");
  let upstream: ReturnType<typeof Bun.serve>;
  const seen: Array<string | null> = [];

  beforeAll(() => {
    const r = Bun.spawnSync([BUN, join(ROOT, "scripts", "build.ts"), "--only", "responses", "--outdir", dir], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`build failed: ${r.stderr.toString()}`);
    upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        seen.push(req.headers.get("authorization"));
        return new Response("ok");
      },
    });
  }, 120_000);
  afterAll(() => {
    upstream?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  test("key on stdin, one forwarded request, /shutdown exits 0; .env in cwd is not loaded", async () => {
    // A .env next to the binary must not be auto-loaded (built with --no-compile-autoload-dotenv).
    writeFileSync(join(dir, ".env"), "HTTP_PROXY=http://127.0.0.1:1\n");
    const p = await startProxyChild(["--http-shutdown", "--upstream-url", `http://127.0.0.1:${upstream.port}/v1/responses`], {
      key: KEY,
      cmd: [bin],
      cwd: dir,
    });
    try {
      const res = await fetch(`${p.base}/v1/responses`, { method: "POST", body: "{}" });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("ok");
      expect(seen).toEqual([`Bearer ${KEY}`]);
      const bye = await fetch(`${p.base}/shutdown`);
      expect(bye.status).toBe(200);
      expect(await p.proc.exited).toBe(0);
    } finally {
      await p.stop();
    }
  });

  // The SPEC §1.3 benchmark: exactly one plaintext copy of the key (the locked page) after
  // many requests. Reading /proc/<pid>/mem of a non-dumpable process needs CAP_SYS_PTRACE.
  test.skipIf(!canReadNonDumpableMemory())(
    "scripts/key-copies.ts: one copy of the key after 300 requests (http and https upstream)",
    async () => {
      for (const extra of [[], ["--tls"]]) {
        const r = Bun.spawn([BUN, join(ROOT, "scripts", "key-copies.ts"), "--binary", bin, "--requests", "300", ...extra], {
          stdout: "pipe",
          stderr: "pipe",
        });
        const [out, err, code] = await Promise.all([new Response(r.stdout).text(), new Response(r.stderr).text(), r.exited]);
        expect({ code, out }).toEqual({ code: 0, out: "key copies after 300 requests: 1\n" });
        expect(err).toMatch(/scanner self-check: upstream URL found [1-9]\d* times/);
      }
      // Negative control: with the key also in the proxy's environment the scan must see more.
      const r = Bun.spawn([BUN, join(ROOT, "scripts", "key-copies.ts"), "--binary", bin, "--requests", "10", "--control"], {
        stdout: "pipe",
        stderr: "ignore",
      });
      const out = await new Response(r.stdout).text();
      expect(await r.exited).toBe(0);
      expect(Number(out.match(/^key copies after 10 requests: (\d+)\n$/)?.[1])).toBeGreaterThan(1);
    },
    60_000,
  );
});
