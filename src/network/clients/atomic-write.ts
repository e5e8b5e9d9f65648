/**
 * Replace a file atomically: write a sibling temp file with an exact mode (umask-proof),
 * fsync it, rename it over the target. Readers see the old or the new content, never half.
 */
import { open, rename, rm } from "node:fs/promises";

/**
 * Write `text` to `path` through `<path>.<random>.tmp` + rename.
 * @throws the fs error (ENOENT for a missing folder, EACCES, …); the temp file is removed
 */
export async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  // WebCrypto's CSPRNG, not node:crypto: loading that costs ~15 ms of start-to-listening (bench).
  const tmp = `${path}.${Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex")}.tmp`;
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
