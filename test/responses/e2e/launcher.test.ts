import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../helpers/responses.ts";

const hasNode = Bun.which("node") !== null;

/** A fake package: bin/launch.js (the real one) + dist/fake (a shell script). */
function fakePackage(script: string) {
  const dir = mkdtempSync(join(tmpdir(), "rp-launch-"));
  mkdirSync(join(dir, "bin"));
  mkdirSync(join(dir, "dist"));
  copyFileSync(join(ROOT, "bin", "launch.js"), join(dir, "bin", "launch.js"));
  writeFileSync(join(dir, "package.json"), '{"type":"module"}');
  writeFileSync(join(dir, "bin", "fake.js"), 'import { launch } from "./launch.js";\nlaunch("fake");\n');
  writeFileSync(join(dir, "dist", "fake"), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, "dist", "fake"), 0o755);
  return dir;
}

describe.skipIf(!hasNode || process.platform === "win32")("bin/launch.js (SPEC §5)", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const run = (script: string, args: string[] = []) => {
    const dir = fakePackage(script);
    dirs.push(dir);
    return Bun.spawn(["node", join(dir, "bin", "fake.js"), ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  };

  test("arguments passed, stdin inherited (a key can be piped through), exit code mirrored", async () => {
    const p = run('printf "%s|" "$@"; cat; exit 3', ["--port", "1"]);
    p.stdin.write("sk-key\n");
    await p.stdin.end();
    expect(await new Response(p.stdout).text()).toBe("--port|1|sk-key\n");
    expect(await p.exited).toBe(3);
  });

  test("SIGTERM is forwarded; a child killed by it makes the launcher die of SIGTERM too", async () => {
    const p = run("echo ready; exec sleep 1000");
    const reader = p.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    p.kill("SIGTERM");
    await p.exited;
    expect(p.signalCode).toBe("SIGTERM");
  });

  test("SIGINT forwarded to a child that handles it: launcher exits with the child's code", async () => {
    const p = run("trap 'kill $!; exit 0' INT; echo ready; sleep 1000 & wait");
    const reader = p.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    p.kill("SIGINT");
    expect(await p.exited).toBe(0);
    expect(p.signalCode).toBeNull();
  });

  test("SIGHUP is forwarded", async () => {
    const p = run("trap 'kill $!; exit 42' HUP; echo ready; sleep 1000 & wait");
    const reader = p.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    p.kill("SIGHUP");
    expect(await p.exited).toBe(42);
  });
});

describe("bin/launch.js: which binary (the esbuild/biome layout)", async () => {
  const { platformTarget, candidatePaths, missingBinaryMessage } = await import("../../../bin/launch.js");

  test.each([
    ["linux", "x64", "glibc", "linux-x64"],
    ["linux", "arm64", "glibc", "linux-arm64"],
    ["linux", "x64", "musl", "linux-x64-musl"],
    ["linux", "arm64", "musl", "linux-arm64-musl"],
    ["linux", "x64", null, "linux-x64"],
    ["darwin", "x64", null, "darwin-x64"],
    ["darwin", "arm64", null, "darwin-arm64"],
    ["win32", "x64", null, "windows-x64"],
    ["win32", "arm64", null, null],
    ["linux", "ia32", "glibc", null],
    ["freebsd", "x64", null, null],
  ])("%s %s libc=%s → %s", (platform, arch, libc, want) => {
    expect(platformTarget(platform, arch, () => libc)).toBe(want);
  });

  test("the platform package comes first, then a checkout's dist/<target>/ and dist/", () => {
    const resolve = (pkg: string) => (pkg === "@codex-proxies/linux-arm64-musl" ? "/g/node_modules/@codex-proxies/linux-arm64-musl" : null);
    expect(candidatePaths("codex-network-proxy", "/g/node_modules/codex-proxies", "linux-arm64-musl", resolve)).toEqual([
      "/g/node_modules/@codex-proxies/linux-arm64-musl/bin/codex-network-proxy",
      "/g/node_modules/codex-proxies/dist/linux-arm64-musl/codex-network-proxy",
      "/g/node_modules/codex-proxies/dist/codex-network-proxy",
    ]);
    expect(candidatePaths("codex-network-proxy", "/p", "windows-x64", () => "/w")[0]).toBe("/w/bin/codex-network-proxy.exe");
  });

  test("the error names the missing platform package", () => {
    expect(missingBinaryMessage("codex-network-proxy", "linux-x64")).toBe(
      "codex-network-proxy: the platform package @codex-proxies/linux-x64 is not installed.\n" +
        "npm installs it as an optional dependency of codex-proxies; it is missing after --omit=optional,\n" +
        "--no-optional or a lockfile made on another platform. Reinstall with optional dependencies\n" +
        "(npm i -g codex-proxies), or install @codex-proxies/linux-x64 of the same version next to it.\n",
    );
    expect(missingBinaryMessage("codex-network-proxy", null, "freebsd", "x64")).toBe(
      "codex-network-proxy: no prebuilt executable for freebsd-x64 (supported: Linux x64/arm64 glibc or musl, macOS x64/arm64, Windows x64)\n",
    );
  });
});
