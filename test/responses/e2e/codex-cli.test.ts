/**
 * The real client of this proxy: `codex exec` with a model provider pointing at it (seed
 * READMEs, HELPERS "The real client"), kept on loopback (issue 14, row 4).
 *
 * Left alone, `codex exec` also resolves and dials `api.github.com` (update check) and
 * `ab.chatgpt.com` (analytics). The child gets every opt-out codex offers (update check,
 * analytics, plugins, `--ephemeral`) and, for whatever is left, `HTTP(S)_PROXY`/`ALL_PROXY`
 * pointing at a local sink that refuses everything (403 to HTTP and CONNECT, "no acceptable
 * method" to SOCKS5), with `NO_PROXY` for loopback so the model provider is reached directly.
 * The sink can grant nothing; the test asserts it saw no attempt at all (without the opt-outs
 * it sees `CONNECT ab.chatgpt.com:443`, so the proxy variables are honoured and the check can fail).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startProxyChild, type ProxyChild } from "../../helpers/responses.ts";
import { removeTempDirs, tempDir } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const CODEX = join(ROOT, "node_modules", ".bin", "codex");
const KEY = "sk-codex-cli_KEY-1";

/**
 * The platform binary the JS launcher runs (node_modules/@openai/codex/bin/codex.js,
 * findCodexExecutable): the test can only run where it is installed, whatever the launcher.
 */
function codexPlatformBinary(): string | null {
  const triples: Record<string, [string, string]> = {
    "linux-x64": ["codex-linux-x64", "x86_64-unknown-linux-musl"],
    "linux-arm64": ["codex-linux-arm64", "aarch64-unknown-linux-musl"],
    "darwin-x64": ["codex-darwin-x64", "x86_64-apple-darwin"],
    "darwin-arm64": ["codex-darwin-arm64", "aarch64-apple-darwin"],
  };
  const t = triples[`${process.platform}-${process.arch}`];
  if (!t) return null;
  const bin = join(ROOT, "node_modules", "@openai", t[0], "vendor", t[1], "bin", "codex");
  return existsSync(bin) ? bin : null;
}

const runnable = existsSync(CODEX) && codexPlatformBinary() !== null && Bun.which("node") !== null;

/** One connection the sink saw: the protocol and the target the client asked for. */
interface SinkAttempt {
  protocol: "http" | "socks5" | "other";
  /** The request line (HTTP, CONNECT) or `socks5`; latin1, at most 200 characters. */
  first: string;
}

/** A proxy on 127.0.0.1:0 that refuses every request and records it; nothing is ever forwarded. */
function startRefusingSink() {
  const attempts: SinkAttempt[] = [];
  const listener = Bun.listen<{ seen: boolean }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { seen: false };
      },
      data(s: Socket<{ seen: boolean }>, d) {
        if (s.data.seen) return;
        s.data.seen = true;
        if (d[0] === 0x05) {
          attempts.push({ protocol: "socks5", first: "socks5" });
          s.end(new Uint8Array([0x05, 0xff])); // RFC 1928 §3: no acceptable methods
          return;
        }
        const text = Buffer.from(d).toString("latin1");
        const line = text.slice(0, Math.max(0, text.indexOf("\r\n"))).slice(0, 200);
        attempts.push({ protocol: /^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(line) ? "http" : "other", first: line || text.slice(0, 40) });
        s.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      },
      error() {},
    },
  });
  return { port: listener.port, attempts, stop: () => listener.stop(true) };
}

describe.skipIf(!runnable)("Codex CLI end to end", () => {
  const home = tempDir("rp-codex-");
  const seen: Array<{ method: string; path: string; auth: string | null; host: string | null; model: unknown }> = [];
  let upstream: ReturnType<typeof Bun.serve>;
  let proxy: ProxyChild;
  const sink = startRefusingSink();
  const events = [
    { type: "response.created", response: { id: "resp_1" } },
    {
      type: "response.output_item.done",
      item: { type: "message", role: "assistant", id: "msg_1", content: [{ type: "output_text", text: "pong from fake upstream" }] },
    },
    {
      type: "response.completed",
      response: { id: "resp_1", usage: { input_tokens: 1, input_tokens_details: null, output_tokens: 1, output_tokens_details: null, total_tokens: 2 } },
    },
  ];

  beforeAll(async () => {
    upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        const body = (await req.json()) as { model?: unknown };
        seen.push({ method: req.method, path: new URL(req.url).pathname, auth: req.headers.get("authorization"), host: req.headers.get("host"), model: body.model });
        return new Response(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(""), {
          headers: { "content-type": "text/event-stream" },
        });
      },
    });
    proxy = await startProxyChild(["--upstream-url", `http://127.0.0.1:${upstream.port}/v1/responses`], { key: KEY });
    writeFileSync(
      join(home, "config.toml"),
      [
        'model = "gpt-test"',
        'model_provider = "proxy"',
        "check_for_update_on_startup = false",
        "[model_providers.proxy]",
        'name = "proxy"',
        `base_url = "${proxy.base}/v1"`,
        'wire_api = "responses"',
        "[features]",
        "plugins = false",
        "[analytics]",
        "enabled = false",
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await proxy?.stop();
    upstream?.stop(true);
    sink.stop();
    rmSync(home, { recursive: true, force: true });
  });

  test("codex exec gets the model's answer through the proxy; the upstream sees the proxy's key; nothing leaves loopback", async () => {
    const sinkUrl = `http://127.0.0.1:${sink.port}`;
    const proc = Bun.spawn([CODEX, "exec", "--skip-git-repo-check", "-s", "read-only", "--ephemeral", "say pong"], {
      cwd: home,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        CODEX_HOME: home,
        TMPDIR: process.env.TMPDIR,
        HTTP_PROXY: sinkUrl,
        HTTPS_PROXY: sinkUrl,
        ALL_PROXY: sinkUrl,
        http_proxy: sinkUrl,
        https_proxy: sinkUrl,
        all_proxy: sinkUrl,
        NO_PROXY: "127.0.0.1,localhost",
        no_proxy: "127.0.0.1,localhost",
      },
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, out, err: code === 0 ? "" : err }).toEqual({ code: 0, out: "pong from fake upstream\n", err: "" });
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen[0]).toEqual({ method: "POST", path: "/v1/responses", auth: `Bearer ${KEY}`, host: `127.0.0.1:${upstream.port}`, model: "gpt-test" });
    // Any off-loopback attempt would have gone to the sink and been refused; with every
    // opt-out set, codex makes none.
    expect(sink.attempts).toEqual([]);
  }, 60_000);
});
