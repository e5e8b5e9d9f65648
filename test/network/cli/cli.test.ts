/**
 * CLI of codex-network-proxy (SPEC-network §1): usage errors exit 2, config errors exit 1,
 * check-config / init output, enabled=false. Most cases call `runCli` in-process with
 * captured output; a few run the real entry point (`src/network/main.ts`) as a child process
 * to pin exit codes and the stdout/stderr split.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkAddressFlag, runCli, serverInfoLine, type CliIo } from "../../../src/network/cli.ts";

const ROOT = resolve(import.meta.dir, "../../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const MAIN = join(ROOT, "src/network/main.ts");

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "cnp-cli-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) Bun.spawnSync(["rm", "-rf", d]);
});

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: { HOME: tempDir(), ...env } };
  const code = await runCli(argv, io);
  return { code, out, err };
}

/** Run the real entry point; bounded by a kill after 20 s. */
async function spawnMain(argv: string[], env: Record<string, string>) {
  const proc = Bun.spawn([BUN, MAIN, ...argv], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill(), 20_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, out, err };
}

describe("usage errors exit 2", () => {
  const cases: Array<[string[], string]> = [
    [["--bogus"], "Unknown option '--bogus'"],
    [["run", "--allow"], "--allow"],
    [["--config"], "--config"],
    [["--mode", "readonly"], "invalid value for --mode: readonly (expected limited or full)"],
    [["--mode", "LIMITED"], "invalid value for --mode: LIMITED"],
    [["--log-format", "xml"], "invalid value for --log-format: xml"],
    [["--log-level", "loud"], "invalid log level: loud"],
    [["--http", "127.0.0.1:99999"], "invalid --http address: 127.0.0.1:99999"],
    [["--http", "127.0.0.1:abc"], "invalid --http address: 127.0.0.1:abc"],
    [["--socks", "127.0.0.1"], "invalid --socks address: 127.0.0.1"],
    [["--admin", ":8080"], "invalid --admin address: :8080 (missing host)"],
    [["--http", "::1:80"], "write IPv6 as [addr]:port"],
    [["stray"], "unexpected argument: stray"],
    [["init", "--allow", "x.test"], "Unknown option '--allow'"],
    [["check-config", "--server-info", "x"], "Unknown option '--server-info'"],
  ];
  for (const [argv, msg] of cases) {
    test(argv.join(" "), async () => {
      const r = await cli([...argv]);
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toContain(msg);
      expect(r.err).toEndWith("Run 'codex-network-proxy --help' for usage.\n");
    });
  }

  test("child process: unknown flag → exit 2, nothing on stdout", async () => {
    const r = await spawnMain(["--frobnicate"], { HOME: tempDir() });
    expect(r).toEqual({ code: 2, out: "", err: "error: Unknown option '--frobnicate'\nRun 'codex-network-proxy --help' for usage.\n" });
  });
});

describe("address flags", () => {
  test("accepted spellings", () => {
    for (const ok of ["127.0.0.1:0", "http://127.0.0.1:3128", "[::1]:8080", "localhost:1", "socks5://u:p@127.0.0.1:1080/x", "127.0.0.1:65535"]) {
      expect(() => checkAddressFlag("http", ok)).not.toThrow();
    }
  });
});

