import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_UPSTREAM_URL, parseCli, parseUpstreamUrl } from "../../src/responses/cli.ts";
import { emptyResponseComplete, runProxyMain, startProxyChild } from "../helpers/responses.ts";
import { rawExchange } from "../helpers/raw-client.ts";

describe("parseCli (SPEC §1.1)", () => {
  test("defaults", () => {
    expect(parseCli([])).toEqual({
      kind: "run",
      args: { port: 0, httpShutdown: false, upstreamUrl: DEFAULT_UPSTREAM_URL, logLevel: "info", logFormat: "text" },
    });
  });

  test("every flag, both spellings", () => {
    const expected: ReturnType<typeof parseCli> = {
      kind: "run",
      args: {
        port: 8080,
        serverInfo: "/tmp/i.json",
        httpShutdown: true,
        upstreamUrl: "http://h/x?a=b=c",
        dumpDir: "/tmp/d",
        logLevel: "warn",
        logFormat: "json",
      },
    };
    expect(
      parseCli([
        "--port", "8080", "--server-info", "/tmp/i.json", "--http-shutdown", "--upstream-url", "http://h/x?a=b=c", "--dump-dir", "/tmp/d",
        "--log-level", "WARN", "--log-format", "json",
      ]),
    ).toEqual(expected);
    expect(
      parseCli([
        "--port=8080", "--server-info=/tmp/i.json", "--http-shutdown", "--upstream-url=http://h/x?a=b=c", "--dump-dir=/tmp/d",
        "--log-level=warn", "--log-format=json",
      ]),
    ).toEqual(expected);
  });

  test.each([["0", 0], ["65535", 65535], ["1", 1]])("port %s", (v, n) => {
    expect(parseCli(["--port", v])).toMatchObject({ kind: "run", args: { port: n } });
  });

  test.each([
    [["--port", "65536"]],
    [["--port", "-1"]],
    [["--port", "abc"]],
    [["--port", ""]],
    [["--port", "80.5"]],
    [["--port"]],
    [["--bogus"]],
    [["-p", "80"]],
    [["positional"]],
    [["--http-shutdown=true"]],
    [["--port", "1", "--port", "2"]],
    [["--no-http-shutdown"]],
    [["--httpShutdown"]],
    [["--log-level", "loud"]],
    [["--log-format", "xml"]],
    [["--log-level"]],
  ])("usage error: %j", (argv) => {
    const r = parseCli(argv);
    expect(r.kind).toBe("usage-error");
    expect((r as { text: string }).text).toContain("Usage: codex-responses-api-proxy [--port <PORT>]");
  });

  test("help and version", () => {
    expect(parseCli(["--port", "1", "--help"]).kind).toBe("help");
    expect(parseCli(["-h"]).kind).toBe("help");
    expect(parseCli(["--version"])).toEqual({ kind: "version", text: "codex-responses-api-proxy 0.1.0 (commit unknown: run from source)\n" });
  });
});

