/**
 * One behaviour suite for the front ends of the one HTTP/1.1 request loop
 * (src/network/http/connection.ts): the plain listener and the MITM's decrypted side run the
 * same cases (hono's `common.case.test.ts` pattern). A rig opens a client connection that
 * speaks HTTP/1.1 to the loop (plain TCP, or TLS through CONNECT) and names request-targets
 * on one fake origin (`startConformanceOrigin`, HTTP or HTTPS).
 *
 * Cases: keep-alive, pipelining, 100-continue, a bad chunked body, backpressure both ways
 * (a streamed upload and a download read slowly), and a client closing mid-body.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { Duplex } from "node:stream";
import { failAfter } from "./helpers.ts";

/** A client connection to the loop under test. */
export interface ConformanceConn {
  socket: Duplex;
  /** Write bytes (the rig's socket buffers; backpressure is the socket's). */
  write(data: string | Uint8Array): void;
  /** The next whole response (1xx included), parsed. Rejects on close or after `ms`. */
  response(ms?: number): Promise<ParsedResponse>;
  /** Resolves once the connection closed. Rejects after `ms`. */
  closed(ms?: number): Promise<void>;
  /** Whether it has closed. */
  readonly isClosed: boolean;
}

/** A response as the client saw it. */
export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What each front end provides. */
export interface ConformanceRig {
  /** Open a client connection to the loop. */
  open(): Promise<ConformanceConn>;
  /** The request-target for `path` on the origin (absolute-form or origin-form). */
  target(path: string): string;
  /** The Host field value naming the origin. */
  host: string;
  /** Paths the origin received, in order. */
  seen(): string[];
  /** Request headers the origin received for the last request (lower-case names). */
  lastHeaders(): Record<string, string>;
}

/** Shared with the rigs: answers of the fake origin. */
function originFetch(seen: string[], headers: Array<Record<string, string>>) {
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    seen.push(url.pathname + url.search);
    headers.push(Object.fromEntries(req.headers));
    if (url.pathname === "/big") {
      const n = Number(url.searchParams.get("n"));
      const body = new Uint8Array(n);
      for (let i = 0; i < n; i++) body[i] = i & 0xff;
      return new Response(body, { headers: { "content-type": "application/octet-stream" } });
    }
    const body = new Uint8Array(await req.arrayBuffer());
    const sha = createHash("sha256").update(body).digest("hex");
    return new Response(`${req.method} ${url.pathname}${url.search} ${body.byteLength} ${sha}`, {
      headers: { "content-type": "text/plain" },
    });
  };
}

/**
 * The fake origin of the suite on 127.0.0.1:0 (HTTPS with `tls`): `/big?n=N` answers N
 * pattern bytes; anything else answers `<method> <path> <body length> <sha256 of body>`.
 */
export function startConformanceOrigin(tls?: { key: string; cert: string }) {
  const seen: string[] = [];
  const headers: Array<Record<string, string>> = [];
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, tls, fetch: originFetch(seen, headers) });
  return {
    port: server.port!,
    seen: () => [...seen],
    lastHeaders: () => headers[headers.length - 1] ?? {},
    stop: () => server.stop(true),
  };
}

