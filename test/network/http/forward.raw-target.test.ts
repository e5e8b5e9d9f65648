/**
 * What the upstream sees of a forwarded plain-HTTP request, on the wire: the request-target's
 * path and query byte-exact as the client sent them (RFC 9112 §3.2; raw-socket clients, since
 * curl normalises), and request bodies with the client's framing (a large content-length
 * upload stays content-length, not chunked). Real proxy listener, raw fake origin.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { curl } from "../../helpers/network.ts";
import { splitResponse, startFixedTargetListener, startProxy } from "../../helpers/http-proxy.ts";
import { rawClient } from "../../helpers/raw-client.ts";
import { startRawUpstream } from "../../helpers/raw-upstream.ts";
import { removeTempDirs, tempDir } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const origin = startRawUpstream();
const up = origin.port;
const proxy = startProxy({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
afterAll(async () => {
  await proxy.stop();
  origin.stop();
});

/** Send `request` on a fresh raw connection; resolve with the upstream's echo of the request line it saw. */
async function seenLine(request: string, port = proxy.port): Promise<string> {
  const before = origin.requests.length;
  const c = await rawClient(port);
  try {
    c.write(request);
    const res = splitResponse(await c.until((t) => /\r\n\r\n[^]*HTTP\/1\.1$/.test(t)));
    expect(res.status).toBe(200);
    expect(origin.requests.length).toBe(before + 1);
    expect(origin.requests[before]!.requestLine).toBe(res.body);
    return res.body;
  } finally {
    c.socket.end();
  }
}

// Dot-segments (also encoded), an encoded slash, a path parameter, characters the URL
// parser would percent-encode, and a query with its own dot-segments.
const RAW = "/a/../b/%2F;p=1/./c/%2e%2E/{x}|^`\\?q=%2F..&r=a/../b&s=\"'<>";

describe("request-target forwarded byte-exact", () => {
  test("absolute-form: path and query exactly as sent", async () => {
    const line = await seenLine(`GET http://allowed.test:${up}${RAW} HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n`);
    expect(line).toBe(`GET ${RAW} HTTP/1.1`);
  });

  test("origin-form with Host: path and query exactly as sent", async () => {
    const line = await seenLine(`DELETE ${RAW} HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n`);
    expect(line).toBe(`DELETE ${RAW} HTTP/1.1`);
  });

  test("empty path → / (query kept); OPTIONS with empty path → *; a fragment is not sent", async () => {
    expect(await seenLine(`GET http://allowed.test:${up}?q=/../%2F HTTP/1.1\r\n\r\n`)).toBe("GET /?q=/../%2F HTTP/1.1");
    expect(await seenLine(`OPTIONS http://allowed.test:${up} HTTP/1.1\r\n\r\n`)).toBe("OPTIONS * HTTP/1.1");
    expect(await seenLine(`OPTIONS http://allowed.test:${up}/ HTTP/1.1\r\n\r\n`)).toBe("OPTIONS / HTTP/1.1");
    expect(await seenLine(`GET http://allowed.test:${up}/x/../y?z#frag HTTP/1.1\r\n\r\n`)).toBe("GET /x/../y?z HTTP/1.1");
  });

  test("keep-alive: two raw targets on one client connection, each byte-exact", async () => {
    const c = await rawClient(proxy.port);
    const before = origin.requests.length;
    try {
      c.write(
        `GET http://allowed.test:${up}/one/..;a HTTP/1.1\r\n\r\n` +
          `GET http://allowed.test:${up}/two/%2e%2e/%2F HTTP/1.1\r\n\r\n`,
      );
      await c.until((t) => t.endsWith("GET /two/%2e%2e/%2F HTTP/1.1"));
      expect(origin.requests.slice(before).map((r) => r.requestLine)).toEqual([
        "GET /one/..;a HTTP/1.1",
        "GET /two/%2e%2e/%2F HTTP/1.1",
      ]);
    } finally {
      c.socket.end();
    }
  });

  test("SOCKS5-style hand-off with a fixed target: origin-form and absolute-form byte-exact", async () => {
    const socksLike = startFixedTargetListener(proxy.ctx, { host: "allowed.test", port: up, addresses: ["127.0.0.1"] });
    try {
      const host = `Host: allowed.test:${up}\r\n`;
      expect(await seenLine(`GET ${RAW} HTTP/1.1\r\n${host}\r\n`, socksLike.port)).toBe(`GET ${RAW} HTTP/1.1`);
      expect(await seenLine(`GET http://allowed.test:${up}/p/../q;r?s=%2F HTTP/1.1\r\n${host}\r\n`, socksLike.port)).toBe(
        "GET /p/../q;r?s=%2F HTTP/1.1",
      );
    } finally {
      await socksLike.stop();
    }
  });
});

describe("request body framing kept upstream", () => {
  const dir = tempDir("cnp-raw-target-");

  test("a 3 MiB content-length upload arrives with content-length (not chunked), byte-exact", async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const file = join(dir, "upload.bin");
    writeFileSync(file, body);
    const before = origin.requests.length;
    const r = await curl(["-x", proxy.url, "--data-binary", `@${file}`, `http://allowed.test:${up}/upload`]);
    expect([r.exitCode, r.status, r.body]).toEqual([0, 200, "POST /upload HTTP/1.1"]);
    const got = origin.requests[before]!;
    expect(got.framing).toBe("length");
    expect(got.headers.filter(([k]) => k === "content-length" || k === "transfer-encoding")).toEqual([
      ["content-length", String(body.byteLength)],
    ]);
    expect(got.body.equals(body)).toBe(true);
  });

  test("a small content-length body and a chunked body keep their framing", async () => {
    const before = origin.requests.length;
    const small = await curl(["-x", proxy.url, "--data-binary", "0123456789", `http://allowed.test:${up}/small`]);
    expect(small.status).toBe(200);
    const chunked = await curl([
      "-x", proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", "abc", `http://allowed.test:${up}/chunked`,
    ]);
    expect(chunked.status).toBe(200);
    const [a, b] = origin.requests.slice(before);
    expect([a!.framing, a!.headers.find(([k]) => k === "content-length")?.[1], a!.body.toString()]).toEqual([
      "length",
      "10",
      "0123456789",
    ]);
    expect([b!.framing, b!.body.toString()]).toEqual(["chunked", "abc"]);
  });

  test("a client that leaves mid-way through a large content-length body: the upstream connection is closed, no request completes", async () => {
    const lone = startRawUpstream();
    try {
      const total = 2 * 1024 * 1024;
      const c = await rawClient(proxy.port);
      c.write(
        `PUT http://allowed.test:${lone.port}/cut HTTP/1.1\r\nHost: allowed.test:${lone.port}\r\ncontent-length: ${total}\r\n\r\n`,
      );
      c.write(new Uint8Array(64 * 1024).fill(0x61));
      // Leave once the request is under way upstream (head and some body bytes arrived).
      await lone.received(0, 1024);
      c.socket.end();
      const left = await lone.closed(0);
      expect(lone.requests.length).toBe(0);
      const head = left.toString("latin1", 0, left.indexOf("\r\n\r\n") + 4);
      expect(head).toStartWith("PUT /cut HTTP/1.1\r\n");
      expect(head).toContain(`\r\ncontent-length: ${total}\r\n`);
      expect(head).not.toContain("transfer-encoding");
      expect(left.byteLength - head.length).toBeLessThan(total);
    } finally {
      lone.stop();
    }
  });
});
