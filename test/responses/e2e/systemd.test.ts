/**
 * The systemd units shipped in packaging/systemd (SPEC §5, SPEC-network §9): every unit in the
 * folder passes `systemd-analyze verify` and carries the hardening; each product's own lines
 * (how the key or the config reaches it) are pinned. A unit added to the folder without
 * expectations here fails the first test.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../helpers/responses.ts";

const ANALYZE = Bun.which("systemd-analyze");
const UNIT_DIR = join(ROOT, "packaging", "systemd");

/** Per unit: the program ExecStart runs, and the lines only that unit has. */
const UNITS: Record<string, { program: string; own: RegExp[] }> = {
  "codex-responses-api-proxy.service": {
    program: "codex-responses-api-proxy",
    own: [/^LoadCredential=openai-api-key:\/etc\/codex\/openai\.key$/m],
  },
  "codex-responses-api-proxy-keyfile.service": {
    program: "codex-responses-api-proxy",
    own: [/^StandardInput=file:\/etc\/codex\/openai\.key$/m],
  },
  "codex-network-proxy.service": {
    program: "codex-network-proxy",
    own: [
      /^ExecStart=\/usr\/local\/bin\/codex-network-proxy run --config \/etc\/codex-network-proxy\/config\.toml$/m,
      /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
      /^StateDirectory=codex-network-proxy$/m,
      /^KillSignal=SIGTERM$/m,
    ],
  },
};

const HARDENING = [
  "NoNewPrivileges=yes",
  "ProtectSystem=strict",
  "ProtectHome=yes",
  "PrivateTmp=yes",
  "CapabilityBoundingSet=",
  "LockPersonality=yes",
  "LimitCORE=0",
  "DynamicUser=yes",
];

test("every unit in packaging/systemd has expectations here", () => {
  expect(readdirSync(UNIT_DIR).filter((f) => f.endsWith(".service")).sort()).toEqual(Object.keys(UNITS).sort());
});

describe.skipIf(!ANALYZE)("systemd units (SPEC §5, SPEC-network §9)", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-systemd-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(Object.keys(UNITS))("%s passes systemd-analyze verify and carries the hardening", async (unit) => {
    const { program, own } = UNITS[unit]!;
    // verify checks that ExecStart's program exists: point it at a stand-in executable.
    const fake = join(dir, program);
    writeFileSync(fake, "#!/bin/sh\n");
    chmodSync(fake, 0o755);
    const text = readFileSync(join(UNIT_DIR, unit), "utf8");
    const verified = text.replaceAll(`/usr/local/bin/${program}`, fake);
    expect(verified).not.toBe(text);
    writeFileSync(join(dir, unit), verified);
    const p = Bun.spawn([ANALYZE!, "verify", join(dir, unit)], { stdout: "pipe", stderr: "pipe" });
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(HARDENING.filter((line) => !text.split("\n").includes(line))).toEqual([]);
    for (const re of own) expect(text).toMatch(re);
  });
});
