import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../helpers/responses.ts";

const ANALYZE = Bun.which("systemd-analyze");
const UNITS = ["codex-responses-api-proxy.service", "codex-responses-api-proxy-keyfile.service"];

describe.skipIf(!ANALYZE)("systemd units (SPEC §5)", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-systemd-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(UNITS)("%s passes systemd-analyze verify and carries the hardening", async (unit) => {
    // verify checks that ExecStart's program exists: point it at a stand-in executable.
    const fake = join(dir, "codex-responses-api-proxy");
    writeFileSync(fake, "#!/bin/sh\n");
    chmodSync(fake, 0o755);
    const text = readFileSync(join(ROOT, "packaging", "systemd", unit), "utf8");
    writeFileSync(join(dir, unit), text.replaceAll("/usr/local/bin/codex-responses-api-proxy", fake));
    const p = Bun.spawn([ANALYZE!, "verify", join(dir, unit)], { stdout: "pipe", stderr: "pipe" });
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    for (const line of [
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "CapabilityBoundingSet=",
      "LockPersonality=yes",
      "LimitCORE=0",
      "DynamicUser=yes",
    ]) {
      expect(text.split("\n")).toContain(line);
    }
    expect(text).toMatch(unit.includes("keyfile") ? /^StandardInput=file:\/etc\/codex\/openai\.key$/m : /^LoadCredential=openai-api-key:\/etc\/codex\/openai\.key$/m);
  });
});
