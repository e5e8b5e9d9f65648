/**
 * The responses proxy's access line (issue 13): one line per request when it ends, with
 * client, method, path without query, status, bytes each way, duration and the upstream's time
 * to first byte; never a header value or a query; `--log-level warn` silences it; text lines
 * start with an RFC 3339 UTC timestamp, JSON lines carry `event.timestamp`.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rawExchange } from "../helpers/raw-client.ts";
import { startProxyChild } from "../helpers/responses.ts";

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const KEY = "sk-access_LOG-test";
const ANSWER = JSON.stringify({ id: "resp_1", output: [] });

const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    await req.arrayBuffer();
    return new Response(ANSWER, { headers: { "content-type": "application/json", "x-secret-header": "do-not-log" } });
  },
});
afterAll(() => upstream.stop(true));
const UPSTREAM = `http://127.0.0.1:${upstream.port}/v1/responses`;

const post = (port: number, body: string) =>
  fetch(`http://127.0.0.1:${port}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer client-secret-xyz" },
    body,
  });

describe("access line", () => {
  test("json: one line per request with the OpenTelemetry-style fields, no query, no header value", async () => {
    const p = await startProxyChild(["--upstream-url", UPSTREAM, "--log-format", "json"], { key: KEY });
    try {
      const body = JSON.stringify({ model: "x", input: "hello" });
      const r = await post(p.port, body);
      expect(await r.text()).toBe(ANSWER);
      const forbidden = await fetch(`http://127.0.0.1:${p.port}/v1/models?api_key=query-secret`);
      expect(forbidden.status).toBe(403);
      await p.stderr.wait(/"url\.path":"\/v1\/models"/);
      const lines = p.stderr.lines.map((l) => JSON.parse(l));
      expect(lines[0]).toEqual({ "event.timestamp": expect.stringMatching(TS), level: "info", msg: `responses-api-proxy listening on 127.0.0.1:${p.port}` });
      const access = lines.filter((l) => l["event.name"] === "codex.responses_api_proxy.access");
      expect(access).toEqual([
        {
          "event.timestamp": expect.stringMatching(TS),
          level: "info",
          msg: "access",
          "event.name": "codex.responses_api_proxy.access",
          "client.address": expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          "http.request.method": "POST",
          "url.path": "/v1/responses",
          "network.transport.protocol": "http",
          "http.response.status_code": 200,
          "network.bytes_up": expect.any(Number),
          "network.bytes_down": expect.any(Number),
          "event.duration_ms": expect.any(Number),
          "upstream.ttfb_ms": expect.any(Number),
          "event.outcome": "complete",
        },
        {
          "event.timestamp": expect.stringMatching(TS),
          level: "info",
          msg: "access",
          "event.name": "codex.responses_api_proxy.access",
          "client.address": expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          "http.request.method": "GET",
          "url.path": "/v1/models",
          "network.transport.protocol": "http",
          "http.response.status_code": 403,
          "network.bytes_up": expect.any(Number),
          "network.bytes_down": expect.any(Number),
          "event.duration_ms": expect.any(Number),
          "event.outcome": "complete",
        },
      ]);
      const [ok] = access;
      // Up: the request head plus the body; down: the response head plus the answer.
      expect(ok["network.bytes_up"]).toBeGreaterThan(body.length + 40);
      expect(ok["network.bytes_down"]).toBeGreaterThan(ANSWER.length + 17);
      expect(ok["upstream.ttfb_ms"]).toBeLessThanOrEqual(ok["event.duration_ms"]);
      expect(p.stderr.text).not.toMatch(/query-secret|client-secret|do-not-log|sk-access/);
    } finally {
      await p.stop();
    }
  });

  test("text: timestamp first, then `access` and the fields", async () => {
    const p = await startProxyChild(["--upstream-url", UPSTREAM], { key: KEY });
    try {
      // A head the parser refuses is a request too: 400, no method.
      await rawExchange(p.port, "GARBAGE\r\n\r\n");
      await (await post(p.port, "{}")).text();
      const m = await p.stderr.wait(/ http\.request\.method=POST /);
      expect(p.stderr.lines[0]).toBe(`responses-api-proxy listening on 127.0.0.1:${p.port}`);
      expect(m!.input).toMatch(
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z access event\.name=codex\.responses_api_proxy\.access client\.address=127\.0\.0\.1:\d+ http\.request\.method=POST url\.path=\/v1\/responses network\.transport\.protocol=http http\.response\.status_code=200 network\.bytes_up=\d+ network\.bytes_down=\d+ event\.duration_ms=[\d.]+ upstream\.ttfb_ms=[\d.]+ event\.outcome=complete$/,
      );
      expect(p.stderr.lines[1]).toMatch(
        /^\S+Z access event\.name=codex\.responses_api_proxy\.access client\.address=127\.0\.0\.1:\d+ network\.transport\.protocol=http http\.response\.status_code=400 network\.bytes_up=11 network\.bytes_down=\d+ event\.duration_ms=[\d.]+ event\.outcome=complete$/,
      );
    } finally {
      await p.stop();
    }
  });

  test("--log-level warn: no access lines", async () => {
    const p = await startProxyChild(["--upstream-url", UPSTREAM, "--log-level", "warn"], { key: KEY });
    try {
      await (await post(p.port, "{}")).text();
      expect((await fetch(`http://127.0.0.1:${p.port}/nope`)).status).toBe(403);
      // The shutdown of the child flushes stderr: then nothing but the listening line is there.
      p.proc.kill("SIGTERM");
      await p.proc.exited;
      await p.stderr.ended;
      expect(p.stderr.lines).toEqual([`responses-api-proxy listening on 127.0.0.1:${p.port}`]);
    } finally {
      await p.stop();
    }
  });

  test("a client that leaves mid-stream: outcome client_closed, the status it got", async () => {
    const { promise: sent, resolve: firstSent } = Promise.withResolvers<void>();
    const slow = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch: () =>
        new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode("data: one\n\n"));
              firstSent();
              // Never closes: the client leaves first.
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
    });
    const p = await startProxyChild(["--upstream-url", `http://127.0.0.1:${slow.port}/v1/responses`], { key: KEY });
    try {
      await rawExchange(p.port, "POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n{}", (t) => t.includes("data: one"));
      await sent;
      const m = await p.stderr.wait(/event\.outcome=client_closed$/);
      expect(m!.input).toContain(" http.response.status_code=200 ");
    } finally {
      await p.stop();
      slow.stop(true);
    }
  });
});
