/**
 * docs/troubleshooting.md names every answer a client of the network proxy can get (issue 13:
 * the `x-proxy-error` table in the repository): each block reason with its `x-proxy-error`
 * value and text, and each non-block answer's status and text. A reason or answer added to
 * src/network without a row fails here.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ANSWERS, reasonView } from "../../src/network/answers.ts";
import { BLOCK_REASONS } from "../../src/network/reasons.ts";

const DOC = readFileSync(join(import.meta.dir, "../../docs/troubleshooting.md"), "utf8");
const rows = DOC.split("\n").filter((l) => l.startsWith("|"));

test("every block reason has a row with its x-proxy-error value and text", () => {
  const missing = BLOCK_REASONS.filter((reason) => {
    const v = reasonView(reason);
    if (v.proxyError === undefined) return !rows.some((r) => r.includes(`\`${reason}\``) || r.includes(`${v.status} ${v.text}`));
    return !rows.some((r) => r.includes(`\`${reason}\``) && r.includes(`\`${v.proxyError}\``) && r.includes(v.text));
  });
  expect(missing).toEqual([]);
});

test("every non-block answer has a row with its status and text", () => {
  const missing = Object.entries(ANSWERS)
    .filter(([, v]) => !rows.some((r) => r.includes(`${v.status} ${v.text}`)))
    .map(([name]) => name);
  expect(missing).toEqual([]);
});
