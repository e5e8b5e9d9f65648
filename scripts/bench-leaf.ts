/**
 * MITM leaf issuance cost (SPEC-network §6), moved out of the test suite (issue 14, row 6):
 * `issueLeaf` with the shared leaf key (what the engine does) side by side, interleaved, with
 * the naive peer that makes a fresh EC P-256 key for every host. CA: RSA 2048 made by
 * `loadOrCreateCa` in a temporary folder removed at the end.
 *
 * Usage: bun scripts/bench-leaf.ts [hosts=200] [rounds=3]
 * Prints `leaf issuance: X ms/host (shared key), Y ms/host (fresh key per host), ratio Y/X`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateCa } from "../src/network/mitm/ca.ts";
import { createLeafKey, issueLeaf } from "../src/network/mitm/leaf.ts";

const hosts = Math.min(Number(process.argv[2] ?? "200"), 10_000);
const rounds = Math.min(Number(process.argv[3] ?? "3"), 20);
const dir = mkdtempSync(join(tmpdir(), "bench-leaf-"));
try {
  const ca = await loadOrCreateCa(join(dir, "ca.pem"), join(dir, "ca.key"), { create: true });
  const shared = await createLeafKey();
  for (let i = 0; i < 20; i++) issueLeaf(ca, shared, `warm${i}.test`);
  let sharedMs = 0;
  let freshMs = 0;
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    for (let i = 0; i < hosts; i++) issueLeaf(ca, shared, `s${r}-${i}.example.test`);
    sharedMs += performance.now() - t0;
    t0 = performance.now();
    for (let i = 0; i < hosts; i++) issueLeaf(ca, await createLeafKey(), `f${r}-${i}.example.test`);
    freshMs += performance.now() - t0;
  }
  const a = sharedMs / (hosts * rounds);
  const b = freshMs / (hosts * rounds);
  console.log(`leaf issuance: ${a.toFixed(3)} ms/host (shared key), ${b.toFixed(3)} ms/host (fresh key per host), ratio ${(b / a).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
