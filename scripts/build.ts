/**
 * `npm run build` / `bun run build`: both executables with `bun build --compile` (SPEC §5).
 *
 *   bun scripts/build.ts [--all-targets] [--outdir <dir>] [--only responses|network]
 *
 * Host build → `dist/codex-responses-api-proxy`, `dist/codex-network-proxy`.
 * `--all-targets` → also `dist/<target>/<name>[.exe]` for every SPEC §0 target; Bun downloads
 * each cross-compile runtime, so a target may fail offline: that is reported, and the
 * other targets still build. Exit status is non-zero only when a host build fails.
 * (`npm run release` is the strict, reproducible, archived form: scripts/release.ts.)
 *
 * Flags: `--minify --bytecode` (faster start), and no autoloading of `.env`/`bunfig.toml`
 * from the working directory: the key-holding binary must not pick up a stranger's
 * configuration (or preload scripts) from wherever it is started. `--version` carries the
 * git commit (`--define CODEX_PROXIES_COMMIT`, read by src/version.ts).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..");

/** The two executables: `id` for `--only`, `name` of the file, `entry` relative to ROOT. */
export const ENTRIES = [
  { id: "responses", name: "codex-responses-api-proxy", entry: "src/responses/main.ts" },
  { id: "network", name: "codex-network-proxy", entry: "src/network/main.ts" },
] as const;

/** SPEC §0 run targets, as Bun cross-compile target names. */
export const TARGETS = [
  "bun-linux-x64",
  "bun-linux-arm64",
  "bun-linux-x64-musl",
  "bun-linux-arm64-musl",
  "bun-darwin-x64",
  "bun-darwin-arm64",
  "bun-windows-x64",
] as const;
export type BunTarget = (typeof TARGETS)[number];

/**
 * The commit of the checkout, with `-dirty` when tracked files differ from it, or null outside
 * a git checkout (or without git).
 */
export function gitCommit(cwd = ROOT): string | null {
  const head = Bun.spawnSync(["git", "rev-parse", "HEAD"], { cwd, stdout: "pipe", stderr: "ignore" });
  if (head.exitCode !== 0) return null;
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd, stdout: "pipe", stderr: "ignore" });
  return head.stdout.toString().trim() + (dirty.stdout.toString().trim() ? "-dirty" : "");
}

/** Options of one `bun build --compile`. */
export interface CompileOptions {
  /** Source entry, relative to ROOT. */
  entry: string;
  /** Output file (absolute). Its base name is embedded in the binary (`/$bunfs/root/<name>`). */
  outfile: string;
  /** Cross-compile target; the host when absent. */
  target?: BunTarget;
  /** A Bun runtime for `target` to use instead of letting Bun download it. */
  executablePath?: string;
  /** Written into `--version` (src/version.ts); omitted → "unknown". */
  commit?: string | null;
}

/** Runs `bun build --compile`; `output` is Bun's stdout+stderr, trimmed. */
export function compile(o: CompileOptions): { ok: boolean; output: string } {
  const args = [
    process.execPath,
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    // ESM keeps top-level await legal (with --bytecode Bun would default to CommonJS).
    "--format=esm",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    ...(o.commit ? [`--define=CODEX_PROXIES_COMMIT=${JSON.stringify(o.commit)}`] : []),
    ...(o.target ? [`--target=${o.target}`] : []),
    ...(o.executablePath ? [`--compile-executable-path=${o.executablePath}`] : []),
    join(ROOT, o.entry),
    "--outfile",
    o.outfile,
  ];
  const r = Bun.spawnSync(args, { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: process.env });
  return { ok: r.exitCode === 0, output: (r.stdout.toString() + r.stderr.toString()).trim() };
}

function parseArgs(argv: string[]) {
  const out = { allTargets: false, outdir: join(ROOT, "dist"), only: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--all-targets") out.allTargets = true;
    else if (a === "--outdir" && argv[i + 1]) out.outdir = resolve(argv[++i]!);
    else if (a === "--only" && argv[i + 1]) out.only = argv[++i]!;
    else {
      process.stderr.write(`usage: bun scripts/build.ts [--all-targets] [--outdir <dir>] [--only responses|network]\n`);
      process.exit(2);
    }
  }
  return out;
}

function main(): number {
  const opts = parseArgs(process.argv.slice(2));
  mkdirSync(opts.outdir, { recursive: true });
  const commit = gitCommit();
  let failed = 0;
  for (const e of ENTRIES) {
    if (opts.only && opts.only !== e.id) continue;
    if (!existsSync(join(ROOT, e.entry))) {
      process.stderr.write(`skip ${e.name}: ${e.entry} does not exist yet\n`);
      continue;
    }
    const outfile = join(opts.outdir, e.name);
    const r = compile({ entry: e.entry, outfile, commit });
    if (!r.ok) {
      failed++;
      process.stderr.write(`FAILED ${e.name} (host):\n${r.output}\n`);
      continue;
    }
    process.stderr.write(`built ${outfile}\n`);
    if (!opts.allTargets) continue;
    for (const t of TARGETS) {
      const dir = join(opts.outdir, t.replace(/^bun-/, ""));
      mkdirSync(dir, { recursive: true });
      const file = join(dir, e.name + (t.includes("windows") ? ".exe" : ""));
      const rt = compile({ entry: e.entry, outfile: file, target: t, commit });
      process.stderr.write(rt.ok ? `built ${file}\n` : `could not build ${e.name} for ${t}: ${rt.output.split("\n").pop()}\n`);
    }
  }
  return failed ? 1 : 0;
}

if (import.meta.main) process.exit(main());
