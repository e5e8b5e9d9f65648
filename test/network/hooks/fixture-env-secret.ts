/**
 * Child process for secret.test.ts: reads `HOOK_TEST_SECRET` (set by the parent, so it lives in
 * the C environment block) as a hook secret, then reports where it can still be seen.
 */
import { readFileSync } from "node:fs";
import { loadLibc } from "../../../src/hardening/libc.ts";
import { readSecret } from "../../../src/network/hooks/secret.ts";

const libc = loadLibc();
const s = readSecret(libc, { kind: "env", name: "HOOK_TEST_SECRET" }, "h");
// `env: process.env`: without it Bun.spawn passes Bun's start-up copy of the environment
// (BUN-NOTES), which still holds the variable.
const child = Bun.spawnSync(["sh", "-c", 'printf %s "${HOOK_TEST_SECRET-unset}"'], { env: process.env });
const environ = readFileSync("/proc/self/environ");
let again = "";
try {
  readSecret(libc, { kind: "env", name: "HOOK_TEST_SECRET" }, "h");
} catch (e) {
  again = (e as Error).message;
}
process.stdout.write(
  JSON.stringify({
    value: new TextDecoder().decode(s.value),
    locked: s.locked,
    processEnv: process.env.HOOK_TEST_SECRET ?? null,
    cEnv: libc!.envValueView("HOOK_TEST_SECRET") === null ? null : "set",
    child: child.stdout.toString(),
    inProcEnviron: environ.includes(Buffer.from("env-secret-1")),
    again,
  }),
);
