import { afterAll, describe, expect, test } from "bun:test";
import type { ClientRequest, Http1DirectClient } from "../../src/http1/types.ts";
import { routeRequest, startResponsesProxy } from "../../src/responses/server.ts";
import { emptyResponseComplete } from "../helpers/responses.ts";
import { rawExchange } from "../helpers/raw-client.ts";

describe("routeRequest (SPEC §1.4)", () => {
  test.each([
    ["POST", "/v1/responses", false, "forward"],
    ["GET", "/shutdown", true, "shutdown"],
    ["GET", "/shutdown", false, "forbidden"],
    ["GET", "/shutdown?x=1", true, "forbidden"],
    ["HEAD", "/shutdown", true, "forbidden"],
    ["POST", "/shutdown", true, "forbidden"],
    ["GET", "/v1/responses", false, "forbidden"],
    ["post", "/v1/responses", false, "forbidden"],
    ["POST", "/v1/responses?x=1", false, "forbidden"],
    ["POST", "/v1/responses?", false, "forbidden"],
    ["POST", "/v1/responses/", false, "forbidden"],
    ["POST", "/V1/responses", false, "forbidden"],
    ["POST", "/v1/responses/compact", false, "forbidden"],
    ["POST", "http://127.0.0.1/v1/responses", false, "forbidden"],
    ["POST", "/v1/./responses", false, "forbidden"],
    ["POST", "//v1/responses", false, "forbidden"],
  ])("%s %s (shutdown flag %p) → %s", (method, target, flag, expected) => {
    expect(routeRequest({ method, target, upgrade: false }, flag)).toBe(expected as never);
  });

  test("upgrade attempts are forbidden even on the accepted route", () => {
    expect(routeRequest({ method: "POST", target: "/v1/responses", upgrade: true }, true)).toBe("forbidden");
  });
});

describe("403 on the wire (raw bytes)", () => {
  const calls: ClientRequest[] = [];
  const client: Http1DirectClient = {
    async request(req) {
      calls.push(req);
      throw new Error("stub upstream: not reachable");
    },
    async requestDirect(req) {
      calls.push(req);
      throw new Error("stub upstream: not reachable");
    },
    send(req, handler) {
      calls.push(req);
      handler.onError(new Error("stub upstream: not reachable"));
    },
    close() {},
  };
  let shutdowns = 0;
  const server = startResponsesProxy({
    port: 0,
    httpShutdown: false,
    upstream: new URL("http://127.0.0.1:9/v1/responses"),
    authorization: new TextEncoder().encode("Bearer k"),
    client,
    dumper: null,
    onShutdown: () => shutdowns++,
    logError: () => {},
  });
  afterAll(() => server.stop(0));

  const FORBIDDEN = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n";

  test.each([
    ["GET /v1/responses", "GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    ["query string", "POST /v1/responses?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["trailing slash", "POST /v1/responses/ HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["upper case", "POST /V1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["compact", "POST /v1/responses/compact HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["absolute-form", "POST http://127.0.0.1/v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["absolute-form to another host", "POST https://api.openai.com/v1/responses HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"],
    ["dot segment", "POST /v1/./responses HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["PUT", "PUT /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n"],
    ["OPTIONS", "OPTIONS /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    ["CONNECT", "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n"],
    ["asterisk", "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    ["shutdown without the flag", "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"],
    [
      "WebSocket upgrade",
      "GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ],
    ["upgrade on the accepted route", "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n"],
  ])("%s → 403, empty body, not forwarded", async (_name, request) => {
    const before = calls.length;
    const r = await rawExchange(server.port, request, emptyResponseComplete);
    expect(r.text.startsWith(FORBIDDEN)).toBe(true);
    expect(r.text.endsWith("\r\n\r\n")).toBe(true);
    expect(calls.length).toBe(before);
  });

  test("the body of a rejected request is not read: 403 then connection closed", async () => {
    const body = "x".repeat(100);
    const r = await rawExchange(server.port, `POST /v1/responses?x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n${body}`);
    expect(r.text).toBe("HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    expect(r.closed).toBe(true);
    expect(calls.length).toBe(0);
  });

  test("body-less rejected requests keep the connection: two 403s on one connection", async () => {
    const req = "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const r = await rawExchange(server.port, req + req, (t) => t.split("403 Forbidden").length === 3);
    expect(r.text).toBe(`${FORBIDDEN}\r\n${FORBIDDEN}\r\n`);
  });

  test("byte-at-a-time head is parsed", async () => {
    const done = Promise.withResolvers<string>();
    let text = "";
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: server.port,
      socket: {
        data(_s, d) {
          text += d.toString();
          if (emptyResponseComplete(text)) done.resolve(text);
        },
        close: () => done.resolve(text),
      },
    });
    for (const ch of "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") socket.write(ch);
    expect(await done.promise).toBe(`${FORBIDDEN}\r\n`);
    socket.end();
  });

  test.each([
    ["malformed request line", "GARBAGE\r\n\r\n", 400],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n folded\r\n\r\n", 400],
    ["TE + CL", "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["conflicting CL", "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400],
    ["HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505],
  ])("bad head: %s → %d and close", async (_n, request, status) => {
    const r = await rawExchange(server.port, request);
    expect(r.text.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
    expect(r.closed).toBe(true);
  });

  test("a head over 64 KiB → 431", async () => {
    const r = await rawExchange(server.port, `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(70_000)}\r\n\r\n`);
    expect(r.text.startsWith("HTTP/1.1 431 ")).toBe(true);
  });

  test("upstream failure → empty 500 and the listener keeps serving", async () => {
    const req = "POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}";
    const r1 = await rawExchange(server.port, req, emptyResponseComplete);
    expect(r1.text).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n$/);
    const r2 = await rawExchange(server.port, req, emptyResponseComplete);
    expect(r2.text.startsWith("HTTP/1.1 500 ")).toBe(true);
    expect(shutdowns).toBe(0);
  });
});