describe("check-config", () => {
  test("prints the effective config with overrides; repeated --allow/--deny append", async () => {
    const home = tempDir();
    writeFileSync(join(home, "config.toml"), '[network_proxy]\nmode = "limited"\n[network_proxy.policy]\nallowed_domains = ["file.test"]\n');
    const r = await cli(["check-config", "--allow", "a.test", "--allow=*.b.test", "--deny", "evil.test", "--mode", "full", "--http", "127.0.0.1:0"], {
      CODEX_HOME: home,
    });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const np = JSON.parse(r.out).network_proxy;
    expect(np.policy.allowed_domains).toEqual(["file.test", "a.test", "*.b.test"]);
    expect(np.policy.denied_domains).toEqual(["evil.test"]);
    expect(np.mode).toBe("full");
    expect(np.proxy_url).toBe("127.0.0.1:0");
    expect(np.mitm.ca_cert_path).toBe(join(home, "network_proxy/mitm/ca.pem"));
  });

  test("a missing file means the defaults", async () => {
    const home = tempDir();
    const r = await cli(["check-config", "--config", join(home, "none.toml")]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).network_proxy).toMatchObject({ enabled: true, mode: "full", proxy_url: "http://127.0.0.1:3128" });
  });

  test("a bad config → exit 1 with the file and key path on stderr", async () => {
    const home = tempDir();
    const file = join(home, "bad.toml");
    writeFileSync(file, "[network_proxy]\nmode = \"readonly\"\n");
    const r = await cli(["check-config", "--config", file]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toStartWith(`Error: ${file}`);
    expect(r.err).toContain("network_proxy.mode");
  });

  test("an invalid glob → exit 1", async () => {
    const r = await cli(["check-config", "--config", join(tempDir(), "x.toml"), "--allow", "["]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("invalid glob pattern: [");
  });
});

describe("run", () => {
  test("enabled = false → the line on stderr, exit 0, no listeners", async () => {
    const home = tempDir();
    writeFileSync(join(home, "config.toml"), "[network_proxy]\nenabled = false\n");
    const r = await spawnMain(["--config", join(home, "config.toml")], { HOME: home });
    expect(r).toEqual({ code: 0, out: "", err: "network_proxy.enabled is false; not starting listeners\n" });
  });

  test("a config error → Error line, exit 1", async () => {
    const home = tempDir();
    writeFileSync(join(home, "config.toml"), "[network_proxy]\nproxy_urll = \"x\"\n");
    const r = await spawnMain([], { HOME: home, CODEX_HOME: home });
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toStartWith(`Error: ${join(home, "config.toml")}`);
    expect(r.err).toContain("proxy_urll");
  });

  test("a listener that can't bind → Error line, exit 1", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const home = tempDir();
      const r = await cli(["--config", join(home, "none.toml"), "--http", `127.0.0.1:${busy.port}`, "--admin", "127.0.0.1:0", "--socks", "127.0.0.1:0"]);
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      expect(r.err).toStartWith(`Error: cannot listen on 127.0.0.1:${busy.port} (HTTP proxy): EADDRINUSE`);
    } finally {
      busy.stop(true);
    }
  });

  test("server-info line shape", () => {
    expect(serverInfoLine({ http: 1, socks: null, admin: 3 }, 42)).toBe('{"http":1,"socks":null,"admin":3,"pid":42}\n');
  });
});

describe("help and version", () => {
  test("--help goes to stdout, exit 0", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("USAGE codex-network-proxy [OPTIONS] run|init|check-config");
    expect(r.out).toContain("--server-info");
    expect(r.err).toBe("");
  });
  test("--version", async () => {
    const r = await cli(["--version"]);
    expect(r).toEqual({ code: 0, out: `codex-network-proxy ${(await Bun.file(join(ROOT, "package.json")).json()).version} (commit unknown: run from source)\n`, err: "" });
  });
});

describe("init", () => {
  test("creates the CA once, prints its path and how to trust it", async () => {
    const home = tempDir();
    const cert = join(home, "network_proxy/mitm/ca.pem");
    const r = await cli(["init"], { CODEX_HOME: home });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toStartWith(`MITM CA certificate: ${cert} (created)\n`);
    expect(r.out).toContain(`curl --cacert ${cert}`);
    expect(r.out).toContain(`NODE_EXTRA_CA_CERTS=${cert}`);
    expect(r.out).toContain("update-ca-certificates");
    expect(existsSync(cert)).toBe(true);
    const before = await Bun.file(cert).text();
    const again = await cli(["init"], { CODEX_HOME: home });
    expect(again.out).toStartWith(`MITM CA certificate: ${cert} (already present)\n`);
    expect(await Bun.file(cert).text()).toBe(before);
  });

  test("one CA file without the other → exit 1", async () => {
    const home = tempDir();
    Bun.spawnSync(["mkdir", "-p", join(home, "network_proxy/mitm")]);
    writeFileSync(join(home, "network_proxy/mitm/ca.pem"), "x");
    const r = await cli(["init"], { CODEX_HOME: home });
    expect(r.code).toBe(1);
    expect(r.err).toBe("Error: both ca_cert_path and ca_key_path must exist\n");
  });
});
