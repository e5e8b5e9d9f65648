/**
 * How a client trusts the MITM CA (issue 13), in one place: `init` prints these lines, and the
 * line logged when a client aborts the TLS handshake inside the MITM (it probably does not
 * trust the CA) carries them too. Each client reads its own setting: curl and git their
 * own flags/variables, pip and Python's requests theirs, Node.js `NODE_EXTRA_CA_CERTS`.
 */

/** One client and the command or setting that makes it trust `certPath`. */
export interface TrustHint {
  client: string;
  how: string;
}

/** The trust settings for `certPath`, most common clients first. */
export function trustHints(certPath: string): TrustHint[] {
  return [
    { client: "curl", how: `curl --cacert ${certPath} …  (or export CURL_CA_BUNDLE=${certPath})` },
    { client: "git", how: `export GIT_SSL_CAINFO=${certPath}` },
    { client: "pip", how: `pip --cert ${certPath} …  (or export PIP_CERT=${certPath})` },
    { client: "requests", how: `export REQUESTS_CA_BUNDLE=${certPath}` },
    { client: "Node.js", how: `export NODE_EXTRA_CA_CERTS=${certPath}` },
    {
      client: "system store",
      how: `sudo cp ${certPath} /usr/local/share/ca-certificates/codex-network-proxy.crt && sudo update-ca-certificates`,
    },
  ];
}

/** The hints as aligned lines (`  curl:         curl --cacert …`), for `init`. */
export function trustHintLines(certPath: string): string[] {
  return trustHints(certPath).map((h) => `  ${(h.client + ":").padEnd(14)}${h.how}`);
}
