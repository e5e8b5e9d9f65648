import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { startProxyChild } from "../helpers/responses.ts";
import { removeTempDirs, tempDir } from "../helpers/temp.ts";
import { docFiles } from "../../scripts/release/npm-packages.ts";
import { baseName, EXECUTABLES, HEAD, RELEASE_DIR, ROOT, sh, TARGET_NAMES, VERSION } from "./helpers.ts";

afterAll(removeTempDirs);

const dir = RELEASE_DIR ?? "";
const KEY = "sk-release_KEY-42";

/** A fake upstream recording the Authorization header of each request. */
function recordingUpstream() {
  const seen: Array<string | null> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push(req.headers.get("authorization"));
      return new Response("upstream-ok");
    },
  });
  return { seen, server, url: `http://127.0.0.1:${server.port}/v1/responses` };
}

/** Key piped on stdin, one POST /v1/responses through the proxy, then /shutdown; all asserted. */
async function oneProxiedRequest(cmd: string[]) {
  const up = recordingUpstream();
  const p = await startProxyChild(["--http-shutdown", "--upstream-url", up.url], { key: KEY, cmd });
  try {
    const res = await fetch(`${p.base}/v1/responses`, { method: "POST", body: "{}" });
    expect({ status: res.status, body: await res.text(), seen: up.seen }).toEqual({ status: 200, body: "upstream-ok", seen: [`Bearer ${KEY}`] });
    expect((await fetch(`${p.base}/shutdown`)).status).toBe(200);
    expect(await p.proc.exited).toBe(0);
  } finally {
    await p.stop();
    up.server.stop(true);
  }
}

/** Like sh() but without blocking the event loop (the test's own registry must answer meanwhile). */
async function shAsync(argv: string[]) {
  const p = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

// Debian's qemu-user-static and libc6:arm64 (the aarch64 glibc loader), both installed by .ci/run.
const QEMU = Bun.which("qemu-aarch64-static");
const canRunArm64 = QEMU !== null && existsSync("/lib/ld-linux-aarch64.so.1");

describe.skipIf(!RELEASE_DIR || !canRunArm64)("linux-arm64 release executables under qemu-aarch64-static", () => {
  const bin = (name: string) => join(dir, "stage", baseName("linux-arm64"), name);

  test("--version of both names the package version and this commit", () => {
    for (const name of EXECUTABLES) {
      const r = sh([QEMU!, bin(name), "--version"]);
      expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: `${name} ${VERSION} (commit ${HEAD})\n` });
    }
  }, 120_000);

  test("codex-responses-api-proxy: a piped key, one proxied request, /shutdown", async () => {
    await oneProxiedRequest([QEMU!, bin("codex-responses-api-proxy")]);
  }, 120_000);
});

