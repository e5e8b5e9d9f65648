/**
 * npm packages in the esbuild/biome layout (SPEC §5), written as folders ready for `npm pack` /
 * `npm publish`:
 *
 * - `@codex-proxies/<target>` per release target: `bin/` with both executables, `os`/`cpu`
 *   (and `libc` on Linux) so npm installs only the matching one, no `bin` entry and no install
 *   scripts (nothing runs at install time).
 * - `codex-proxies`, the launcher: `bin/codex-*.js` (plain Node, bin/launch.js) and every
 *   platform package as an exactly pinned optional dependency.
 */
import { chmodSync, copyFileSync, linkSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A release target as archive and npm names use it, with its npm platform fields. */
export interface ReleaseTarget {
  /** `linux-arm64-musl`, `darwin-x64`, `windows-x64`, … */
  name: string;
  os: "linux" | "darwin" | "win32";
  cpu: "x64" | "arm64";
  libc?: "glibc" | "musl";
  /** Executable suffix: `.exe` on Windows, else empty. */
  exe: string;
}

/** Launcher package name (unscoped, what users `npm i -g`). */
export const LAUNCHER_PACKAGE = "codex-proxies";
/** Per-platform package name for a target. */
export const platformPackage = (t: ReleaseTarget) => `@codex-proxies/${t.name}`;

const EXECUTABLES = ["codex-responses-api-proxy", "codex-network-proxy"] as const;

function describe(t: ReleaseTarget): string {
  const os = { linux: "Linux", darwin: "macOS", win32: "Windows" }[t.os];
  return `${os} ${t.cpu}${t.libc ? ` (${t.libc})` : ""}`;
}

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

/** Options shared by every package written. */
export interface NpmPackageOptions {
  root: string;
  outdir: string;
  version: string;
  /** `repository` field (npm publish --provenance checks it against the building repository). */
  repository?: string;
}

/**
 * Writes `<outdir>/<target>/` for one platform; `binaries` is the folder holding the two
 * executables (hard-linked when possible, else copied). Returns the package folder.
 */
export function writePlatformPackage(o: NpmPackageOptions & { target: ReleaseTarget; binaries: string }): string {
  const dir = join(o.outdir, o.target.name);
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const name of EXECUTABLES) {
    const from = join(o.binaries, name + o.target.exe);
    const to = join(dir, "bin", name + o.target.exe);
    try {
      linkSync(from, to);
    } catch {
      copyFileSync(from, to);
    }
    chmodSync(to, 0o755);
  }
  writeJson(join(dir, "package.json"), {
    name: platformPackage(o.target),
    version: o.version,
    description: `codex-responses-api-proxy and codex-network-proxy executables for ${describe(o.target)}; installed by the ${LAUNCHER_PACKAGE} package`,
    license: "Apache-2.0",
    ...(o.repository ? { repository: { type: "git", url: o.repository } } : {}),
    os: [o.target.os],
    cpu: [o.target.cpu],
    ...(o.target.libc ? { libc: [o.target.libc] } : {}),
    files: ["bin/"],
    preferUnplugged: true,
  });
  writeFileSync(
    join(dir, "README.md"),
    `# ${platformPackage(o.target)}\n\nThe ${describe(o.target)} executables of [${LAUNCHER_PACKAGE}](https://www.npmjs.com/package/${LAUNCHER_PACKAGE}). ` +
      `Install \`${LAUNCHER_PACKAGE}\` instead; npm picks this package on matching machines.\n`,
  );
  copyFileSync(join(o.root, "LICENSE"), join(dir, "LICENSE"));
  return dir;
}

/** The documents of `<root>/docs` the README links to (file names, sorted). */
export function docFiles(root: string): string[] {
  return readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).sort();
}

/** Writes `<outdir>/codex-proxies/`, the launcher (and docs/), pinning every target's package. */
export function writeLauncherPackage(o: NpmPackageOptions & { targets: readonly ReleaseTarget[] }): string {
  const dir = join(o.outdir, LAUNCHER_PACKAGE);
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const f of ["launch.js", ...EXECUTABLES.map((n) => `${n}.js`)]) {
    copyFileSync(join(o.root, "bin", f), join(dir, "bin", f));
    chmodSync(join(dir, "bin", f), f === "launch.js" ? 0o644 : 0o755);
  }
  writeJson(join(dir, "package.json"), {
    name: LAUNCHER_PACKAGE,
    version: o.version,
    description: "codex-responses-api-proxy (holds an OpenAI API key for unprivileged users) and codex-network-proxy (egress policy proxy), as standalone executables",
    license: "Apache-2.0",
    ...(o.repository ? { repository: { type: "git", url: o.repository } } : {}),
    type: "module",
    bin: Object.fromEntries(EXECUTABLES.map((n) => [n, `bin/${n}.js`])),
    files: ["bin/", "docs/"],
    engines: { node: ">=20" },
    optionalDependencies: Object.fromEntries(o.targets.map((t) => [platformPackage(t), o.version])),
  });
  copyFileSync(join(o.root, "README.md"), join(dir, "README.md"));
  copyFileSync(join(o.root, "LICENSE"), join(dir, "LICENSE"));
  mkdirSync(join(dir, "docs"));
  for (const f of docFiles(o.root)) copyFileSync(join(o.root, "docs", f), join(dir, "docs", f));
  return dir;
}

/**
 * `npm pack`s each folder into `outdir` (what `npm publish <tarball>` uploads); returns the
 * tarball paths in the order given. Throws on the first failure.
 */
export function packPackages(dirs: readonly string[], outdir: string): string[] {
  return dirs.map((dir) => {
    const r = Bun.spawnSync(["npm", "pack", dir, "--pack-destination", outdir, "--json", "--ignore-scripts"], { stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`npm pack ${dir} failed: ${r.stderr.toString().trim()}`);
    const [{ filename }] = JSON.parse(r.stdout.toString()) as Array<{ filename: string }>;
    return join(outdir, filename);
  });
}
