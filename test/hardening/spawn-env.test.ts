/**
 * Every child process started by src/ is given its environment explicitly. Bun.spawn without
 * `env` passes the copy of the environment Bun made at start, so a variable removed after
 * start (the `LD_*`/`DYLD_*` variables harden() drops, a `secret_env_var`) would still reach
 * the child (measured with Bun 1.4.5; see src/hardening/harden.ts).
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const SRC = join(import.meta.dir, "../../src");

/** The text of each `Bun.spawn(`/`Bun.spawnSync(` call in `text`, up to its closing parenthesis. */
function spawnCalls(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/Bun\.spawn(?:Sync)?\(/g)) {
    let depth = 0;
    let i = m.index + m[0].length - 1;
    for (; i < text.length; i++) {
      if (text[i] === "(") depth++;
      else if (text[i] === ")" && --depth === 0) break;
    }
    out.push(text.slice(m.index, i + 1));
  }
  return out;
}

test("every Bun.spawn in src/ passes env", () => {
  const files = readdirSync(SRC, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  const calls = files.flatMap((f) => spawnCalls(readFileSync(join(SRC, f), "utf8")).map((call) => ({ file: f, call })));
  expect(calls.length).toBeGreaterThan(0);
  expect(calls.filter((c) => !/\benv\s*[:,}]/.test(c.call)).map((c) => c.file)).toEqual([]);
});

test("the check sees a spawn without env", () => {
  const [call] = spawnCalls('Bun.spawn(["sh", "-c", f(x)], { stdout: "pipe" });');
  expect(call).toBe('Bun.spawn(["sh", "-c", f(x)], { stdout: "pipe" })');
  expect(/\benv\s*[:,}]/.test(call!)).toBe(false);
});
