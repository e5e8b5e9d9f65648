/**
 * docs/configuration.md documents every key of the `[network_proxy]` table (issue 13: the full
 * configuration reference lives in the repository): each key `check-config` prints for an
 * empty table has a row `| \`key\` |` in the reference. A key added to the schema without a
 * row fails here.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../../src/network/cli.ts";
import { removeTempDirs, tempDir } from "../helpers/temp.ts";

afterAll(removeTempDirs);

const DOC = readFileSync(join(import.meta.dir, "../../docs/configuration.md"), "utf8");

/** `a.b.c` paths of every key of `obj` (objects recursed into, arrays and values are leaves). */
function keyPaths(obj: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? keyPaths(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

test("every key check-config prints has a row in docs/configuration.md, under its table", async () => {
  const dir = tempDir("cp-docs-");
  writeFileSync(join(dir, "config.toml"), "[network_proxy]\n");
  let out = "";
  const code = await runCli(["check-config", "--config", join(dir, "config.toml")], { stdout: (t) => void (out += t), stderr: () => {}, env: {} });
  expect(code).toBe(0);
  const paths = keyPaths(JSON.parse(out).network_proxy);
  expect(paths.length).toBeGreaterThan(20);
  // The section of each table: from its heading to the next heading.
  const section = (table: string) => {
    const start = DOC.indexOf(`### \`[${table}]\``);
    const end = DOC.indexOf("\n#", start + 1);
    return start < 0 ? "" : DOC.slice(start, end < 0 ? undefined : end);
  };
  const missing = paths.filter((p) => {
    const parts = p.split(".");
    const table = ["network_proxy", ...parts.slice(0, -1)].join(".");
    return !section(table).includes(`| \`${parts.at(-1)}\` |`);
  });
  expect(missing).toEqual([]);
});
