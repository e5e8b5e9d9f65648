/**
 * Real clients pointed at a running proxy by nothing but
 * `eval "$(codex-network-proxy env --config C --server-info F)"` (SPEC-network §11): curl
 * (http, https through the MITM, socks5h), git clone, pip download, npm view/install, Python
 * urllib and requests, Node with undici's EnvHttpProxyAgent. All origins are local with a
 * test CA that only the proxy trusts (NODE_EXTRA_CA_CERTS of the proxy), so an https client
 * that bypassed the proxy would fail verification: the trust bundle holds the system roots and
 * this run's ephemeral MITM CA, not the origins' CA.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync, watch, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startGitHttpsServer, type GitHttpsServer } from "../../helpers/git-https-server.ts";
import { baseEnv, installCliWrapper, run, tempDir, type RunResult } from "./helpers.ts";
import { startOrigins, type Origins } from "./origins.ts";

// Real processes on a shared 2-core machine: bounded, but not by bun's 5 s default.
setDefaultTimeout(60_000);

const REPO = resolve(import.meta.dir, "../../..");
const dir = tempDir();
const bin = installCliWrapper(dir.path);
const configFile = join(dir.path, "config.toml");
const infoFile = join(dir.path, "run", "server-info.json");
let origins: Origins;
let git: GitHttpsServer;
let proxy: ReturnType<typeof Bun.spawn>;
let proxyErr = "";

/** Resolve once `file` exists (fs.watch on its folder); reject after `ms` as a failsafe. */
async function waitForFile(file: string, ms: number): Promise<void> {
  const folder = resolve(file, "..");
  Bun.spawnSync(["mkdir", "-p", folder]);
  const done = Promise.withResolvers<void>();
  const w = watch(folder, () => existsSync(file) && done.resolve());
  const t = setTimeout(() => done.reject(new Error(`${file} never appeared; proxy stderr: ${proxyErr}`)), ms);
  if (existsSync(file)) done.resolve();
  try {
    await done.promise;
  } finally {
    clearTimeout(t);
    w.close();
  }
}

beforeAll(async () => {
  origins = startOrigins(dir.path);
  git = await startGitHttpsServer();
  writeFileSync(join(dir.path, "origin-roots.pem"), origins.caPem + git.caPem);
  writeFileSync(
    configFile,
    [
      "[network_proxy]",
      'mode = "limited"',
      'proxy_url = "127.0.0.1:0"',
      'socks_url = "127.0.0.1:0"',
      'admin_url = "127.0.0.1:0"',
      "[network_proxy.policy]",
      'allowed_domains = ["127.0.0.1", "localhost"]',
      "[network_proxy.mitm]",
      "enabled = true",
      'ca_mode = "ephemeral"',
      "",
    ].join("\n"),
  );
  proxy = Bun.spawn(["codex-network-proxy", "run", "--config", configFile, "--server-info", infoFile], {
    env: baseEnv(bin, dir.path, { NODE_EXTRA_CA_CERTS: join(dir.path, "origin-roots.pem") }),
    stdout: "ignore",
    stderr: "pipe",
  });
  void (async () => {
    for await (const c of proxy.stderr as ReadableStream<Uint8Array>) proxyErr += new TextDecoder().decode(c);
  })();
  await waitForFile(infoFile, 15_000);
}, 30_000);

afterAll(async () => {
  if (process.env.TEST_LOG) console.error(proxyErr);
  proxy?.kill("SIGTERM");
  await proxy?.exited;
  await Promise.all([origins?.stop(), git?.stop()]);
  dir[Symbol.dispose]();
});

/** `sh -c` with the env line first; the client command after it. */
function client(script: string, extra: Record<string, string> = {}, cwd = dir.path): Promise<RunResult> {
  const line = `eval "$(codex-network-proxy env --config '${configFile}' --server-info '${infoFile}')" && ${script}`;
  return run(["sh", "-c", line], baseEnv(bin, dir.path, extra), { cwd, timeoutMs: 60_000 });
}

/** Proxy decision lines that name `port` (text log format). */
const decisions = (port: number) => proxyErr.split("\n").filter((l) => l.includes("policy decision") && l.includes(`server.port=${port}`));

describe("curl", () => {
  test("http:// through http_proxy", async () => {
    const r = await client(`curl -sS --fail http://127.0.0.1:${origins.httpPort}/hello`);
    expect(r).toEqual({ code: 0, out: "hello over http\n", err: "" });
    expect(decisions(origins.httpPort).length).toBeGreaterThan(0);
  });

  test("https:// through the MITM, trusting the bundle (CURL_CA_BUNDLE/SSL_CERT_FILE)", async () => {
    const r = await client(`curl -sS --fail https://127.0.0.1:${origins.httpsPort}/hello`);
    expect(r).toEqual({ code: 0, out: "hello over https\n", err: "" });
  });

  test("limited mode still refuses a POST (403 blocked-by-method-policy)", async () => {
    const r = await client(`curl -sS -o /dev/null -w '%{http_code} %header{x-proxy-error}' -d x https://127.0.0.1:${origins.httpsPort}/hello`);
    expect(r).toEqual({ code: 0, out: "403 blocked-by-method-policy", err: "" });
  });

  test("socks5h:// from ALL_PROXY, http and https", async () => {
    const a = await client(`curl -sS --fail --proxy "$ALL_PROXY" http://127.0.0.1:${origins.httpPort}/hello`);
    expect(a).toEqual({ code: 0, out: "hello over http\n", err: "" });
    const b = await client(`curl -sS --fail --proxy "$ALL_PROXY" https://127.0.0.1:${origins.httpsPort}/hello`);
    expect(b).toEqual({ code: 0, out: "hello over https\n", err: "" });
    expect(proxyErr).toContain("network.transport.protocol=socks5");
  });
});

