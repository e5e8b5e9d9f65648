/**
 * The shared HTTP/1.1 loop cases (conformance.case.ts) against both front ends of
 * src/network/http/connection.ts: the plain HTTP proxy listener (absolute-form requests to an
 * HTTP origin) and the MITM's decrypted side (TLS through a CONNECT front into
 * `engine.intercept`, origin-form requests to an HTTPS origin). Both in full mode, so bodies
 * are allowed and the loop itself is what is exercised.
 */
import { afterAll, beforeAll } from "bun:test";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { createHttp1Client } from "../../../src/http1/client.ts";
import { loadOrCreateCa } from "../../../src/network/mitm/ca.ts";
import { createMitmEngine, type MitmEngineHandle } from "../../../src/network/mitm/engine.ts";
import { createTestContext } from "../../helpers/network.ts";
import { originCert, startConnectFront } from "../mitm/helpers.ts";
import { runConformanceCases, startConformanceOrigin, wrapConn, type ConformanceRig } from "./conformance.case.ts";
import { startProxy } from "./helpers.ts";

let plain: ConformanceRig;
let mitm: ConformanceRig;
const cleanups: Array<() => unknown> = [];

beforeAll(async () => {
  // Plain listener → HTTP origin.
  const httpOrigin = startConformanceOrigin();
  cleanups.push(httpOrigin.stop);
  const proxy = startProxy({ policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true } });
  cleanups.push(proxy.stop);
  const authority = `allowed.test:${httpOrigin.port}`;
  plain = {
    async open() {
      const s = netConnect(proxy.port, "127.0.0.1");
      s.setNoDelay(true);
      await new Promise<void>((resolve, reject) => s.once("connect", resolve).once("error", reject));
      return wrapConn(s);
    },
    target: (path) => `http://${authority}${path}`,
    host: authority,
    seen: httpOrigin.seen,
    lastHeaders: httpOrigin.lastHeaders,
  };

  // MITM → HTTPS origin (full mode: the MITM judges each request, bodies are allowed).
  const cert = await originCert(["allowed.test"]);
  const httpsOrigin = startConformanceOrigin({ key: cert.key, cert: cert.cert });
  cleanups.push(httpsOrigin.stop);
  const t = createTestContext({
    mode: "full",
    policy: { allowedDomains: ["allowed.test"], allowLocalBinding: true },
    mitm: { enabled: true },
  });
  const cfg = t.ctx.config();
  const ca = await loadOrCreateCa(cfg.mitm.caCertPath, cfg.mitm.caKeyPath, { create: true });
  const engine: MitmEngineHandle = createMitmEngine(t.ctx, ca, {
    client: createHttp1Client({ extraCa: [cert.cert], proxyEnv: null }),
  });
  await engine.ready;
  t.ctx.setMitm(engine);
  cleanups.push(() => engine.stop());
  const front = startConnectFront(engine);
  cleanups.push(front.stop);
  mitm = {
    async open() {
      const raw = netConnect(front.port, "127.0.0.1");
      await new Promise<void>((resolve, reject) => raw.once("connect", resolve).once("error", reject));
      raw.write(`CONNECT allowed.test:${httpsOrigin.port} HTTP/1.1\r\nHost: allowed.test:${httpsOrigin.port}\r\n\r\n`);
      await new Promise<void>((resolve, reject) => {
        let head = "";
        raw.on("data", function onData(b: Buffer) {
          head += b.toString("latin1");
          if (!head.includes("\r\n\r\n")) return;
          raw.off("data", onData);
          if (head.startsWith("HTTP/1.1 200")) resolve();
          else reject(new Error(head));
        });
      });
      const tls = tlsConnect({ socket: raw, servername: "allowed.test", ca: ca.certPem });
      await new Promise<void>((resolve, reject) => tls.once("secureConnect", resolve).once("error", reject));
      return wrapConn(tls);
    },
    target: (path) => path,
    host: `allowed.test:${httpsOrigin.port}`,
    seen: httpsOrigin.seen,
    lastHeaders: httpsOrigin.lastHeaders,
  };
});

afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

runConformanceCases("plain listener", () => plain);
runConformanceCases("MITM inner loop", () => mitm);
