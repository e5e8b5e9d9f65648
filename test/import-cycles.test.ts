/**
 * No import cycles in `src/` (issue 7: dependencies point one way; CI fails on any cycle),
 * checked with scripts/import-cycles.ts, plus the checker's own negative control.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findImportCycles } from "../scripts/import-cycles.ts";

const dir = mkdtempSync(join(tmpdir(), "cnp-cycles-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("import cycles", () => {
  test("src/ has none", () => {
    expect(findImportCycles(join(import.meta.dir, "..", "src"))).toEqual([]);
  });

  test("the checker finds a type-only cycle and a self-import, and ignores packages", () => {
    const src = join(dir, "src");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "a.ts"), 'import { b } from "./sub/b.ts";\nimport { z } from "zod";\nexport const a = b;\n');
    writeFileSync(join(src, "sub", "b.ts"), 'import type { A } from "../a.ts";\nexport const b = 1;\n');
    writeFileSync(join(src, "self.ts"), 'export * from "./self.ts";\n');
    writeFileSync(join(src, "leaf.ts"), 'import { a } from "./a.ts";\n');
    expect(findImportCycles(src)).toEqual([["src/a.ts", "src/sub/b.ts"], ["src/self.ts"]]);
  });
});