test("git clone over https through the MITM (GIT_SSL_CAINFO)", async () => {
  const r = await client(`git clone -q ${git.url()} cloned && cat cloned/README.md`, { GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" });
  expect(r).toEqual({ code: 0, out: "hello from repo\n", err: "" });
});

test("pip download from a local HTTPS simple index (PIP_PROXY, PIP_CERT)", async () => {
  const r = await client(
    `python3 -m pip download -q --no-deps --no-cache-dir --disable-pip-version-check -d pipdl --index-url https://127.0.0.1:${origins.httpsPort}/simple/ demo-pkg==1.0`,
    { PIP_NO_INPUT: "1" },
  );
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  expect(existsSync(join(dir.path, "pipdl/demo_pkg-1.0-py3-none-any.whl"))).toBe(true);
  expect(origins.seen).toContain("GET /files/demo_pkg-1.0-py3-none-any.whl");
}, 60_000);

// The registry is named `localhost`: npm's proxy agent checks an https origin reached through
// any proxy against the name "localhost" when the URL holds an IP literal (its TLS socket is
// opened without a host), so an IP registry fails with ERR_TLS_CERT_ALTNAME_INVALID behind
// every proxy, ours included.
describe("npm against a local https registry (npm_config_https_proxy, npm_config_cafile)", () => {
  const npmEnv = () => ({
    npm_config_cache: join(dir.path, "npm-cache"),
    npm_config_update_notifier: "false",
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_fetch_retries: "0",
  });
  test("npm view", async () => {
    const r = await client(`npm view demo-pkg version --registry https://localhost:${origins.httpsPort}/`, npmEnv());
    expect(r).toMatchObject({ code: 0, out: "1.0.0\n" });
  }, 60_000);
  test("npm install", async () => {
    using project = tempDir("cnp-npm-");
    writeFileSync(join(project.path, "package.json"), JSON.stringify({ name: "p", version: "1.0.0", private: true }));
    const r = await client(`npm install -s --no-package-lock demo-pkg --registry https://localhost:${origins.httpsPort}/`, npmEnv(), project.path);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(project.path, "node_modules/demo-pkg/package.json"), "utf8")).version).toBe("1.0.0");
  }, 60_000);
});

describe("Python", () => {
  test("urllib (https_proxy, SSL_CERT_FILE)", async () => {
    const r = await client(`python3 -c "import urllib.request; print(urllib.request.urlopen('https://127.0.0.1:${origins.httpsPort}/hello').read().decode(), end='')"`);
    expect(r).toEqual({ code: 0, out: "hello over https\n", err: "" });
  });

  // Debian's python3-requests (.ci/run installs it) belongs to /usr/bin/python3.
  const withRequests = ["python3", "/usr/bin/python3"].find((py) => Bun.spawnSync([py, "-c", "import requests"]).exitCode === 0);
  test.skipIf(!withRequests)(`requests (REQUESTS_CA_BUNDLE)${withRequests ? "" : " — requests not installed: skipped"}`, async () => {
    const r = await client(`${withRequests} -c "import requests; print(requests.get('https://127.0.0.1:${origins.httpsPort}/hello').text, end='')"`);
    expect(r).toEqual({ code: 0, out: "hello over https\n", err: "" });
  });
});

describe("Node", () => {
  test("undici EnvHttpProxyAgent (Node 20: NODE_USE_ENV_PROXY is not read; NODE_EXTRA_CA_CERTS is)", async () => {
    const js = `const { EnvHttpProxyAgent, fetch } = require(${JSON.stringify(join(REPO, "node_modules/undici"))});
fetch("https://127.0.0.1:${origins.httpsPort}/hello", { dispatcher: new EnvHttpProxyAgent() }).then((r) => r.text()).then((t) => process.stdout.write(t));`;
    const r = await client(`node -e '${js}'`);
    expect(r).toEqual({ code: 0, out: "hello over https\n", err: "" });
  });

  const nodeMajor = Number(Bun.spawnSync(["node", "-p", "process.versions.node.split('.')[0]"]).stdout.toString().trim());
  test.skipIf(!(nodeMajor >= 24))(`built-in fetch with NODE_USE_ENV_PROXY=1${nodeMajor >= 24 ? "" : ` — Node ${nodeMajor} here, needs ≥ 24: skipped`}`, async () => {
    const r = await client(`node -e 'fetch("https://127.0.0.1:${origins.httpsPort}/hello").then((r) => r.text()).then((t) => process.stdout.write(t))'`);
    expect(r).toEqual({ code: 0, out: "hello over https\n", err: "" });
  });
});
