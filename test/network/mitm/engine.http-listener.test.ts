/**
 * MITM behind the real HTTP proxy listener (SPEC-network §4 CONNECT in limited mode → §6):
 * curl `-x http://127.0.0.1:<port>` with our CA, through `startHttpProxyListener`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startHttpProxyListener } from "../../../src/network/http/listener.ts";
import type { Ca } from "../../../src/network/mitm/ca.ts";
import type { MitmEngineHandle } from "../../../src/network/mitm/engine.ts";
import { curl } from "../../helpers/network.ts";
import { startMitmContext, tlsThroughProxy, type MitmSetup } from "../../helpers/mitm.ts";
import { runChild } from "../../helpers/child.ts";
import { selfSignedCert } from "../../helpers/pki.ts";
import { removeTempDirs } from "../../helpers/temp.ts";
import { within } from "../../helpers/within.ts";
import { createConnectionCap, type ConnectionCap } from "../../../src/net/connection-cap.ts";

afterAll(removeTempDirs);

let t: MitmSetup["t"];
let ca: Ca;
let engine: MitmEngineHandle;
let origin: ReturnType<typeof Bun.serve>;
let listener: Awaited<ReturnType<typeof startHttpProxyListener>>;
let up: number;

beforeAll(async () => {
  const cert = selfSignedCert(["allowed.test"]);
  ({ t, ca, engine } = await startMitmContext(cert.cert, { inspect: true }));
  origin = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { key: cert.key, cert: cert.cert },
    fetch: (req) => new Response(`origin saw ${req.method} ${new URL(req.url).pathname}`),
  });
  up = origin.port!;
  listener = startHttpProxyListener(t.ctx, { host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await listener?.stop();
  engine?.stop();
  origin?.stop(true);
});

test("every MITM connection gives its max_connections slot back when it closes (upgradeTLS)", async () => {
  const inner = createConnectionCap({ max: 100, warn: () => {} });
  const allBack = Promise.withResolvers<void>();
  let released = 0;
  const cap: ConnectionCap = {
    max: inner.max,
    get open() {
      return inner.open;
    },
    get refused() {
      return inner.refused;
    },
    admit: () => inner.admit(),
    release() {
      inner.release();
      if (++released === 3) allBack.resolve();
    },
  };
  const l = startHttpProxyListener(t.ctx, { host: "127.0.0.1", port: 0 }, { cap });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await curl(["--cacert", ca.certPath, "-x", `http://127.0.0.1:${l.port}`, `https://allowed.test:${up}/read`]);
      expect(r.status).toBe(200);
    }
    await within(allBack.promise, 5000, "the three MITM connections to release their slots");
    expect({ open: cap.open, released }).toEqual({ open: 0, released: 3 });
  } finally {
    await l.stop();
  }
});

describe("MITM through the HTTP proxy listener (limited mode)", () => {
  const via = () => ["--cacert", ca.certPath, "-x", `http://127.0.0.1:${listener.port}`];

  test("GET https is intercepted with our CA and forwarded", async () => {
    const r = await curl([...via(), `https://allowed.test:${up}/read`]);
    expect({ status: r.status, body: r.body }).toEqual({ status: 200, body: "origin saw GET /read" });
  });

  test("PUT inside the tunnel is 403 blocked-by-method-policy", async () => {
    const r = await curl([...via(), "-X", "PUT", "-d", "x", `https://allowed.test:${up}/w`]);
    expect({ status: r.status, err: r.headers["x-proxy-error"] }).toEqual({ status: 403, err: "blocked-by-method-policy" });
  });

  test("the mode is read per request: /mode full mid-connection lets the next POST through", async () => {
    const conn = await tlsThroughProxy(listener.port, "allowed.test", up, ca.certPem);
    try {
      const first = await conn.exchange(`POST /a HTTP/1.1\r\nHost: allowed.test:${up}\r\ncontent-length: 0\r\n\r\n`);
      expect(first).toStartWith("HTTP/1.1 403 ");
      t.ctx.setMode("full");
      const second = await conn.exchange(`POST /b HTTP/1.1\r\nHost: allowed.test:${up}\r\ncontent-length: 4\r\n\r\nbody`);
      expect(second).toStartWith("HTTP/1.1 200 ");
      expect(second).toEndWith("\r\n\r\norigin saw POST /b");
    } finally {
      t.ctx.setMode("limited");
      conn.close();
    }
  });

  test("the leaf served is for the CONNECT host and chains to the CA (openssl s_client)", async () => {
    const r = await runChild(
      [
        "openssl", "s_client", "-proxy", `127.0.0.1:${listener.port}`, "-connect", `allowed.test:${up}`,
        "-servername", "allowed.test", "-CAfile", ca.certPath, "-verify_hostname", "allowed.test", "-verify_return_error",
      ],
      { stdin: "" },
    );
    expect(r.stdout).toContain("Verify return code: 0 (ok)");
    expect(r.stdout).toContain("subject=CN = allowed.test\nissuer=CN = codex-network-proxy MITM CA\n");
  });
});

