/**
 * Bun runtimes for cross-compiling (`bun build --compile --compile-executable-path`).
 *
 * Left to itself, `bun build --compile --target=<t>` downloads
 * `https://registry.npmjs.org/@oven/bun-<os>-<arch>/-/…-<version>.tgz` from a fixed host
 * (npm's registry settings and `NPM_CONFIG_REGISTRY` are not used; only
 * `BUN_COMPILE_TARGET_TARBALL_URL` overrides it) into `~/.bun/install/cache`, with no
 * integrity check. A release should not depend on that, so each runtime comes through npm
 * (`npm pack @oven/bun-…@<version>`, which honours the user's registry, proxy and cache
 * configuration) and its tarball must match the `integrity` that package-lock.json pins for
 * that package (the `bun` devDependency lists every platform as an optional dependency).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BunTarget } from "../build.ts";

/** npm package holding Bun's runtime for `target`, e.g. `@oven/bun-linux-aarch64-musl`. */
export function runtimePackage(target: BunTarget): string {
  const [, os, arch, libc] = target.split("-") as [string, string, string, string | undefined];
  return `@oven/bun-${os}-${arch === "arm64" ? "aarch64" : arch}${libc ? `-${libc}` : ""}`;
}

/** The integrity (`sha512-…`) package-lock.json pins for `name`@`version`; throws when absent. */
export function lockedIntegrity(root: string, name: string, version: string): string {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry || entry.version !== version || typeof entry.integrity !== "string") {
    throw new Error(`package-lock.json pins no ${name}@${version} (the bun devDependency's optional dependencies); run npm install`);
  }
  return entry.integrity;
}

function sriOf(bytes: Uint8Array): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

/**
 * Path of the Bun executable for `target` (bun or bun.exe), fetched with `npm pack` into
 * `cacheDir` on first use and checked against package-lock.json. Throws (never falls back to
 * Bun's own download) when npm fails or the tarball does not match.
 */
export function bunRuntime(opts: { root: string; target: BunTarget; bunVersion: string; cacheDir: string }): string {
  const name = runtimePackage(opts.target);
  const integrity = lockedIntegrity(opts.root, name, opts.bunVersion);
  const dir = join(opts.cacheDir, `${name.replace("/", "+")}-${opts.bunVersion}`);
  const exe = join(dir, "package", "bin", opts.target.includes("windows") ? "bun.exe" : "bun");
  const stamp = join(dir, "integrity");
  if (existsSync(exe) && existsSync(stamp) && readFileSync(stamp, "utf8") === integrity) return exe;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // npm retries a failed fetch itself; a registry that goes idle mid-download (EIDLETIMEOUT)
  // ends the command, so the whole `npm pack` gets up to three tries.
  let pack: { exitCode: number | null; stdout: Buffer; stderr: Buffer } | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    pack = Bun.spawnSync(["npm", "pack", `${name}@${opts.bunVersion}`, "--pack-destination", dir, "--json", "--ignore-scripts"], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
    });
    if (pack.exitCode === 0) break;
    process.stderr.write(`npm pack ${name}@${opts.bunVersion} failed (try ${attempt} of 3)\n`);
  }
  if (!pack || pack.exitCode !== 0) throw new Error(`npm pack ${name}@${opts.bunVersion} failed:\n${pack?.stderr.toString().trim()}`);
  const [{ filename }] = JSON.parse(pack.stdout.toString()) as Array<{ filename: string }>;
  const tgz = join(dir, filename);
  const got = sriOf(readFileSync(tgz));
  if (got !== integrity) throw new Error(`${name}@${opts.bunVersion}: tarball ${got} does not match package-lock.json ${integrity}`);
  const untar = Bun.spawnSync(["tar", "-xzf", tgz, "-C", dir], { stderr: "pipe" });
  if (untar.exitCode !== 0 || !existsSync(exe)) throw new Error(`${tgz}: could not extract ${exe}: ${untar.stderr.toString().trim()}`);
  rmSync(tgz);
  writeFileSync(stamp, integrity);
  return exe;
}
