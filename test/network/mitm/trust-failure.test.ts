/** The MITM trust-failure line (issue 13): host, client, CA path and the trust commands, pinned. */
import { expect, test } from "bun:test";
import { createLogger } from "../../../src/log.ts";
import { logTrustFailure, TRUST_FAILURE_MESSAGE } from "../../../src/network/mitm/trust-failure.ts";

test("json: one info line naming host, client, CA and how each client trusts it", () => {
  const lines: string[] = [];
  const log = createLogger({ format: "json", sink: (l) => lines.push(l), now: null });
  logTrustFailure(log, { host: "api.example.com", port: 443, client: "127.0.0.1:5000", caCertPath: "/ca/ca.pem", detail: "bad\ncert" });
  expect(lines.map((l) => JSON.parse(l))).toEqual([
    {
      level: "info",
      msg: TRUST_FAILURE_MESSAGE,
      "event.name": "codex.network_proxy.mitm_handshake_aborted",
      "server.address": "api.example.com",
      "server.port": 443,
      "client.address": "127.0.0.1:5000",
      "tls.error": "bad?cert",
      "mitm.ca_cert_path": "/ca/ca.pem",
      trust:
        "curl: curl --cacert /ca/ca.pem …  (or export CURL_CA_BUNDLE=/ca/ca.pem); git: export GIT_SSL_CAINFO=/ca/ca.pem; " +
        "pip: pip --cert /ca/ca.pem …  (or export PIP_CERT=/ca/ca.pem); requests: export REQUESTS_CA_BUNDLE=/ca/ca.pem; " +
        "Node.js: export NODE_EXTRA_CA_CERTS=/ca/ca.pem; " +
        "system store: sudo cp /ca/ca.pem /usr/local/share/ca-certificates/codex-network-proxy.crt && sudo update-ca-certificates",
    },
  ]);
});

test("--log-level warn silences it", () => {
  const lines: string[] = [];
  logTrustFailure(createLogger({ level: "warn", sink: (l) => lines.push(l) }), { host: "h", port: 443, client: null, caCertPath: "/c" });
  expect(lines).toEqual([]);
});

import { afterAll, beforeAll, describe } from "bun:test";
import type { Ca } from "../../../src/network/mitm/ca.ts";
import type { MitmEngineHandle } from "../../../src/network/mitm/engine.ts";
import { startHttpProxyListener } from "../../../src/network/http/listener.ts";
import { startSocks5Listener } from "../../../src/network/socks5/listener.ts";
import { curl } from "../../helpers/network.ts";
import { startMitmContext, type MitmSetup } from "../../helpers/mitm.ts";
import { selfSignedCert } from "../../helpers/pki.ts";
import { removeTempDirs } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

/** Resolves with the first line (already captured or future) matching `re`. */
function waitLine(lines: string[], re: RegExp): Promise<string> {
  const hit = lines.find((l) => re.test(l));
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve) => {
    const push = lines.push.bind(lines);
    lines.push = (...items: string[]) => {
      const n = push(...items);
      for (const it of items) if (re.test(it)) resolve(it);
      return n;
    };
  });
}

describe("a client that does not trust the MITM CA", () => {
  let t: MitmSetup["t"];
  let ca: Ca;
  let engine: MitmEngineHandle;
  let origin: ReturnType<typeof Bun.serve>;
  let http: { port: number; stop(): Promise<void> | void };
  let socks: { port: number; stop(): Promise<void> | void };

  beforeAll(async () => {
    const cert = selfSignedCert(["allowed.test"]);
    ({ t, ca, engine } = await startMitmContext(cert.cert));
    origin = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { key: cert.key, cert: cert.cert }, fetch: () => new Response("ok") });
    http = startHttpProxyListener(t.ctx, { host: "127.0.0.1", port: 0 });
    socks = startSocks5Listener(t.ctx, { host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await http.stop();
    await socks.stop();
    engine.stop();
    await origin.stop(true);
  });

  const trustLines = () => t.lines.filter((l) => l.startsWith(TRUST_FAILURE_MESSAGE));

  test.each([
    ["CONNECT (TLS upgrade on the socket)", () => ["-x", `http://127.0.0.1:${http.port}`]],
    ["SOCKS5 (peeked ClientHello, TLS bridge)", () => ["--socks5-hostname", `127.0.0.1:${socks.port}`]],
  ])("%s: one info line naming the host and the trust commands; none for a trusting client", async (_name, via) => {
    const before = trustLines().length;
    const ok = await curl([...via(), "--cacert", ca.certPath, `https://allowed.test:${origin.port}/`]);
    expect({ exit: ok.exitCode, status: ok.status }).toEqual({ exit: 0, status: 200 });
    const bad = await curl([...via(), `https://allowed.test:${origin.port}/`]);
    expect(bad.exitCode).toBe(60); // curl: SSL certificate problem
    const line = await waitLine(t.lines, /^TLS handshake aborted by the client inside the MITM/);
    expect(line).toContain(" server.address=allowed.test ");
    expect(line).toContain(` mitm.ca_cert_path=${ca.certPath} `);
    expect(line).toContain(`curl: curl --cacert ${ca.certPath}`);
    expect(line).toContain(`export NODE_EXTRA_CA_CERTS=${ca.certPath}`);
    expect(trustLines().length).toBe(before + 1);
    t.lines.length = 0;
  });
});
