// End to end with the proxy's real user: the Codex CLI (npm @openai/codex) runs `codex exec`
// against codex-responses-api-proxy, which forwards to a fake Responses API upstream on
// 127.0.0.1. Checks that Codex gets its answer and that the upstream saw the piped key.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const CODEX = join(ROOT, "node_modules", ".bin", "codex");
const KEY = "sk-test_codexCLI-0123456789abcdefABCDEF";
const ANSWER = "PONG-from-fake-upstream-7f3a";

type Seen = { authorization: string | null; host: string | null; originator: string | null; path: string };

let dir: string;
let upstream: ReturnType<typeof Bun.serve>;
const seen: Seen[] = [];

function sseBody(): string {
  const id = "resp_test_1";
  const item = {
    type: "message",
    id: "msg_test_1",
    role: "assistant",
    status: "completed",
    content: [{ type: "output_text", text: ANSWER, annotations: [] }],
  };
  const usage = {
    input_tokens: 1,
    output_tokens: 1,
    total_tokens: 2,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens_details: { reasoning_tokens: 0 },
  };
  const events = [
    { type: "response.created", response: { id, object: "response", status: "in_progress", output: [] } },
    { type: "response.output_item.done", output_index: 0, item },
    { type: "response.completed", response: { id, object: "response", status: "completed", output: [item], usage } },
  ];
  return events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join("");
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "codex-cli-e2e-"));
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      await req.arrayBuffer();
      seen.push({
        authorization: req.headers.get("authorization"),
        host: req.headers.get("host"),
        originator: req.headers.get("originator"),
        path: new URL(req.url).pathname,
      });
      return new Response(sseBody(), { headers: { "content-type": "text/event-stream" } });
    },
  });
});

afterAll(() => {
  upstream?.stop(true);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Reads a child's stderr until `needle` appears (bounded by the stream's end). */
async function waitForLine(stream: ReadableStream<Uint8Array>, needle: string): Promise<string> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let text = "";
  for (let i = 0; i < 10_000; i++) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.includes(needle)) break;
  }
  reader.releaseLock();
  return text;
}

test.skipIf(!existsSync(CODEX))("codex exec gets its answer through the proxy, upstream sees the key", async () => {
  const infoFile = join(dir, "server-info.json");
  const proxy = Bun.spawn(
    [
      process.execPath,
      join(ROOT, "src/responses/main.ts"),
      "--server-info",
      infoFile,
      "--http-shutdown",
      "--upstream-url",
      `http://127.0.0.1:${upstream.port}/v1/responses`,
    ],
    { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  );
  try {
    proxy.stdin.write(`${KEY}\n`);
    await proxy.stdin.end();
    const line = await waitForLine(proxy.stderr, "listening on");
    expect(line).toMatch(/^responses-api-proxy listening on 127\.0\.0\.1:\d+\n/);
    const { port } = JSON.parse(readFileSync(infoFile, "utf8"));

    const home = join(dir, "codex-home");
    Bun.spawnSync(["mkdir", "-p", home]);
    writeFileSync(
      join(home, "config.toml"),
      [
        'model_provider = "proxy"',
        "[model_providers.proxy]",
        'name = "proxy"',
        `base_url = "http://127.0.0.1:${port}/v1"`,
        'wire_api = "responses"',
        "[features]",
        "plugins = false",
        "[analytics]",
        "enabled = false",
        "",
      ].join("\n"),
    );
    const codex = Bun.spawn(
      [CODEX, "exec", "--skip-git-repo-check", "-s", "read-only", "--ephemeral", "reply with the magic word"],
      {
        cwd: dir,
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, CODEX_HOME: home },
      },
    );
    const timer = setTimeout(() => codex.kill(), 60_000);
    const [out, err, code] = await Promise.all([
      new Response(codex.stdout).text(),
      new Response(codex.stderr).text(),
      codex.exited,
    ]);
    clearTimeout(timer);
    expect({ code, out: out.includes(ANSWER) }).toEqual({ code: 0, out: true });
    expect(err).not.toContain(KEY);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen[0]).toEqual({
      authorization: `Bearer ${KEY}`,
      host: `127.0.0.1:${upstream.port}`,
      originator: "codex_exec",
      path: "/v1/responses",
    });

    const shut = await fetch(`http://127.0.0.1:${port}/shutdown`);
    expect(shut.status).toBe(200);
    expect(await proxy.exited).toBe(0);
  } finally {
    proxy.kill();
  }
}, 90_000);
