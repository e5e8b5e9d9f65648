/**
 * `npm run release`: every SPEC §0 target, archived reproducibly, with checksums and npm
 * packages. One command; offline apart from the npm registry (Bun runtimes for cross-compiling,
 * scripts/release/runtimes.ts).
 *
 *   bun scripts/release.ts [--outdir <dir>] [--targets linux-x64,darwin-arm64,…] [--no-npm-pack]
 *
 * Writes (under `dist/` unless --outdir):
 *   release/codex-proxies-<version>-<target>.tar.gz (.zip for Windows), release/SHA256SUMS
 *   npm/<target>/ (@codex-proxies/<target>) and npm/codex-proxies/ (the launcher), each also
 *     packed by `npm pack` into npm/*.tgz (what the release workflow publishes)
 *   stage/codex-proxies-<version>-<target>/ (what each archive holds)
 *   darwin-signatures.json (each macOS executable's code-signature state, for the release notes)
 * Each archive: both executables, README.md, LICENSE, the documents of `docs/`, and on Linux
 * the systemd units in `systemd/`. Every file's mtime is SOURCE_DATE_EPOCH (default: the
 * commit's time), so two runs on one commit give identical bytes. A target that cannot be built fails the command: nothing
 * is skipped. The darwin executables' code signatures are checked and their state printed
 * (scripts/release/macho-signature.ts); an invalid one is reported, never passed off as valid.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { compile, ENTRIES, gitCommit, ROOT, TARGETS, type BunTarget } from "./build.ts";
import { writeTarGz, writeZip } from "./release/archive.ts";
import { checkMachOSignature } from "./release/macho-signature.ts";
import { docFiles, packPackages, writeLauncherPackage, writePlatformPackage, type ReleaseTarget } from "./release/npm-packages.ts";
import { bunRuntime } from "./release/runtimes.ts";

/** Release name and npm platform fields of a Bun target (`bun-linux-arm64-musl` → `linux-arm64-musl`). */
export function releaseTarget(t: BunTarget): ReleaseTarget {
  const name = t.replace(/^bun-/, "");
  const [os, cpu, libc] = name.split("-") as [string, "x64" | "arm64", "musl" | undefined];
  if (os === "windows") return { name, os: "win32", cpu, exe: ".exe" };
  if (os === "darwin") return { name, os: "darwin", cpu, exe: "" };
  return { name, os: "linux", cpu, libc: libc ?? "glibc", exe: "" };
}

function parseArgs(argv: string[]) {
  const out = { outdir: join(ROOT, "dist"), targets: [...TARGETS] as BunTarget[], npmPack: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--outdir" && argv[i + 1]) out.outdir = resolve(argv[++i]!);
    // The npm folders are still written; only `npm pack` (slow: ~100 MiB of gzip each) is left out.
    else if (a === "--no-npm-pack") out.npmPack = false;
    else if (a === "--targets" && argv[i + 1]) {
      const wanted = argv[++i]!.split(",");
      const unknown = wanted.filter((w) => !TARGETS.includes(`bun-${w}` as BunTarget));
      if (unknown.length) throw new Error(`unknown target(s) ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.slice(4)).join(", ")}`);
      out.targets = TARGETS.filter((t) => wanted.includes(t.slice(4)));
    } else throw new Error("usage: bun scripts/release.ts [--outdir <dir>] [--targets linux-x64,darwin-arm64,…] [--no-npm-pack]");
  }
  return out;
}

