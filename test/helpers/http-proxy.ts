/**
 * Helpers for the HTTP proxy listener tests: a listener on a test context, a raw response
 * splitter and real ClientHello bytes (the raw client is in raw-client.ts).
 * Everything is on 127.0.0.1 with port 0; every wait is bounded and event-driven.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHttpProxyListener, type HttpListenerOptions } from "../../src/network/http/listener.ts";
import { createHttpConnectionHandler } from "../../src/network/http/connection.ts";
import { socksFrontEnd } from "../../src/network/http/conn-io.ts";
import { listenDelegating, type DelegatingListener } from "../../src/network/listen-delegate.ts";
import { parseClientHello } from "../../src/network/tls-sni.ts";
import type { CheckedTarget, Dialer, NetworkContext, RuntimeConfig } from "../../src/network/types.ts";
import { createNetworkContext } from "../../src/network/context.ts";
import { captureLogger, createTestContext, mapResolver, testConfig, type DeepPartial } from "./network.ts";
import { within } from "./within.ts";

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
  try {
    const client = await Bun.connect({
      hostname: "127.0.0.1",
      port: listener.port,
      tls: { serverName, rejectUnauthorized: false },
      socket: { data() {}, error() {}, close() {} },
    });
    const hello = await within(got.promise, 5000, "the ClientHello");
    client.end();
    return hello;
  } finally {
    listener.stop(true);
  }
}
