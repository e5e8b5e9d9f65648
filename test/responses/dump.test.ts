import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpBody, redact } from "../../src/responses/dump.ts";
import { startProxyChild, type ProxyChild } from "../helpers/responses.ts";
import { rawExchange } from "../helpers/raw-client.ts";

const KEY = "sk-dump_KEY-777";

test.each([
  ["Authorization", true],
  ["authorization", true],
  ["Cookie", true],
  ["set-cookie", true],
  ["X-Cookie-Thing", true],
  ["x-api-key", false],
  ["content-type", false],
])("redact %s → %p", (name, redacted) => {
  expect(redact(name, "v")).toBe(redacted ? "[REDACTED]" : "v");
});

test.each([
  [new Uint8Array(0), ""],
  [new TextEncoder().encode('{"a":[1,2]}'), { a: [1, 2] }],
  [new TextEncoder().encode("data: x\n\n"), "data: x\n\n"],
  [new Uint8Array([0x61, 0xff, 0x62]), "a\ufffdb"],
])("dumpBody %#", (bytes, expected) => {
  expect(dumpBody(bytes)).toEqual(expected);
});

describe("--dump-dir end to end", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-dump-"));
  const dumps = join(dir, "dumps", "nested");
  let upstream: ReturnType<typeof Bun.serve>;
  let proxy: ProxyChild;
  const aborted = Promise.withResolvers<void>();
  const streamStarted = Promise.withResolvers<void>();

  beforeAll(async () => {
    upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        const body = await req.text();
        if (body === "sse") {
          return new Response("event: a\ndata: {\"x\":1}\n\n", { headers: { "content-type": "text/event-stream", "Set-Cookie": "s=1" } });
        }
        if (body === "hang") {
          return new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(new TextEncoder().encode("partial"));
                streamStarted.resolve();
              },
              cancel() {
                aborted.resolve();
              },
            }),
            { headers: { "content-type": "text/plain" } },
          );
        }
        return Response.json({ id: "resp_1", output: [] }, { headers: { "x-request-id": "r1" } });
      },
    });
    proxy = await startProxyChild(["--dump-dir", dumps, "--upstream-url", `http://127.0.0.1:${upstream.port}/v1/responses`], { key: KEY });
  });
  afterAll(async () => {
    await proxy?.stop();
    upstream?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  // Dump files are written as hidden temporaries, then renamed: count only finished ones.
  const files = () => readdirSync(dumps).filter((n) => !n.startsWith(".")).sort();
  const waitFiles = async (n: number) => {
    // The response file is written right after the body ends; poll the directory a bounded
    // number of times, each step waiting on a proxy round trip (an event), not a timer.
    for (let i = 0; i < 100 && files().length < n; i++) await fetch(`${proxy.base}/nope`).then((r) => r.text());
    return files();
  };

  test("JSON call: file names, key order, redaction, bodies; rejected requests not dumped", async () => {
    const forbidden = await fetch(`${proxy.base}/v1/responses?x=1`, { method: "POST", body: "{}" });
    expect(forbidden.status).toBe(403);
    const res = await fetch(`${proxy.base}/v1/responses`, {
      method: "POST",
      headers: { Authorization: "Bearer client", Cookie: "c=1", "Content-Type": "application/json", "X-Trace": "t" },
      body: '{"model":"m","input":"hi"}',
    });
    expect(await res.json()).toEqual({ id: "resp_1", output: [] });
    const names = await waitFiles(2);
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^000001-\d{13}-request\.json$/);
    expect(names[1]).toBe(names[0]!.replace("-request.json", "-response.json"));
    const reqText = readFileSync(join(dumps, names[0]!), "utf8");
    expect(reqText.endsWith("}\n")).toBe(true);
    expect(reqText).toContain('\n  "method": "POST",\n  "url": "/v1/responses",\n');
    const req = JSON.parse(reqText);
    expect(Object.keys(req)).toEqual(["method", "url", "headers", "body"]);
    expect(req.body).toEqual({ model: "m", input: "hi" });
    const h = Object.fromEntries(req.headers.map((x: { name: string; value: string }) => [x.name.toLowerCase(), x.value]));
    expect(Object.keys(req.headers[0])).toEqual(["name", "value"]);
    expect(h.authorization).toBe("[REDACTED]");
    expect(h.cookie).toBe("[REDACTED]");
    expect(h["x-trace"]).toBe("t");
    const resp = JSON.parse(readFileSync(join(dumps, names[1]!), "utf8"));
    expect(Object.keys(resp)).toEqual(["status", "headers", "body"]);
    expect(resp.status).toBe(200);
    expect(resp.body).toEqual({ id: "resp_1", output: [] });
    const rh = Object.fromEntries(resp.headers.map((x: { name: string; value: string }) => [x.name, x.value]));
    expect(rh["x-request-id"]).toBe("r1");
    expect(rh["content-length"]).toBeDefined();
    expect(readFileSync(join(dumps, names[0]!), "utf8") + readFileSync(join(dumps, names[1]!), "utf8")).not.toContain(KEY);
  });

  test("SSE body dumped as a string; set-cookie redacted", async () => {
    const res = await fetch(`${proxy.base}/v1/responses`, { method: "POST", body: "sse" });
    expect(await res.text()).toBe('event: a\ndata: {"x":1}\n\n');
    const names = await waitFiles(4);
    expect(names[2]).toMatch(/^000002-\d{13}-request\.json$/);
    const req = JSON.parse(readFileSync(join(dumps, names[2]!), "utf8"));
    expect(req.body).toBe("sse");
    const resp = JSON.parse(readFileSync(join(dumps, names[3]!), "utf8"));
    expect(resp.body).toBe('event: a\ndata: {"x":1}\n\n');
    const rh = Object.fromEntries(resp.headers.map((x: { name: string; value: string }) => [x.name, x.value]));
    expect(rh["set-cookie"]).toBe("[REDACTED]");
    expect(rh["content-length"]).toBe("24");
  });

  test("client drops the stream: upstream aborted, response file still written", async () => {
    const done = Promise.withResolvers<void>();
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
      socket: {
        data(_s, d) {
          if (d.toString().includes("partial")) done.resolve();
        },
      },
    });
    sock.write("POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nhang");
    await streamStarted.promise;
    await done.promise;
    sock.end();
    await aborted.promise;
    const names = await waitFiles(6);
    expect(names).toHaveLength(6);
    const resp = JSON.parse(readFileSync(join(dumps, names[5]!), "utf8"));
    expect(resp).toMatchObject({ status: 200, body: "partial" });
    // Streamed upstream body: its transfer-encoding is recorded, as received.
    expect(resp.headers).toContainEqual({ name: "transfer-encoding", value: "chunked" });
  });

  test("raw: the dump url is the request target as sent", async () => {
    await rawExchange(proxy.port, "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    const names = await waitFiles(8);
    const req = JSON.parse(readFileSync(join(dumps, names[6]!), "utf8"));
    expect(req).toEqual({ method: "POST", url: "/v1/responses", headers: [{ name: "Host", value: "127.0.0.1" }, { name: "Content-Length", value: "2" }, { name: "Connection", value: "close" }], body: {} });
  });
});
