/**
 * Helpers for the HTTP proxy listener tests: a listener on a test context, raw-socket
 * exchanges, a self-signed certificate for fake TLS upstreams, and real ClientHello bytes.
 * Everything is on 127.0.0.1 with port 0; every wait is bounded and event-driven.
 */
import type { Socket } from "bun";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHttpProxyListener, type HttpListenerOptions } from "../../../src/network/http/listener.ts";
import { createHttpConnectionHandler } from "../../../src/network/http/connection.ts";
import { socksFrontEnd } from "../../../src/network/http/conn-io.ts";
import { concatBytes } from "../../../src/network/bytes.ts";
import { listenDelegating, type DelegatingListener } from "../../../src/network/listen-delegate.ts";
import { parseClientHello } from "../../../src/network/tls-sni.ts";
import type { CheckedTarget, Dialer, NetworkContext, RuntimeConfig } from "../../../src/network/types.ts";
import { createNetworkContext } from "../../../src/network/context.ts";
import { captureLogger, createTestContext, mapResolver, testConfig, type DeepPartial } from "../../helpers/network.ts";

/** A proxy listener on a fresh test context. */
export function startProxy(
  over: DeepPartial<RuntimeConfig> = {},
  opts: HttpListenerOptions & { table?: Record<string, string[]>; dialer?: Dialer } = {},
) {
  const made = opts.dialer
    ? (() => {
        const resolver = mapResolver(opts.table);
        const { log, lines } = captureLogger();
        const ctx = createNetworkContext({ config: testConfig(over), resolver, log, dialer: opts.dialer });
        return { ctx, resolver, lines, log };
      })()
    : createTestContext(over, opts.table);
  const listener = startHttpProxyListener(made.ctx, { host: "127.0.0.1", port: 0 }, opts);
  return { ...made, port: listener.port, url: `http://127.0.0.1:${listener.port}`, stop: () => listener.stop() };
}

/**
 * A listener standing in for SOCKS5's limited-mode hand-off: every accepted connection goes to
 * an HTTP connection handler pinned to `target` (protocol `socks5_tcp`), as peek.ts does.
 */
export function startFixedTargetListener(ctx: NetworkContext, target: CheckedTarget): DelegatingListener {
  return listenDelegating({
    addr: { host: "127.0.0.1", port: 0 },
    log: ctx.log,
    name: "fixed-target test",
    accept(s) {
      const handler = createHttpConnectionHandler(ctx, { frontEnd: socksFrontEnd(target) });
      handler.attach(s);
      return handler;
    },
  });
}

/** Reject after `ms` (a failsafe so a regression fails instead of hanging; never used to wait). */
export function failAfter(ms: number, what: string): { promise: Promise<never>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout>;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** `p`, or a rejection naming `what` after `ms` (a failsafe, never a wait). */
async function settled<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const fail = failAfter(ms, what);
  try {
    return await Promise.race([p, fail.promise]);
  } finally {
    fail.cancel();
  }
}

/** A raw client connection collecting everything it receives. */
export interface RawClient {
  socket: Socket<undefined>;
  /** Everything received so far (latin1). */
  text(): string;
  bytes(): Uint8Array;
  /** Resolve once `pred(received)` holds (checked on every data event) or reject on close/timeout. */
  until(pred: (received: string) => boolean, ms?: number): Promise<string>;
  /** Resolves with everything received once the server closed the connection. */
  closed(ms?: number): Promise<string>;
  /** Resolves with everything received once the peer's FIN arrived (`allowHalfOpen` clients) or it closed. */
  ended(ms?: number): Promise<string>;
  /** Write `data`; throws if the socket did not take all of it (small test writes). */
  write(data: string | Uint8Array): void;
  /** Write `data` whole, waiting for `drain` when the socket takes only part of it. */
  writeAll(data: Uint8Array, ms?: number): Promise<void>;
}

/**
 * Connect a raw TCP client to 127.0.0.1:`port`. With `allowHalfOpen` the client stays
 * writable after the peer's FIN (`ended()` resolves) until it calls `socket.shutdown()`/`end()`.
 */