/** Wrap a connected node socket (net or tls) as a ConformanceConn with an incremental response parser. */
export function wrapConn(socket: Duplex): ConformanceConn {
  let buf: Buffer = Buffer.alloc(0);
  let closed = false;
  const closedP = Promise.withResolvers<void>();
  let wake: (() => void) | null = null;
  socket.on("data", (b: Buffer) => {
    buf = buf.byteLength === 0 ? b : Buffer.concat([buf, b]);
    wake?.();
  });
  socket.on("close", () => {
    closed = true;
    closedP.resolve();
    wake?.();
  });
  socket.on("error", () => {});
  /** One response from the front of `buf`, or null when incomplete. */
  const take = (): ParsedResponse | null => {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return null;
    const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(":");
      headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    let pos = end + 4;
    let body: Buffer;
    if (status < 200) body = Buffer.alloc(0);
    else if (headers["transfer-encoding"] === "chunked") {
      const parts: Buffer[] = [];
      for (;;) {
        const lf = buf.indexOf("\r\n", pos);
        if (lf < 0) return null;
        const size = parseInt(buf.subarray(pos, lf).toString("latin1"), 16);
        if (buf.byteLength < lf + 2 + size + 2) return null;
        if (size === 0) {
          pos = lf + 4;
          break;
        }
        parts.push(buf.subarray(lf + 2, lf + 2 + size));
        pos = lf + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers["content-length"] ?? 0);
      if (buf.byteLength < pos + len) return null;
      body = buf.subarray(pos, pos + len);
      pos += len;
    }
    buf = buf.subarray(pos);
    return { status, headers, body: Buffer.from(body) };
  };
  return {
    socket,
    write: (d) => void socket.write(typeof d === "string" ? Buffer.from(d, "latin1") : d),
    get isClosed() {
      return closed;
    },
    async response(ms = 10_000) {
      const fail = failAfter(ms, "response");
      try {
        for (;;) {
          const r = take();
          if (r) return r;
          if (closed) throw new Error(`closed before a whole response; have ${JSON.stringify(buf.toString("latin1").slice(0, 300))}`);
          await Promise.race([new Promise<void>((res) => (wake = res)), fail.promise]);
        }
      } finally {
        wake = null;
        fail.cancel();
      }
    },
    async closed(ms = 5000) {
      const fail = failAfter(ms, "close");
      try {
        await Promise.race([closedP.promise, fail.promise]);
      } finally {
        fail.cancel();
      }
    },
  };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const EMPTY_SHA = sha256(new Uint8Array(0));

/** Register the shared cases for one front end. `rig()` is read when the tests run (set up in beforeAll). */
export function runConformanceCases(name: string, rig: () => ConformanceRig): void {
  describe(`HTTP/1.1 loop conformance: ${name}`, () => {
    const get = (r: ConformanceRig, path: string, extra = "") =>
      `GET ${r.target(path)} HTTP/1.1\r\nHost: ${r.host}\r\n${extra}\r\n`;

    test("keep-alive: two requests on one connection, each answered, the connection stays open", async () => {
      const r = rig();
      const c = await r.open();
      try {
        c.write(get(r, "/ka1"));
        const a = await c.response();
        c.write(get(r, "/ka2"));
        const b = await c.response();
        expect([a.status, a.body.toString(), b.status, b.body.toString()]).toEqual([
          200,
          `GET /ka1 0 ${EMPTY_SHA}`,
          200,
          `GET /ka2 0 ${EMPTY_SHA}`,
        ]);
        expect(c.isClosed).toBe(false);
      } finally {
        c.socket.destroy();
      }
    });

    test("pipelining: requests sent in one write are answered in order", async () => {
      const r = rig();
      const c = await r.open();
      try {
        c.write(get(r, "/p?1") + get(r, "/p?2") + get(r, "/p?3"));
        const bodies: string[] = [];
        for (let i = 0; i < 3; i++) bodies.push((await c.response()).body.toString());
        expect(bodies).toEqual([1, 2, 3].map((i) => `GET /p?${i} 0 ${EMPTY_SHA}`));
      } finally {
        c.socket.destroy();
      }
    });

    test("100-continue: the proxy answers 100, takes the body, and does not forward the expectation", async () => {
      const r = rig();
      const c = await r.open();
      try {
        const body = "hello continue";
        c.write(
          `POST ${r.target("/cont")} HTTP/1.1\r\nHost: ${r.host}\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        const interim = await c.response();
        expect(interim.status).toBe(100);
        c.write(body);
        const final = await c.response();
        expect([final.status, final.body.toString()]).toEqual([200, `POST /cont ${body.length} ${sha256(Buffer.from(body))}`]);
        expect(r.lastHeaders().expect).toBeUndefined();
      } finally {
        c.socket.destroy();
      }
    });

    test("a bad chunked request body → 400 invalid request body (request-side decoder), then close", async () => {
      const r = rig();
      const c = await r.open();
      try {
        c.write(`POST ${r.target("/bad")} HTTP/1.1\r\nHost: ${r.host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n`);
        const res = await c.response();
        expect([res.status, res.body.toString(), res.headers.connection]).toEqual([400, "invalid request body", "close"]);
        // A chunked body streams: the origin may have seen the head; the upload is abandoned.
        await c.closed();
      } finally {
        c.socket.destroy();
      }
    });

    test("backpressure: a 4 MiB chunked upload and an 8 MiB download read slowly arrive whole", async () => {
      const r = rig();
      const c = await r.open();
      try {
        const up = new Uint8Array(4 * 1024 * 1024);
        for (let i = 0; i < up.byteLength; i++) up[i] = (i * 7) & 0xff;
        c.write(`POST ${r.target("/upload")} HTTP/1.1\r\nHost: ${r.host}\r\nTransfer-Encoding: chunked\r\n\r\n`);
        // Chunks larger than the loop's stream high-water mark, so the client socket is paused.
        const CHUNK = 512 * 1024;
        for (let off = 0; off < up.byteLength; off += CHUNK) {
          const piece = up.subarray(off, off + CHUNK);
          c.write(`${piece.byteLength.toString(16)}\r\n`);
          c.write(piece);
          c.write("\r\n");
        }
        c.write("0\r\n\r\n");
        const res = await c.response(30_000);
        expect([res.status, res.body.toString()]).toEqual([200, `POST /upload ${up.byteLength} ${sha256(up)}`]);

        // The client reads one chunk per macrotask, so the proxy's write queue fills and the
        // upstream is paused; every byte must still arrive, in order.
        const n = 8 * 1024 * 1024;
        c.socket.on("data", () => {
          c.socket.pause();
          setImmediate(() => c.socket.resume());
        });
        c.write(get(r, `/big?n=${n}`));
        const big = await c.response(30_000);
        expect(big.status).toBe(200);
        expect(big.body.byteLength).toBe(n);
        let bad = -1;
        for (let i = 0; i < n; i++) {
          if (big.body[i] !== (i & 0xff)) {
            bad = i;
            break;
          }
        }
        expect(bad).toBe(-1);
      } finally {
        c.socket.destroy();
      }
    }, 60_000);

    test("early close: a client gone mid-body is abandoned; the origin never sees it; others are served", async () => {
      const r = rig();
      const c = await r.open();
      c.write(`POST ${r.target("/early")} HTTP/1.1\r\nHost: ${r.host}\r\nContent-Length: 100000\r\n\r\n0123456789`);
      c.socket.destroy();
      await c.closed();
      const d = await r.open();
      try {
        d.write(get(r, "/after"));
        const res = await d.response();
        expect([res.status, res.body.toString()]).toEqual([200, `GET /after 0 ${EMPTY_SHA}`]);
        expect(r.seen().includes("/early")).toBe(false);
      } finally {
        d.socket.destroy();
      }
    });
  });
}