describe.skipIf(!RELEASE_DIR || process.platform !== "linux" || process.arch !== "x64")("npm packages (dist/npm/*.tgz) installed offline", () => {
  const npmDir = join(dir, "npm");
  // Made only when the block runs: a skipped describe still runs its body, not its afterAll.
  const tmp = RELEASE_DIR ? tempDir("cp-npm-") : "";
  const tarball = (pkg: string) => join(npmDir, `${pkg.replace(/^@/, "").replace("/", "-")}-${VERSION}.tgz`);
  const manifest = (tgz: string) => JSON.parse(sh(["tar", "-xzOf", tgz, "package/package.json"]).out);
  const platformPkgs = TARGET_NAMES.map((t) => `@codex-proxies/${t}`);

  test("every package was packed: manifests pin each other exactly, platform fields set, no install scripts", () => {
    expect(readdirSync(npmDir).filter((f) => f.endsWith(".tgz")).sort()).toEqual(["codex-proxies", ...platformPkgs].map((p) => tarball(p).slice(npmDir.length + 1)).sort());
    const launcher = manifest(tarball("codex-proxies"));
    expect(launcher.optionalDependencies).toEqual(Object.fromEntries(platformPkgs.map((p) => [p, VERSION])));
    expect(launcher.bin).toEqual({ "codex-responses-api-proxy": "bin/codex-responses-api-proxy.js", "codex-network-proxy": "bin/codex-network-proxy.js" });
    expect(launcher.scripts).toBeUndefined();
    // The README's links into docs/ work in the installed package too.
    const launcherFiles = sh(["tar", "-tzf", tarball("codex-proxies")]).out.trimEnd().split("\n");
    expect(launcherFiles.filter((f) => f.startsWith("package/docs/")).sort()).toEqual(docFiles(ROOT).map((d) => `package/docs/${d}`));
    for (const t of TARGET_NAMES) {
      const m = manifest(tarball(`@codex-proxies/${t}`));
      const [os, cpu, libc] = t.split("-");
      expect({ name: m.name, version: m.version, os: m.os, cpu: m.cpu, libc: m.libc, scripts: m.scripts, bin: m.bin }).toEqual({
        name: `@codex-proxies/${t}`,
        version: VERSION,
        os: [os === "windows" ? "win32" : os],
        cpu: [cpu],
        libc: os === "linux" ? [libc ?? "glibc"] : undefined,
        scripts: undefined,
        bin: undefined,
      });
      const files = sh(["tar", "-tzf", tarball(`@codex-proxies/${t}`)]).out.trimEnd().split("\n").sort();
      const exe = os === "windows" ? ".exe" : "";
      expect(files).toEqual(["package/LICENSE", "package/README.md", `package/bin/codex-network-proxy${exe}`, `package/bin/codex-responses-api-proxy${exe}`, "package/package.json"]);
    }
  }, 120_000);

  // A registry that refuses everything: npm may ask it for the other platforms' packages
  // (optional, so a refusal skips them) but must need nothing from it to install these two.
  test("npm i -g of the launcher + linux-x64 tarballs against a refusing registry: a piped key is proxied, --version runs", async () => {
    const asked: string[] = [];
    using registry = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        asked.push(decodeURIComponent(new URL(req.url).pathname).slice(1));
        return new Response("refused", { status: 403 });
      },
    });
    const prefix = join(tmp, "prefix");
    const npmArgs = ["--prefix", prefix, "--cache", join(tmp, "cache"), "--registry", `http://127.0.0.1:${registry.port}/`, "--fetch-retries=0", "--no-audit", "--no-fund"];
    const install = Bun.spawn(["npm", "install", "-g", ...npmArgs, tarball("codex-proxies"), tarball("@codex-proxies/linux-x64")], { stdout: "pipe", stderr: "pipe" });
    const [err, code] = await Promise.all([new Response(install.stderr).text(), install.exited]);
    expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
    expect([...new Set(asked)].sort()).toEqual(platformPkgs.filter((p) => p !== "@codex-proxies/linux-x64").sort());
    const r = sh([join(prefix, "bin", "codex-network-proxy"), "--version"]);
    expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: `codex-network-proxy ${VERSION} (commit ${HEAD})\n` });
    await oneProxiedRequest([join(prefix, "bin", "codex-responses-api-proxy")]);
  }, 300_000);

  test("--omit=optional: the launcher names the missing platform package and exits 1", async () => {
    using registry = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("refused", { status: 403 }) });
    const prefix = join(tmp, "prefix-omit");
    const r = await shAsync(["npm", "install", "-g", "--omit=optional", "--prefix", prefix, "--cache", join(tmp, "cache"), "--registry", `http://127.0.0.1:${registry.port}/`, "--fetch-retries=0", "--no-audit", "--no-fund", tarball("codex-proxies")]);
    expect(r.code).toBe(0);
    const run = sh([join(prefix, "bin", "codex-network-proxy"), "--version"]);
    expect({ code: run.code, out: run.out }).toEqual({ code: 1, out: "" });
    expect(run.err).toStartWith("codex-network-proxy: the platform package @codex-proxies/linux-x64 is not installed.\n");
  }, 120_000);
});