function sourceDateEpoch(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined) {
    if (!/^\d+$/.test(env)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds, not ${JSON.stringify(env)}`);
    return Number(env);
  }
  const r = Bun.spawnSync(["git", "log", "-1", "--format=%ct"], { cwd: ROOT, stdout: "pipe" });
  return Number(r.stdout.toString().trim());
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function copyInto(from: string, to: string, mode: number): void {
  copyFileSync(from, to);
  chmodSync(to, mode);
}

function main(): number {
  const started = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  const { version, repository } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const commit = gitCommit();
  if (!commit) throw new Error("not a git checkout: --version must name the commit a release is built from");
  if (commit.endsWith("-dirty")) process.stderr.write(`warning: tracked files differ from ${commit.slice(0, 40)}; --version will say -dirty\n`);
  const epoch = sourceDateEpoch();
  const dirs = { release: join(opts.outdir, "release"), stage: join(opts.outdir, "stage"), npm: join(opts.outdir, "npm") };
  for (const d of Object.values(dirs)) {
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
  }
  const cacheDir = join(ROOT, "node_modules", ".cache", "codex-proxies", "bun-runtimes");
  const repoUrl = process.env.CODEX_PROXIES_REPOSITORY ?? (typeof repository === "string" ? repository : repository?.url);
  const notes: string[] = [];
  const npmDirs: string[] = [];
  const signatures: Record<string, { valid: boolean; adhoc: boolean; problems: string[] }> = {};
  const targets = opts.targets.map(releaseTarget);

  for (const [i, bunTarget] of opts.targets.entries()) {
    const t = targets[i]!;
    const t0 = performance.now();
    const executablePath = bunRuntime({ root: ROOT, target: bunTarget, bunVersion: Bun.version, cacheDir });
    const base = `codex-proxies-${version}-${t.name}`;
    const stage = join(dirs.stage, base);
    mkdirSync(stage, { recursive: true });
    for (const e of ENTRIES) {
      const outfile = join(stage, e.name + t.exe);
      const r = compile({ entry: e.entry, outfile, target: bunTarget, executablePath, commit });
      if (!r.ok) throw new Error(`could not build ${e.name} for ${t.name}:\n${r.output}`);
      chmodSync(outfile, 0o755);
      if (t.os === "darwin") {
        const sig = checkMachOSignature(new Uint8Array(readFileSync(outfile)));
        const state = sig.valid ? `valid ${sig.adhoc ? "ad-hoc " : ""}signature` : `INVALID code signature (${sig.problems.join("; ")})`;
        notes.push(`${t.name}/${e.name}: ${state}`);
        signatures[`${t.name}/${e.name}`] = { valid: sig.valid, adhoc: sig.adhoc, problems: sig.problems };
      }
    }
    copyInto(join(ROOT, "README.md"), join(stage, "README.md"), 0o644);
    copyInto(join(ROOT, "LICENSE"), join(stage, "LICENSE"), 0o644);
    // The README links into docs/: the archive carries it, so the links work offline.
    mkdirSync(join(stage, "docs"));
    for (const f of docFiles(ROOT)) copyInto(join(ROOT, "docs", f), join(stage, "docs", f), 0o644);
    chmodSync(join(stage, "docs"), 0o755);
    if (t.os === "linux") {
      mkdirSync(join(stage, "systemd"));
      const units = join(ROOT, "packaging", "systemd");
      for (const f of readdirSync(units).sort()) copyInto(join(units, f), join(stage, "systemd", f), 0o644);
      chmodSync(join(stage, "systemd"), 0o755);
    }
    chmodSync(stage, 0o755);
    const archive = join(dirs.release, base + (t.os === "win32" ? ".zip" : ".tar.gz"));
    (t.os === "win32" ? writeZip : writeTarGz)({ parent: dirs.stage, name: base, out: archive, epoch });
    npmDirs.push(writePlatformPackage({ root: ROOT, outdir: dirs.npm, version, repository: repoUrl, target: t, binaries: stage }));
    const mib = (statSync(archive).size / 2 ** 20).toFixed(1);
    process.stderr.write(`${t.name}: ${archive} (${mib} MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  npmDirs.push(writeLauncherPackage({ root: ROOT, outdir: dirs.npm, version, repository: repoUrl, targets }));
  if (opts.npmPack) for (const tgz of packPackages(npmDirs, dirs.npm)) process.stderr.write(`npm package ${tgz}\n`);

  const sums = readdirSync(dirs.release)
    .filter((f) => f !== "SHA256SUMS")
    .sort()
    .map((f) => `${sha256(join(dirs.release, f))}  ${f}\n`)
    .join("");
  writeFileSync(join(dirs.release, "SHA256SUMS"), sums);
  process.stdout.write(sums);
  for (const n of notes) process.stderr.write(`darwin signature: ${n}\n`);
  writeFileSync(join(opts.outdir, "darwin-signatures.json"), JSON.stringify(signatures, null, 2) + "\n");
  process.stderr.write(
    `release ${version} (commit ${commit}, SOURCE_DATE_EPOCH ${epoch}): ${targets.length} targets in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    process.exit(main());
  } catch (err) {
    process.stderr.write(`release FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
