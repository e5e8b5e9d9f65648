import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startProxyChild, type ProxyChild } from "../../helpers/responses.ts";

const CODEX = join(ROOT, "node_modules", ".bin", "codex");
const KEY = "sk-codex-cli_KEY-1";

/** The real client of this proxy: `codex exec` with a model provider pointing at it (seed READMEs). */
describe.skipIf(!existsSync(CODEX) || process.platform === "win32")("Codex CLI end to end", () => {
  const home = mkdtempSync(join(tmpdir(), "rp-codex-"));
  const seen: Array<{ method: string; path: string; auth: string | null; host: string | null; model: unknown }> = [];
  let upstream: ReturnType<typeof Bun.serve>;
  let proxy: ProxyChild;
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
  });
  afterAll(async () => {
    await proxy?.stop();
    upstream?.stop(true);
    rmSync(home, { recursive: true, force: true });
  });

  test("codex exec gets the model's answer through the proxy; the upstream sees the proxy's key", async () => {
    const proc = Bun.spawn(
      [
        CODEX,
        "exec",
        "--skip-git-repo-check",
        "-c",
        `model_providers.proxy={ name = 'proxy', base_url = '${proxy.base}/v1', wire_api = 'responses' }`,
        "-c",
        "model_provider=proxy",
        "-c",
        "model=gpt-test",
        "say pong",
      ],
      {
        cwd: home,
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: { PATH: process.env.PATH, HOME: home, CODEX_HOME: home },
      },
    );
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, out, err: code === 0 ? "" : err }).toEqual({ code: 0, out: "pong from fake upstream\n", err: "" });
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen[0]).toEqual({ method: "POST", path: "/v1/responses", auth: `Bearer ${KEY}`, host: `127.0.0.1:${upstream.port}`, model: "gpt-test" });
  }, 60_000);
});
