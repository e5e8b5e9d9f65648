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