export async function rawClient(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<RawClient> {
  const chunks: Uint8Array[] = [];
  const waiters: Array<() => void> = [];
  const closedP = Promise.withResolvers<void>();
  const endedP = Promise.withResolvers<void>();
  let drained: (() => void) | null = null;
  let isClosed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: opts.allowHalfOpen ?? false,
    socket: {
      data(_s, d) {
        chunks.push(new Uint8Array(d));
        for (const w of waiters.splice(0)) w();
      },
      drain() {
        drained?.();
      },
      end() {
        endedP.resolve();
      },
      close() {
        endedP.resolve();
        drained?.();
        isClosed = true;
        closedP.resolve();
        for (const w of waiters.splice(0)) w();
      },
    },
  });
  socket.setNoDelay(true);
  const bytes = () => concatBytes(chunks);
  const text = () => Buffer.from(bytes()).toString("latin1");
  return {
    socket,
    text,
    bytes,
    write(data) {
      const buf = typeof data === "string" ? Buffer.from(data, "latin1") : data;
      const n = socket.write(buf);
      if (n !== buf.byteLength) throw new Error("test write was partial");
    },
    async writeAll(data, ms = 10_000) {
      const fail = failAfter(ms, "raw client write");
      try {
        let off = 0;
        while (off < data.byteLength) {
          if (isClosed) throw new Error(`closed after ${off} of ${data.byteLength} bytes`);
          const wait = new Promise<void>((r) => (drained = r));
          off += Math.max(0, socket.write(data.subarray(off)));
          if (off < data.byteLength) await Promise.race([wait, fail.promise]);
        }
      } finally {
        drained = null;
        fail.cancel();
      }
    },
    ended: (ms = 3000) => settled(endedP.promise, ms, "raw client FIN").then(text),
    async until(pred, ms = 3000) {
      const fail = failAfter(ms, "raw client data");
      try {
        while (!pred(text())) {
          if (isClosed) throw new Error(`connection closed; received: ${JSON.stringify(text().slice(0, 500))}`);
          await Promise.race([new Promise<void>((r) => waiters.push(r)), fail.promise]);
        }
        return text();
      } finally {
        fail.cancel();
      }
    },
    closed: (ms = 3000) => settled(closedP.promise, ms, "raw client close").then(text),
  };
}

/** Split a raw HTTP/1.1 response into status, headers (lower-case names) and the rest. */
export function splitResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) throw new Error(`no response head in ${JSON.stringify(raw.slice(0, 200))}`);
  const lines = raw.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  return { status: Number(lines[0]!.split(" ")[1]), headers, body: raw.slice(end + 4) };
}

/** A self-signed EC certificate for `names` (PEM strings), made with the openssl CLI. */
export function selfSignedCert(names: string[]): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "h5-cert-"));
  const san = names.map((n) => `DNS:${n}`).join(",");
  const r = Bun.spawnSync([
    "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2",
    "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${san}`,
  ]);
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
  return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
}

/** The ClientHello a real TLS client (Bun/BoringSSL) sends for `serverName`. */
export async function captureClientHello(serverName: string): Promise<Uint8Array> {
  const got = Promise.withResolvers<Uint8Array>();
  let buf = new Uint8Array(0);
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, d) {
        const next = new Uint8Array(buf.byteLength + d.byteLength);
        next.set(buf);
        next.set(d, buf.byteLength);
        buf = next;
        const r = parseClientHello(buf);
        if (r.kind !== "incomplete") {
          got.resolve(buf);
          s.end();
        }
      },
    },
  });
  const fail = failAfter(5000, "ClientHello");
  try {
    const client = await Bun.connect({
      hostname: "127.0.0.1",
      port: listener.port,
      tls: { serverName, rejectUnauthorized: false },
      socket: { data() {}, error() {}, close() {} },
    });
    const hello = await Promise.race([got.promise, fail.promise]);
    client.end();
    return hello;
  } finally {
    fail.cancel();
    listener.stop(true);
  }
}
