/**
 * `--dump-dir` safety (SPEC §1.7, issue 8 row 7): planted symlinks never redirect a write, the
 * folder is 0700 and files 0600 whatever the umask.
 */
import { afterAll, expect, test } from "bun:test";
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDumper, ensureDumpDir } from "../../src/responses/dump.ts";

const root = mkdtempSync(join(tmpdir(), "rp-dump-safety-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("symlinks planted at the predictable temporary and final names never receive a dump", async () => {
  const dir = join(root, "planted");
  await ensureDumpDir(dir);
  const victim = join(root, "victim.txt");
  writeFileSync(victim, "untouched");
  // The attacker's guess of the next names: sequence 1 and every millisecond of the next 300.
  const now = Date.now();
  for (let ms = now; ms < now + 300; ms++) {
    for (const kind of ["request", "response"]) {
      symlinkSync(victim, join(dir, `.000001-${ms}-${kind}.json.tmp`));
      symlinkSync(victim, join(dir, `000001-${ms}-${kind}.json`));
    }
  }
  const errors: string[] = [];
  const dumper = createDumper(dir, (e) => errors.push(e));
  const exchange = await dumper.request("POST", "/v1/responses", [["content-type", "application/json"]], new TextEncoder().encode('{"prompt":"secret"}'));
  await exchange.response(200, [], new TextEncoder().encode('{"answer":"secret"}'));
  expect(readFileSync(victim, "utf8")).toBe("untouched");
  expect(errors).toEqual([]);
  const written = readdirSync(dir).filter((f) => /^000001-\d+-(request|response)\.json$/.test(f) && !lstatSync(join(dir, f)).isSymbolicLink());
  expect(written).toHaveLength(2);
  for (const f of written) {
    expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, f), "utf8")).body).toHaveProperty(f.includes("request") ? "prompt" : "answer", "secret");
  }
});

test("under umask 0 the folder is created 0700 and files 0600", async () => {
  const old = process.umask(0);
  try {
    const dir = join(root, "umask0", "nested");
    await ensureDumpDir(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, "umask0")).mode & 0o777).toBe(0o700);
    const dumper = createDumper(dir, () => {});
    await dumper.request("POST", "/v1/responses", [], new Uint8Array(0));
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
  } finally {
    process.umask(old);
  }
});
