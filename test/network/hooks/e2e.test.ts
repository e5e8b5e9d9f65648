/**
 * MITM hooks end to end (SPEC-network §10) with real clients: the proxy executable entry as a
 * child process (its upstream side trusts the test origins' CAs through NODE_EXTRA_CA_CERTS),
 * `git` and `curl` through it (trusting the proxy's MITM CA), a local TLS git smart-HTTP
 * server and a TLS origin that echoes the request fields it received.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startGitHttpsServer, type GitHttpsServer } from "../../helpers/git-https-server.ts";
import { curl, spawnNetworkProxy, type ProxyChild } from "../../helpers/network.ts";
import { selfSignedCert } from "../../helpers/pki.ts";

const TOKEN = "ghp-e2e-token-7f3a9c";
const ROTATED = "ghp-rotated-token-4b2e";
const hasGit = Bun.spawnSync(["git", "--version"]).exitCode === 0;

const dir = mkdtempSync(join(tmpdir(), "hooks-e2e-"));
const secretFile = join(dir, "token");
const configFile = join(dir, "config.toml");
let git: GitHttpsServer;
let echo: ReturnType<typeof Bun.serve>;
let other: ReturnType<typeof Bun.serve>;
let proxy: ProxyChild;
let ports: { http: number; socks: number; admin: number };
const mitmCa = join(dir, "mitm", "ca.pem");
// Self-signed (its own CA), with a subject other than the git server's test CA: two test CAs
// with one subject name make certificate path building pick the wrong one.
let echoPki: { key: string; cert: string; certPath: string };

function config(): string {
  return `
[network_proxy]
mode = "full"
[network_proxy.policy]
allowed_domains = ["127.0.0.1:${git.port}", "127.0.0.1:${echo.port}", "127.0.0.1:${other.port}"]
[network_proxy.mitm]
enabled = true
ca_cert_path = "${join(dir, "mitm", "ca.pem")}"
ca_key_path = "${join(dir, "mitm", "ca.key")}"

[[network_proxy.mitm.hooks]]
name = "git-refs"
host = "127.0.0.1:${git.port}"
match = { methods = ["GET"], path_prefixes = ["/repo.git/info/refs"], query = { service = ["git-upload-pack"] } }
actions = { inject_request_headers = [{ name = "authorization", prefix = "Bearer ", secret_file = "${secretFile}" }] }

[[network_proxy.mitm.hooks]]
name = "git-upload"
host = "127.0.0.1:${git.port}"
match = { methods = ["POST"], path_prefixes = ["/repo.git/git-upload-pack"] }
actions = { inject_request_headers = [{ name = "authorization", prefix = "Bearer ", secret_file = "${secretFile}" }] }

[[network_proxy.mitm.hooks]]
name = "api"
host = "127.0.0.1:${echo.port}"
[network_proxy.mitm.hooks.match]
methods = ["GET"]
path_prefixes = ["/repos/acme/"]
[network_proxy.mitm.hooks.actions]
strip_request_headers = ["cookie"]
inject_request_headers = [{ name = "authorization", prefix = "Bearer ", secret_file = "${secretFile}" }]
`;
}

beforeAll(async () => {
  git = await startGitHttpsServer({ allowPush: true });
  const echoDir = mkdtempSync(join(tmpdir(), "cnp-origin-"));
  echoPki = { ...selfSignedCert(["127.0.0.1"]), certPath: join(echoDir, "origin.pem") };
  writeFileSync(echoPki.certPath, echoPki.cert);
  const tls = { cert: echoPki.cert, key: echoPki.key };
  const echoFetch = (req: Request) => {
    const headers: Array<[string, string]> = [];
    req.headers.forEach((v, k) => headers.push([k, v]));
    return Response.json({ path: new URL(req.url).pathname, headers });
  };
  echo = Bun.serve({ hostname: "127.0.0.1", port: 0, tls, fetch: echoFetch });
  other = Bun.serve({ hostname: "127.0.0.1", port: 0, tls, fetch: echoFetch });
  writeFileSync(secretFile, TOKEN + "\n");
  writeFileSync(configFile, config());
  const bundle = join(dir, "origins.pem");
  writeFileSync(bundle, git.caPem + echoPki.cert);
  proxy = spawnNetworkProxy(
    ["--config", configFile, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    dir,
    "ignore",
    { NODE_EXTRA_CA_CERTS: bundle },
  );
  await proxy.waitFor("admin API listening on", 20_000);
  const port = (what: string) => Number(new RegExp(`${what} listening on 127\\.0\\.0\\.1:(\\d+)`).exec(proxy.stderr())![1]);
  ports = { http: port("HTTP proxy"), socks: port("SOCKS5 proxy"), admin: port("admin API") };
}, 30_000);

afterAll(async () => {
  if (process.env.TEST_LOG) process.stderr.write(proxy.stderr());
  proxy?.proc.kill("SIGTERM");
  await proxy?.proc.exited;
  await git?.stop();
  echo?.stop(true);
  other?.stop(true);
  rmSync(dir, { recursive: true, force: true });
  if (echoPki) rmSync(dirname(echoPki.certPath), { recursive: true, force: true });
});

const admin = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${ports.admin}${path}`, { ...init, proxy: false });
const viaProxy = (args: string[]) => curl(["-x", `http://127.0.0.1:${ports.http}`, "--cacert", mitmCa, ...args]);
const echoUrl = (path: string) => `https://127.0.0.1:${echo.port}${path}`;

/** Run git with only what it needs: the proxy, the MITM CA, no credentials of its own. */
async function runGit(args: string[], cwd: string) {
  const p = Bun.spawn(["git", ...args], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_TERMINAL_PROMPT: "0",
      GIT_SSL_CAINFO: mitmCa,
      https_proxy: `http://127.0.0.1:${ports.http}`,
      GIT_AUTHOR_NAME: "a",
      GIT_AUTHOR_EMAIL: "a@example.invalid",
      GIT_COMMITTER_NAME: "a",
      GIT_COMMITTER_EMAIL: "a@example.invalid",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

async function blocked(): Promise<Array<Record<string, unknown>>> {
  return ((await (await admin("/blocked")).json()) as { blocked: Array<Record<string, unknown>> }).blocked;
}

describe("MITM hooks with real clients", () => {
  test.skipIf(!hasGit)("git clone succeeds with the token injected by the proxy; git push is refused with blocked-by-mitm-hook", async () => {
    await blocked(); // drain
    const work = join(dir, "work");
    const clone = await runGit(["clone", git.url("repo"), work], dir);
    expect({ code: clone.code, err: clone.code === 0 ? "" : clone.err }).toEqual({ code: 0, err: "" });
    expect(readFileSync(join(work, "README.md"), "utf8")).toBe("hello from repo\n");
    // Every request the origin saw carried exactly the proxy's credential.
    expect(git.requests.length).toBeGreaterThanOrEqual(2);
    expect(git.requests.map((r) => [r.method, r.path, r.headers.authorization])).toEqual(
      git.requests.map((r) => [r.method, r.path, `Bearer ${TOKEN}`]),
    );

    writeFileSync(join(work, "new.txt"), "x\n");
    expect((await runGit(["add", "new.txt"], work)).code).toBe(0);
    expect((await runGit(["commit", "-q", "-m", "x"], work)).code).toBe(0);
    const seen = git.requests.length;
    const push = await runGit(["push", "origin", "main"], work);
    expect(push.code).not.toBe(0);
    expect(push.err).toContain("403");
    // The push never reached the origin (which would have accepted it).
    expect(git.requests.length).toBe(seen);
    const b = await blocked();
    expect(b.map((e) => [e.host, e.port, e.reason, e.source, e.protocol, e.method])).toEqual([
      ["127.0.0.1", git.port, "mitm_hook_denied", "mitm_hook", "https", "GET"],
    ]);
    const answer = await viaProxy([`https://127.0.0.1:${git.port}/repo.git/info/refs?service=git-receive-pack`]);
    expect([answer.status, answer.headers["x-proxy-error"], answer.body]).toEqual([
      403,
      "blocked-by-mitm-hook",
      "Codex blocked this request: no MITM hook matched this request.",
    ]);
  }, 30_000);

  test("the client's own Authorization is replaced, never duplicated; stripped fields are gone", async () => {
    const r = await viaProxy(["-H", "Authorization: Bearer from-the-agent", "-H", "Cookie: session=1", "-H", "X-Keep: yes", echoUrl("/repos/acme/x")]);
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as { headers: Array<[string, string]> };
    expect(seen.headers.filter(([k]) => k === "authorization" || k === "cookie" || k === "x-keep")).toEqual([
      ["authorization", `Bearer ${TOKEN}`],
      ["x-keep", "yes"],
    ]);
  });

  test.each([
    "/repos/acme/../other/x",
    "/repos/acme/%2e%2e/other",
    "/repos/acme%2fx",
    "/repos/acme/x%5cy",
    "/repos/acme\\x",
    "/repos/other/x",
  ])("%p is refused with blocked-by-mitm-hook", async (path) => {
    const r = await viaProxy(["--path-as-is", echoUrl(path)]);
    expect([r.status, r.headers["x-proxy-error"]]).toEqual([403, "blocked-by-mitm-hook"]);
  });

  test("a hooked host over plain HTTP and over SOCKS5 without TLS is refused (mitm_required, source mitm_hook)", async () => {
    await blocked();
    const plain = await curl(["-x", `http://127.0.0.1:${ports.http}`, `http://127.0.0.1:${echo.port}/repos/acme/x`]);
    expect([plain.status, plain.headers["x-proxy-error"]]).toEqual([403, "blocked-by-mitm-required"]);
    expect(JSON.parse(plain.body)).toMatchObject({ reason: "mitm_required", source: "mitm_hook" });
    expect(JSON.parse(plain.body).hint).toContain(`"127.0.0.1" has MITM hooks`);
    const socks = await curl(["--socks5", `127.0.0.1:${ports.socks}`, `http://127.0.0.1:${echo.port}/repos/acme/x`]);
    expect([socks.status, socks.headers["x-proxy-error"]]).toEqual([403, "blocked-by-mitm-required"]);
    expect((await blocked()).map((e) => [e.reason, e.source, e.protocol])).toEqual([
      ["mitm_required", "mitm_hook", "http"],
      ["mitm_required", "mitm_hook", "socks5"],
    ]);
  });

  test("full mode: CONNECT and SOCKS5 TLS to a hooked host are intercepted; an unhooked port is spliced raw", async () => {
    const viaSocks = await curl(["--socks5", `127.0.0.1:${ports.socks}`, "--cacert", mitmCa, echoUrl("/repos/acme/s")]);
    expect(viaSocks.status).toBe(200);
    expect((JSON.parse(viaSocks.body) as { headers: Array<[string, string]> }).headers).toContainEqual(["authorization", `Bearer ${TOKEN}`]);
    // The other origin is not hooked: the client sees the origin's own certificate.
    const raw = await curl(["-x", `http://127.0.0.1:${ports.http}`, "--cacert", echoPki.certPath, `https://127.0.0.1:${other.port}/any`]);
    expect([raw.exitCode, raw.status]).toEqual([0, 200]);
    expect((JSON.parse(raw.body) as { headers: Array<[string, string]> }).headers.some(([k]) => k === "authorization")).toBe(false);
  });

  test("port-scoped allow entries: the named ports pass, another port of the same host is refused", async () => {
    const r = await curl(["-x", `http://127.0.0.1:${ports.http}`, `http://127.0.0.1:${ports.admin}/health`]);
    expect([r.status, JSON.parse(r.body).reason]).toEqual([403, "not_allowed_local"]);
  });

  test("a rotated secret takes effect after a reload; a failed read keeps the last good one and /health says so", async () => {
    writeFileSync(secretFile, ROTATED + "\n");
    expect((await admin("/reload", { method: "POST" })).status).toBe(200);
    const after = await viaProxy([echoUrl("/repos/acme/r")]);
    expect((JSON.parse(after.body) as { headers: Array<[string, string]> }).headers).toContainEqual(["authorization", `Bearer ${ROTATED}`]);

    writeFileSync(secretFile, "");
    expect([(await admin("/reload", { method: "POST" })).status]).toEqual([500]);
    expect(await (await admin("/health")).text()).toBe(
      `ok\nlast reload failed: network_proxy.mitm.hooks[0].actions.inject_request_headers[0]: secret_file ${secretFile}: secret is empty`,
    );
    const still = await viaProxy([echoUrl("/repos/acme/r")]);
    expect((JSON.parse(still.body) as { headers: Array<[string, string]> }).headers).toContainEqual(["authorization", `Bearer ${ROTATED}`]);
    writeFileSync(secretFile, TOKEN + "\n");
    expect((await admin("/reload", { method: "POST" })).status).toBe(200);
  });

  test("metrics count requests and injections per hook; decision lines name the hook; secrets appear nowhere", async () => {
    const metrics = await (await admin("/metrics")).text();
    expect(metrics).toMatch(/codex_network_proxy_hook_requests_total\{hook="api"\} [1-9]/);
    expect(metrics).toMatch(/codex_network_proxy_hook_injected_headers_total\{hook="api"\} [1-9]/);
    expect(proxy.stderr()).toContain("network.policy.hook=api");
    const config = await (await admin("/config")).text();
    expect(config).toContain(`"secret_file":"${secretFile}"`);
    const everything = [proxy.stderr(), config, metrics, JSON.stringify(await blocked()), await (await admin("/patterns")).text()].join("\n");
    for (const secret of [TOKEN, ROTATED]) expect(everything).not.toContain(secret);
  });
});