describe("startup as a child process (SPEC §1.2)", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-cli-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("--help: stdout, exit 0, nothing read from stdin", async () => {
    const r = await runProxyMain(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: codex-responses-api-proxy");
    expect(r.stderr).toBe("");
  });

  test("--version", async () => {
    expect(await runProxyMain(["--version"])).toEqual({ code: 0, stdout: "codex-responses-api-proxy 0.1.0 (commit unknown: run from source)\n", stderr: "" });
  });

  test("bad port → exit 2 before the key is read", async () => {
    const r = await runProxyMain(["--port", "70000"], "sk-abc\n");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toStartWith("error: invalid value '70000' for '--port <PORT>'");
  });

  test("unknown flag → exit 2", async () => {
    const r = await runProxyMain(["--verbose"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("error: unexpected argument '--verbose' found");
  });

  test.each([
    ["", "Error: API key must be provided via stdin (e.g. printenv OPENAI_API_KEY | codex-responses-api-proxy)\n"],
    ["\n", "Error: API key must be provided via stdin (e.g. printenv OPENAI_API_KEY | codex-responses-api-proxy)\n"],
    ["sk bad\n", "Error: API key may only contain ASCII letters, numbers, '-' or '_'\n"],
    ["k".repeat(1017), "Error: API key is too large to fit in the 1024-byte buffer\n"],
  ])("key error %j → exit 1, exact message", async (stdin, message) => {
    expect(await runProxyMain([], stdin)).toEqual({ code: 1, stdout: "", stderr: message });
  });

  test("key errors are reported before --upstream-url is parsed", async () => {
    const r = await runProxyMain(["--upstream-url", "nope"], "");
    expect(r.stderr).toStartWith("Error: API key must be provided");
  });

  test.each([
    ["not a url", "Error: parsing --upstream-url: "],
    ["file:///x", "Error: upstream URL must include a host\n"],
    ["ftp://api.example.com/v1/responses", "Error: upstream URL must be http or https\n"],
  ])("--upstream-url %s → exit 1", async (url, message) => {
    const r = await runProxyMain(["--upstream-url", url], "sk-abc\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith(message);
  });

  test("--dump-dir that cannot be created → exit 1", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const r = await runProxyMain(["--dump-dir", join(file, "sub")], "sk-abc\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("Error: creating --dump-dir");
  });

  test("--server-info that cannot be written → exit 1 after binding", async () => {
    const ro = join(dir, "ro");
    mkdirSync(ro);
    writeFileSync(join(ro, "x"), "");
    const r = await runProxyMain(["--server-info", join(ro, "x", "info.json")], "sk-abc\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("Error: writing --server-info");
    expect(r.stderr).not.toContain("listening");
    chmodSync(ro, 0o755);
  });

  test("server-info: one compact line with port then pid, parents created; one stderr line", async () => {
    const info = join(dir, "deep", "er", "info.json");
    const p = await startProxyChild(["--server-info", info, "--port", "0"]);
    try {
      expect(readFileSync(info, "utf8")).toBe(`{"port":${p.port},"pid":${p.proc.pid}}\n`);
      expect(p.stderr.lines).toEqual([`responses-api-proxy listening on 127.0.0.1:${p.port}`]);
    } finally {
      await p.stop();
    }
  });

  test("a busy --port: exit 1, address already in use, names the flag", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await runProxyMain(["--port", String(busy.port)], "sk-abc\n");
      expect({ code: r.code, stderr: r.stderr }).toEqual({
        code: 1,
        stderr: `Error: binding 127.0.0.1:${busy.port}: address already in use; set by --port (choose another port, or 0 for an ephemeral one)\n`,
      });
    } finally {
      busy.stop(true);
    }
  });

  test("--port binds the given port", async () => {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const p = await startProxyChild([`--port=${port}`]);
    try {
      expect(p.port).toBe(port);
    } finally {
      await p.stop();
    }
  });

  // Linux: the child's state is read from /proc (issue 14, row 7: no unrelated delay).
  test.skipIf(process.platform !== "linux" || !["x64", "arm64"].includes(process.arch))(
    "the proxy does not bind until the key's newline arrives",
    async () => {
      const info = join(dir, "wait-info.json");
      const proc = Bun.spawn([process.execPath, join(import.meta.dir, "..", "..", "src", "responses", "main.ts"), "--server-info", info], {
        stdin: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH },
      });
      try {
        proc.stdin.write("sk-partial");
        await proc.stdin.flush();
        // The child has taken the partial key and is blocked in read(2) on stdin again: the
        // state where a bind would have happened if the key reader did not wait for the newline.
        await blockedReadingStdin(proc.pid);
        expect({ listening: listeningSockets(proc.pid), info: await Bun.file(info).exists() }).toEqual({ listening: 0, info: false });
        proc.stdin.write("-rest\n");
        await proc.stdin.flush();
        const reader = proc.stderr.getReader();
        const { value } = await reader.read();
        expect(new TextDecoder().decode(value)).toMatch(/^responses-api-proxy listening on 127\.0\.0\.1:\d+\n$/);
        reader.releaseLock();
        // The same check sees the socket once it exists.
        expect(listeningSockets(proc.pid)).toBe(1);
      } finally {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    },
  );

});

describe("shutdown", () => {
  test("--http-shutdown: GET /shutdown → 200 empty, exit 0", async () => {
    const p = await startProxyChild(["--http-shutdown"]);
    try {
      const res = await fetch(`${p.base}/shutdown`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("");
      expect(await p.proc.exited).toBe(0);
    } finally {
      await p.stop();
    }
  });

  test("--http-shutdown: /shutdown?x=1, HEAD and POST → 403, still running", async () => {
    const p = await startProxyChild(["--http-shutdown"]);
    try {
      for (const req of [
        "GET /shutdown?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "HEAD /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "POST /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
        "GET /shutdown/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      ]) {
        const r = await rawExchange(p.port, req, emptyResponseComplete);
        expect(r.text.startsWith("HTTP/1.1 403 Forbidden\r\n")).toBe(true);
      }
      expect(p.proc.exitCode).toBeNull();
      const res = await fetch(`${p.base}/shutdown`);
      expect(res.status).toBe(200);
      expect(await p.proc.exited).toBe(0);
    } finally {
      await p.stop();
    }
  });

  test("without --http-shutdown: GET /shutdown → 403 and still running", async () => {
    const p = await startProxyChild([]);
    try {
      const res = await fetch(`${p.base}/shutdown`);
      expect(res.status).toBe(403);
      expect(await res.text()).toBe("");
      const again = await fetch(`${p.base}/shutdown`);
      expect(again.status).toBe(403);
      expect(p.proc.exitCode).toBeNull();
    } finally {
      await p.stop();
    }
  });

  test.each(["SIGTERM", "SIGINT"] as const)("%s → exit 0", async (sig) => {
    const p = await startProxyChild([]);
    try {
      p.proc.kill(sig);
      expect(await p.proc.exited).toBe(0);
    } finally {
      await p.stop();
    }
  });

  test("SIGTERM lets an in-flight stream finish, refuses new connections, then exit 0", async () => {
    const release = Promise.withResolvers<void>();
    const started = Promise.withResolvers<void>();
    const upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch() {
        const enc = new TextEncoder();
        let step = 0;
        return new Response(
          new ReadableStream({
            async pull(c) {
              if (step === 0) {
                c.enqueue(enc.encode("data: one\n\n"));
                started.resolve();
              } else if (step === 1) {
                await release.promise;
                c.enqueue(enc.encode("data: two\n\n"));
              } else c.close();
              step++;
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        );
      },
    });
    const p = await startProxyChild(["--upstream-url", `http://127.0.0.1:${upstream.port}/v1/responses`]);
    try {
      const res = await fetch(`${p.base}/v1/responses`, { method: "POST", body: "{}" });
      const reader = res.body!.getReader();
      await started.promise;
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe("data: one\n\n");
      p.proc.kill("SIGTERM");
      // New connections are refused once the listener stopped; wait for that as an event.
      let refused = false;
      for (let i = 0; i < 200 && !refused; i++) {
        refused = await fetch(`${p.base}/v1/responses`, { method: "POST", body: "{}" }).then(
          () => false,
          () => true,
        );
      }
      expect(refused).toBe(true);
      release.resolve();
      let rest = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      expect(rest).toBe("data: two\n\n");
      expect(await p.proc.exited).toBe(0);
    } finally {
      await p.stop();
      upstream.stop(true);
    }
  });
});

describe("parseUpstreamUrl (SPEC §1.2 step 4)", () => {
  test.each([
    ["https://api.openai.com/v1/responses", "https://api.openai.com/v1/responses"],
    ["https://x.openai.azure.com/openai/deployments/d/responses?api-version=2025-04-01-preview", "https://x.openai.azure.com/openai/deployments/d/responses?api-version=2025-04-01-preview"],
    ["http://[::1]:8080/v1/responses", "http://[::1]:8080/v1/responses"],
  ])("%s", (input, href) => {
    expect((parseUpstreamUrl(input) as URL).href).toBe(href);
  });
  test.each([
    ["not a url", "parsing --upstream-url: relative URL without a base"],
    ["http://", "parsing --upstream-url: invalid URL"],
    ["file:///x", "upstream URL must include a host"],
    ["ftp://h/x", "upstream URL must be http or https"],
    ["ws://127.0.0.1:1/v1/responses", "upstream URL must be http or https"],
    ["HTTPS://api.openai.com/v1/responses?x", null],
  ])("%s → %s", (input, message) => {
    const r = parseUpstreamUrl(input);
    if (message === null) expect(r).toBeInstanceOf(URL);
    else expect(r).toBe(message);
  });
});

/** read(2)'s syscall number (/proc/<pid>/syscall): x86_64 0, aarch64 63. */
const SYS_READ = process.arch === "arm64" ? 63 : 0;

/**
 * Resolves once `pid`'s main thread is blocked in read(2) on fd 0 (/proc/<pid>/syscall, proc(5)).
 * Bounded: 5 s and 100,000 looks, yielding to the event loop between looks (no timer).
 */
async function blockedReadingStdin(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    const fields = readFileSync(`/proc/${pid}/syscall`, "utf8").split(" ");
    if (Number(fields[0]) === SYS_READ && fields[1] === "0x0") return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`child ${pid} never blocked reading stdin`);
}

/** How many TCP sockets in LISTEN state (st 0A in /proc/net/tcp{,6}) `pid` holds. */
function listeningSockets(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = "";
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: "utf8" });
    } catch {
      continue; // closed between readdir and readlink
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m) inodes.add(m[1]!);
  }
  let n = 0;
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === "0A" && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}
