import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { startProxyChild, type ProxyChild } from "../../helpers/responses.ts";

const KEY = "sk-sdk_Test-KEY-0123456789";

/**
 * The official SDK streams a response through the proxy (child process, key on stdin) from a
 * fake upstream that sends each SSE event only after the SDK has received the previous one:
 * if the proxy buffered, the test would deadlock and fail by timeout.
 */
describe("openai SDK, streaming responses.create through the proxy", () => {
  const events = [
    { type: "response.created", sequence_number: 0, response: { id: "resp_1", object: "response", status: "in_progress", output: [] } },
    { type: "response.output_text.delta", sequence_number: 1, item_id: "msg_1", output_index: 0, content_index: 0, delta: "Hel" },
    { type: "response.output_text.delta", sequence_number: 2, item_id: "msg_1", output_index: 0, content_index: 0, delta: "lo" },
    {
      type: "response.completed",
      sequence_number: 3,
      response: {
        id: "resp_1",
        object: "response",
        status: "completed",
        model: "gpt-test",
        output: [{ type: "message", id: "msg_1", role: "assistant", status: "completed", content: [{ type: "output_text", text: "Hello", annotations: [] }] }],
      },
    },
  ];
  // gates[i] is resolved by the test when the SDK received event i.
  const gates = events.map(() => Promise.withResolvers<void>());
  const seenByUpstream: Array<{ auth: string | null; host: string | null; custom: string | null; ua: string | null; body: unknown }> = [];
  let upstream: ReturnType<typeof Bun.serve>;
  let proxy: ProxyChild;

  beforeAll(async () => {
    upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        seenByUpstream.push({
          auth: req.headers.get("authorization"),
          host: req.headers.get("host"),
          custom: req.headers.get("x-test-header"),
          ua: req.headers.get("user-agent"),
          body: await req.json(),
        });
        const enc = new TextEncoder();
        let i = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (i >= events.length) return controller.close();
            if (i > 0) await gates[i - 1]!.promise;
            const e = events[i++]!;
            controller.enqueue(enc.encode(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      },
    });
    proxy = await startProxyChild(["--upstream-url", `http://127.0.0.1:${upstream.port}/v1/responses`], { key: KEY });
  });
  afterAll(async () => {
    await proxy?.stop();
    upstream?.stop(true);
  });

  test("each event reaches the SDK before the next is sent; final response intact", async () => {
    const client = new OpenAI({ apiKey: "not-the-real-key", baseURL: `${proxy.base}/v1`, defaultHeaders: { "x-test-header": "abc" }, maxRetries: 0 });
    const stream = await client.responses.create({ model: "gpt-test", input: "Say hello", stream: true });
    const received: unknown[] = [];
    for await (const event of stream) {
      received.push(event);
      gates[received.length - 1]!.resolve();
    }
    expect(received).toEqual(events);
    expect(seenByUpstream).toHaveLength(1);
    const s = seenByUpstream[0]!;
    expect(s.auth).toBe(`Bearer ${KEY}`);
    expect(s.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(s.custom).toBe("abc");
    expect(s.ua).toContain("OpenAI/JS");
    expect(s.body).toEqual({ model: "gpt-test", input: "Say hello", stream: true });
    expect(proxy.stderr.text).not.toContain(KEY);
  });
});
