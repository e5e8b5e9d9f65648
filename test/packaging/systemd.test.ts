/**
 * The systemd units (SPEC §5, SPEC-network §9, issue 13): every unit in packaging/systemd has
 * expectations here (its own lines: how the key or the config reaches it); each passes
 * `systemd-analyze verify` with `ExecStart` pointing at the freshly built executables (verify
 * checks that the program exists; for the credential unit, whose ExecStart is `/bin/sh -c 'exec
 * <binary> …'`, the test checks the binary path itself), carries the hardening the README
 * promises, and its `systemd-analyze security` exposure score is the one the README states. The
 * example config for the network unit passes `check-config`. `.ci/run` installs systemd, so this
 * runs in CI.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runCli } from "../../src/network/cli.ts";
import { removeTempDirs, tempDir } from "../helpers/temp.ts";

afterAll(removeTempDirs);

const ROOT = resolve(import.meta.dir, "../..");
const BUN = process.execPath;
const ANALYZE = Bun.which("systemd-analyze");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** Every unit in packaging/systemd: the program ExecStart runs, and the lines only that unit has. */
const UNITS = [
  {
    unit: "codex-network-proxy.service",
    binary: "codex-network-proxy",
    own: [
      /^ExecStart=\/usr\/local\/bin\/codex-network-proxy run --config \/etc\/codex-network-proxy\/config\.toml$/m,
      /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
      /^StateDirectory=codex-network-proxy$/m,
      /^KillSignal=SIGTERM$/m,
    ],
  },
  // The key arrives as a credential, or from the root-only file for systemd < 247.
  { unit: "codex-responses-api-proxy.service", binary: "codex-responses-api-proxy", own: [/^LoadCredential=openai-api-key:\/etc\/codex\/openai\.key$/m] },
  { unit: "codex-responses-api-proxy-keyfile.service", binary: "codex-responses-api-proxy", own: [/^StandardInput=file:\/etc\/codex\/openai\.key$/m] },
] as const;

test("every unit in packaging/systemd has expectations here", () => {
  const shipped = readdirSync(join(ROOT, "packaging", "systemd")).filter((f) => f.endsWith(".service"));
  expect(shipped.sort()).toEqual(UNITS.map((u) => u.unit).sort());
});

const HARDENING = [
  "NoNewPrivileges=yes",
  "ProtectSystem=strict",
  "ProtectHome=yes",
  "PrivateTmp=yes",
  "CapabilityBoundingSet=",
  "LockPersonality=yes",
  "LimitCORE=0",
  "DynamicUser=yes",
  "SystemCallFilter=~@privileged",
];

describe.skipIf(!ANALYZE)("systemd units", () => {
  let dir = "";
  beforeAll(() => {
    dir = tempDir("cp-systemd-");
    const r = Bun.spawnSync([BUN, join(ROOT, "scripts", "build.ts"), "--outdir", dir], { stderr: "pipe", stdout: "pipe" });
    if (r.exitCode !== 0) throw new Error(`build failed: ${r.stderr.toString()}`);
  }, 240_000);

  /** The unit text with /usr/local/bin/<binary> replaced by the built one. */
  const installed = (unit: string, binary: string) => {
    const text = readFileSync(join(ROOT, "packaging", "systemd", unit), "utf8");
    const exec = text.split("\n").find((l) => l.startsWith("ExecStart="))!;
    expect(exec).toContain(`/usr/local/bin/${binary} `);
    const path = join(dir, unit);
    writeFileSync(path, text.replaceAll(`/usr/local/bin/${binary}`, join(dir, binary)));
    return { text, path };
  };

  test.each(UNITS)("$unit: verify passes with ExecStart at the built executable; hardening and its own lines present", async ({ unit, binary, own }) => {
    const { text, path } = installed(unit, binary);
    // The executable the unit starts exists and runs.
    expect(existsSync(join(dir, binary))).toBe(true);
    const v = Bun.spawnSync([join(dir, binary), "--version"], { stdout: "pipe", stderr: "pipe" });
    expect(v.stdout.toString()).toStartWith(`${binary} `);
    const p = Bun.spawn([ANALYZE!, "verify", path], { stdout: "pipe", stderr: "pipe" });
    const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const lines = text.split("\n");
    expect(HARDENING.filter((line) => !lines.includes(line))).toEqual([]);
    for (const re of own) expect(text).toMatch(re);
  });

  test.each(UNITS)("$unit: the README states its systemd-analyze security exposure", async ({ unit, binary }) => {
    const { path } = installed(unit, binary);
    const p = Bun.spawn([ANALYZE!, "security", "--offline=yes", path], { stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect(code).toBe(0);
    const score = /Overall exposure level for \S+: (\d+\.\d)/.exec(out)?.[1];
    expect(score).toBeDefined();
    const row = README.split("\n").find((l) => l.startsWith(`| \`${unit}\` |`));
    expect(row).toStartWith(`| \`${unit}\` | ${score} |`);
  });

});

test("the example config of the network unit passes check-config", async () => {
  let out = "";
  let err = "";
  const code = await runCli(["check-config", "--config", join(ROOT, "packaging/systemd/config.toml")], {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: {},
  });
  expect({ code, err: err.replace(/^\S+ /, "") }).toEqual({
    code: 0,
    err: `config: ${join(ROOT, "packaging/systemd/config.toml")} mode=limited allowed_domains=6 denied_domains=0 mitm=on\n`,
  });
  const np = JSON.parse(out).network_proxy;
  expect([np.mitm.ca_cert_path, np.mitm.ca_key_path]).toEqual(["/var/lib/codex-network-proxy/mitm/ca.pem", "/var/lib/codex-network-proxy/mitm/ca.key"]);
});
