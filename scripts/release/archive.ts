/**
 * Reproducible archives: the same staged tree gives the same bytes on every run and machine.
 *
 * - `.tar.gz`: GNU tar with entries sorted by name, every mtime set to `epoch`, owner and group
 *   0 written as numbers (no user names), GNU format (no atime/ctime fields), then `gzip -n`
 *   (no file name or time stamp in the gzip header).
 * - `.zip`: Info-ZIP `zip -X` (no extra fields: no uid/gid, no extended Unix times) over a
 *   sorted list of files whose mtimes were set to `epoch`, with `TZ=UTC` because a zip entry's
 *   DOS time is local time.
 * Permissions are whatever the caller staged (it sets them explicitly; umask must not leak in).
 * Needs GNU tar (`gtar` on macOS), gzip and zip: the release runs on Linux.
 */
import { readdirSync, statSync, utimesSync } from "node:fs";
import { join, relative } from "node:path";

/** Every file and folder under `dir` (paths relative to `base`), sorted by byte order. */
export function listTree(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out.push(relative(base, p));
    if (statSync(p).isDirectory()) out.push(...listTree(p, base));
  }
  return out.sort();
}

function run(argv: string[], opts: { cwd: string; env?: Record<string, string> }): void {
  const r = Bun.spawnSync(argv, { cwd: opts.cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...opts.env } });
  if (r.exitCode !== 0) throw new Error(`${argv.slice(0, 3).join(" ")} … failed: ${r.stderr.toString().trim()}`);
}

/** Writes `out` (.tar.gz) holding folder `name` of `parent`, reproducibly (see the module doc). */
export function writeTarGz(opts: { parent: string; name: string; out: string; epoch: number }): void {
  const tar = `tar --sort=name --format=gnu --mtime=@${opts.epoch} --owner=0 --group=0 --numeric-owner -cf - -- "$1"`;
  run(["bash", "-c", `set -euo pipefail; ${tar} | gzip -n > "$2"`, "tar", opts.name, opts.out], { cwd: opts.parent });
}

/** Writes `out` (.zip) holding folder `name` of `parent`, reproducibly (see the module doc). */
export function writeZip(opts: { parent: string; name: string; out: string; epoch: number }): void {
  const root = join(opts.parent, opts.name);
  const entries = [opts.name, ...listTree(root).map((p) => join(opts.name, p))];
  for (const e of entries) utimesSync(join(opts.parent, e), opts.epoch, opts.epoch);
  const files = entries.filter((e) => !statSync(join(opts.parent, e)).isDirectory());
  const r = Bun.spawnSync(["zip", "-X", "-q", "-@", opts.out], {
    cwd: opts.parent,
    stdin: new TextEncoder().encode(files.join("\n") + "\n"),
    stderr: "pipe",
    env: { ...process.env, TZ: "UTC" },
  });
  if (r.exitCode !== 0) throw new Error(`zip ${opts.out} failed: ${r.stderr.toString().trim()}`);
}
