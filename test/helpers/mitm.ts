/**
 * Test helpers for the MITM: an https fake origin with its own CA (made by openssl, so the
 * upstream side never depends on our X.509 code), a minimal CONNECT front end that hands
 * sockets to `engine.intercept` (so engine tests do not depend on the HTTP listener), and
 * a temporary folder maker (child processes: child.ts).
 */
import type { Socket, TCPSocketListener } from "bun";
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import type { ConnState, MitmEngine } from "../../src/network/types.ts";
import { createHttp1Client } from "../../src/http1/client.ts";
import { loadOrCreateCa, type Ca } from "../../src/network/mitm/ca.ts";
import { createMitmEngine, type MitmEngineHandle, type MitmEngineOptions } from "../../src/network/mitm/engine.ts";
import { createTestContext } from "./network.ts";
import { tempDir as makeTempDir } from "./temp.ts";

/** A fresh temporary folder, removed by `removeTempDirs` (test/helpers/temp.ts). */
export const tempDir = (prefix = "cnp-mitm-"): string => makeTempDir(prefix);

/**
 * A minimal HTTP CONNECT front end: reads one `CONNECT host:port` head, answers
 * `200 Connection established`, and hands the socket to `engine.intercept` with
 * `addresses: ["127.0.0.1"]`. `holdFirst` keeps the client's first post-200 bytes and passes
 * them as `initial` (the SOCKS5 path, where the ClientHello was already read). `onClose` runs
 * after each accepted socket's close was delegated.
 */
export function startConnectFront(engine: MitmEngine, opts: { holdFirst?: boolean; onClose?: () => void } = {}): {
  port: number;
  stop(): void;
} {
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        let head = "";
        s.data = {
          client: `${s.remoteAddress}:${s.remotePort}`,
          handler: {
            data(sock, chunk) {
              head += new TextDecoder().decode(chunk);
              const end = head.indexOf("\r\n\r\n");
              if (end < 0) return;
              const m = /^CONNECT ([^\s:]+):(\d+) HTTP\/1\.[01]\r\n/.exec(head);
              if (!m) {
                sock.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
                return;
              }
              const target = { host: m[1]!, port: Number(m[2]), addresses: ["127.0.0.1"] };
              sock.write("HTTP/1.1 200 Connection established\r\n\r\n");
              if (!opts.holdFirst) {
                engine.intercept(sock, target, sock.data.client, undefined);
                return;
              }
              sock.data.handler = {
                data(s2, first) {
                  engine.intercept(s2, target, s2.data.client, new Uint8Array(first));
                },
                drain() {},
                close() {},
              };
            },
            drain() {},
            close() {},
          },
        };
      },
      data: (s: Socket<ConnState>, c) => s.data.handler?.data(s, c),
      drain: (s: Socket<ConnState>) => s.data.handler?.drain(s),
      close: (s: Socket<ConnState>) => {
        s.data.handler?.close(s);
        opts.onClose?.();
      },
    },
  });
  return { port: listener.port, stop: () => listener.stop(true) };
}

/** What {@link startMitmContext} returns. */
export interface MitmSetup {
  t: ReturnType<typeof createTestContext>;
  ca: Ca;
  engine: MitmEngineHandle;
}

/**
 * A limited-mode test context (`allowed.test` allowed, local binding on) with MITM enabled
 * (`mitm` merged, e.g. `{inspect: true}`): its CA created, and an engine installed whose
 * upstream client trusts `originCertPem` (the fake origin's self-signed certificate).
 * Call `engine.stop()` in afterAll.
 */
export async function startMitmContext(
  originCertPem: string,
  mitm: { inspect?: boolean } = {},
  engineOpts: Omit<MitmEngineOptions, "client"> = {},
): Promise<MitmSetup> {
  const t = createTestContext({
    mode: "limited",
    policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true },
    mitm: { enabled: true, ...mitm },
  });
  const cfg = t.ctx.config();
  const ca = await loadOrCreateCa(cfg.mitm.caCertPath, cfg.mitm.caKeyPath, { create: true });
  const engine = createMitmEngine(t.ctx, ca, { client: createHttp1Client({ extraCa: [originCertPem], proxyEnv: null }), ...engineOpts });
  await engine.ready;
  t.ctx.setMitm(engine);
  return { t, ca, engine };
}

/**
 * A raw TCP connection through the HTTP proxy at 127.0.0.1:`proxyPort`, tunnelled by
 * `CONNECT host:port`; resolves once the proxy answered 200 (rejects with its answer otherwise).
 */
export async function connectThrough(proxyPort: number, host: string, port: number): Promise<NetSocket> {
  const sock = netConnect(proxyPort, "127.0.0.1");
  const established = Promise.withResolvers<void>();
  let head = "";
  sock.on("data", function onData(b: Buffer) {
    head += b.toString("latin1");
    if (!head.includes("\r\n\r\n")) return;
    sock.off("data", onData);
    if (head.startsWith("HTTP/1.1 200")) established.resolve();
    else established.reject(new Error(`CONNECT refused: ${head}`));
  });
  sock.on("error", (e) => established.reject(e));
  sock.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  await established.promise;
  return sock;
}

/**
 * One TLS connection through an HTTP proxy's CONNECT to `host:port`, trusting `caPem`.
 * `exchange` writes a request and resolves with the next whole response (Content-Length
 * framed); `closed` resolves when the connection closes.
 */
export async function tlsThroughProxy(proxyPort: number, host: string, port: number, caPem: string) {
  const sock = await connectThrough(proxyPort, host, port);
  const tls = tlsConnect({ socket: sock, servername: host, ca: caPem });
  const closed = Promise.withResolvers<void>();
  let buf = "";
  let waiter: PromiseWithResolvers<string> | null = null;
  const check = () => {
    const end = buf.indexOf("\r\n\r\n");
    if (!waiter || end < 0) return;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
    if (buf.length < end + 4 + len) return;
    const msg = buf.slice(0, end + 4 + len);
    buf = buf.slice(end + 4 + len);
    const w = waiter;
    waiter = null;
    w.resolve(msg);
  };
  tls.on("data", (b: Buffer) => {
    buf += b.toString("latin1");
    check();
  });
  tls.on("close", () => {
    waiter?.reject(new Error(`closed; unparsed: ${buf}`));
    closed.resolve();
  });
  tls.on("error", (e) => waiter?.reject(e));
  await new Promise<void>((resolve, reject) => {
    tls.once("secureConnect", () => resolve());
    tls.once("error", reject);
  });
  return {
    exchange(req: string): Promise<string> {
      waiter = Promise.withResolvers<string>();
      tls.write(req);
      check();
      return waiter.promise;
    },
    closed: closed.promise,
    close: () => tls.destroy(),
  };
}
