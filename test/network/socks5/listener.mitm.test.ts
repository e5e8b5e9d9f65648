/**
 * Limited mode over SOCKS5 with the real MITM engine (SPEC-network §5, §6): the peeked
 * ClientHello is handed to `engine.intercept`, curl trusts our CA, GET reaches the https
 * fake origin, POST is blocked inside the tunnel and recorded with protocol `https`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Ca } from "../../../src/network/mitm/ca.ts";
import type { MitmEngineHandle } from "../../../src/network/mitm/engine.ts";
import { startSocks5Listener, type Socks5ListenerHandle } from "../../../src/network/socks5/listener.ts";
import { curl } from "../../helpers/network.ts";
import { startMitmContext, type MitmSetup } from "../../helpers/mitm.ts";
import { selfSignedCert } from "../../helpers/pki.ts";
import { removeTempDirs } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

let t: MitmSetup["t"];
let ca: Ca;
let engine: MitmEngineHandle;
let origin: ReturnType<typeof Bun.serve>;
let proxy: Socks5ListenerHandle;
const seen: string[] = [];

beforeAll(async () => {
  const cert = selfSignedCert(["allowed.test"]);
  ({ t, ca, engine } = await startMitmContext(cert.cert));
  origin = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { key: cert.key, cert: cert.cert },
    fetch(req) {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      return new Response("hello over tls");
    },
  });
  proxy = startSocks5Listener(t.ctx, { host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await proxy.stop();
  engine.stop();
  await origin.stop(true);
});

describe("limited mode + MITM over SOCKS5", () => {
  const args = () => ["--socks5-hostname", `127.0.0.1:${proxy.port}`, "--cacert", ca.certPath];

  test("GET over TLS is intercepted and forwarded", async () => {
    const r = await curl([...args(), `https://allowed.test:${origin.port}/read`]);
    expect({ exit: r.exitCode, status: r.status, body: r.body }).toEqual({ exit: 0, status: 200, body: "hello over tls" });
    expect(seen).toContain("GET /read");
  });

  test("POST over TLS is blocked inside the tunnel and recorded", async () => {
    t.ctx.recorder.drain();
    const r = await curl([...args(), "-d", "x=1", `https://allowed.test:${origin.port}/write`]);
    expect(r.status).toBe(403);
    expect(r.headers["x-proxy-error"]).toBe("blocked-by-method-policy");
    expect(seen).not.toContain("POST /write");
    expect(t.ctx.recorder.drain().map((e) => [e.host, e.reason, e.method, e.protocol])).toEqual([
      ["allowed.test", "method_not_allowed", "POST", "https"],
    ]);
  });
});
