import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { binaryFormat, EXPECTED_FORMAT } from "../../scripts/release/binary-format.ts";
import { checkMachOSignature } from "../../scripts/release/macho-signature.ts";
import { docFiles } from "../../scripts/release/npm-packages.ts";
import { baseName, EXECUTABLES, HEAD, RELEASE_DIR, ROOT, sh, TARGET_NAMES, VERSION } from "./helpers.ts";

const dir = RELEASE_DIR ?? "";
const release = join(dir, "release");
const stage = join(dir, "stage");
/** The documents every archive carries (docs/*.md). */
const DOCS = docFiles(ROOT);
const archiveName = (t: string) => baseName(t) + (t.startsWith("windows") ? ".zip" : ".tar.gz");
const exe = (t: string, name: string) => join(stage, baseName(t), name + (t.startsWith("windows") ? ".exe" : ""));

describe.skipIf(!RELEASE_DIR)("npm run release: archives (set CODEX_PROXIES_RELEASE_DIR)", () => {
  test("SHA256SUMS lists exactly the 7 archives and `sha256sum -c` accepts them", () => {
    expect(readdirSync(release).sort()).toEqual(["SHA256SUMS", ...TARGET_NAMES.map(archiveName)].sort());
    const sums = readFileSync(join(release, "SHA256SUMS"), "utf8");
    expect(sums.trimEnd().split("\n").map((l) => l.replace(/^[0-9a-f]{64} {2}/, ""))).toEqual(TARGET_NAMES.map(archiveName).sort());
    const check = sh(["sha256sum", "-c", "SHA256SUMS"], { cwd: release });
    expect({ code: check.code, out: check.out }).toEqual({ code: 0, out: TARGET_NAMES.map(archiveName).sort().map((f) => `${f}: OK\n`).join("") });
   }, 120_000);

  test.each(TARGET_NAMES.filter((t) => !t.startsWith("windows")))("%s.tar.gz: sorted entries, owner 0/0, one mtime, exact contents", (t) => {
    const r = sh(["tar", "--numeric-owner", "--full-time", "-tvzf", join(release, archiveName(t))], { env: { TZ: "UTC" } });
    expect(r.code).toBe(0);
    const rows = r.out.trimEnd().split("\n").map((l) => l.split(/\s+/));
    // mode owner/group size date time name
    const names = rows.map((c) => c[5]!);
    const b = baseName(t);
    const units = readdirSync(join(ROOT, "packaging", "systemd")).sort();
    expect(names).toEqual([
      `${b}/`,
      `${b}/LICENSE`,
      `${b}/README.md`,
      `${b}/codex-network-proxy`,
      `${b}/codex-responses-api-proxy`,
      `${b}/docs/`,
      ...DOCS.map((d) => `${b}/docs/${d}`),
      ...(t.startsWith("linux") ? [`${b}/systemd/`, ...units.map((u) => `${b}/systemd/${u}`)] : []),
    ]);
    expect(new Set(rows.map((c) => c[1]))).toEqual(new Set(["0/0"]));
    expect(new Set(rows.map((c) => `${c[3]} ${c[4]}`)).size).toBe(1);
    expect(rows.filter((c) => c[5]!.endsWith("-proxy")).map((c) => c[0])).toEqual(["-rwxr-xr-x", "-rwxr-xr-x"]);
  }, 60_000);

  test("windows-x64.zip: the two .exe files, README.md, LICENSE, docs/; no extra fields", () => {
    const r = sh(["unzip", "-Z1", join(release, archiveName("windows-x64"))]);
    const b = baseName("windows-x64");
    const files = [`${b}/LICENSE`, `${b}/README.md`, `${b}/codex-network-proxy.exe`, `${b}/codex-responses-api-proxy.exe`, ...DOCS.map((d) => `${b}/docs/${d}`)];
    expect(r.out.trimEnd().split("\n")).toEqual(files);
    const details = sh(["unzip", "-Z", "-v", join(release, archiveName("windows-x64"))]).out;
    expect(details.match(/length of extra field: +(\d+) bytes/g)?.map((l) => l.replace(/ +/g, " "))).toEqual(Array(files.length).fill("length of extra field: 0 bytes"));
  }, 60_000);

  test.each(TARGET_NAMES)("%s: both executables have the right format, architecture and dynamic loader", (t) => {
    for (const name of EXECUTABLES) {
      const head = readFileSync(exe(t, name)).subarray(0, 1 << 16);
      expect({ name, ...binaryFormat(new Uint8Array(head)) }).toEqual({ name, ...EXPECTED_FORMAT[t]! });
    }
  }, 60_000);

  test("darwin: darwin-signatures.json states each signature as it is; darwin-arm64 ones are valid ad-hoc signatures", () => {
    const reported = JSON.parse(readFileSync(join(dir, "darwin-signatures.json"), "utf8"));
    const found: Record<string, unknown> = {};
    for (const t of ["darwin-x64", "darwin-arm64"])
      for (const name of EXECUTABLES) {
        const r = checkMachOSignature(new Uint8Array(readFileSync(exe(t, name))));
        found[`${t}/${name}`] = { valid: r.valid, adhoc: r.adhoc, problems: r.problems };
      }
    expect(reported).toEqual(found);
    // Apple Silicon kills an arm64 executable whose signature is invalid.
    for (const name of EXECUTABLES) expect(reported[`darwin-arm64/${name}`]).toEqual({ valid: true, adhoc: true, problems: [] });
  }, 120_000);

  test.skipIf(process.platform !== "linux" || process.arch !== "x64")("linux-x64: --version names the package version and this commit", () => {
    for (const name of EXECUTABLES) {
      const r = sh([exe("linux-x64", name), "--version"]);
      expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: `${name} ${VERSION} (commit ${HEAD})\n` });
    }
  });

  test("the staged trees are what the archives hold (stage/ is the release's working copy)", () => {
    for (const t of TARGET_NAMES) expect(existsSync(exe(t, "codex-network-proxy"))).toBe(true);
  });
});
