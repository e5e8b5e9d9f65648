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
import { checkAddressFlag, runCli, serverInfoLine, type CliIo } from "../../src/network/cli.ts";

const ROOT = resolve(import.meta.dir, "../..");
/** The RFC 3339 UTC timestamp that starts every log line. */
const TS = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";
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
    expect(r.err).toMatch(
      new RegExp(`^${TS} config: ${join(home, "config.toml")} mode=full allowed_domains=3 denied_domains=1 mitm=off\n$`),
    );
    expect(r.code).toBe(0);
    const np = JSON.parse(r.out).network_proxy;
    expect(np.policy.allowed_domains).toEqual(["file.test", "a.test", "*.b.test"]);
    expect(np.policy.denied_domains).toEqual(["evil.test"]);
    expect(np.mode).toBe("full");
    expect(np.proxy_url).toBe("127.0.0.1:0");
    expect(np.mitm.ca_cert_path).toBe(join(home, "network_proxy/mitm/ca.pem"));
  });

  test("a missing default file means the defaults, and says so on stderr", async () => {
    const home = tempDir();
    const r = await cli(["check-config"], { CODEX_HOME: home });
    expect(r.code).toBe(0);
    expect(r.err).toMatch(
      new RegExp(`^${TS} config: defaults \\(no file at ${join(home, "config.toml")}\\) mode=full allowed_domains=0 denied_domains=0 mitm=off\n$`),
    );
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
    const r = await cli(["check-config", "--allow", "["], { CODEX_HOME: tempDir() });
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
      const r = await cli(["--http", `127.0.0.1:${busy.port}`, "--admin", "127.0.0.1:0", "--socks", "127.0.0.1:0"], { CODEX_HOME: home });
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      expect(r.err).toEndWith(
        `Error: cannot listen on 127.0.0.1:${busy.port} (HTTP proxy): address already in use; set by --http (choose another address there or in network_proxy.proxy_url)\n`,
      );
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
    expect(r.out).toBe(
      [
        `MITM CA certificate: ${cert} (created)`,
        `MITM CA private key: ${join(home, "network_proxy/mitm/ca.key")}`,
        "",
        "Clients must trust this certificate for limited-mode HTTPS (network_proxy.mitm.enabled = true):",
        `  curl:         curl --cacert ${cert} …  (or export CURL_CA_BUNDLE=${cert})`,
        `  git:          export GIT_SSL_CAINFO=${cert}`,
        `  pip:          pip --cert ${cert} …  (or export PIP_CERT=${cert})`,
        `  requests:     export REQUESTS_CA_BUNDLE=${cert}`,
        `  Node.js:      export NODE_EXTRA_CA_CERTS=${cert}`,
        `  system store: sudo cp ${cert} /usr/local/share/ca-certificates/codex-network-proxy.crt && sudo update-ca-certificates`,
        "",
        `Trust bundle (system roots + this CA): ${join(home, "network_proxy/mitm/ca-bundle.pem")}`,
        "Point a shell's clients at the proxy (proxy variables, and the bundle when mitm.enabled):",
        '  eval "$(codex-network-proxy env)"',
        "",
      ].join("\n"),
    );
    expect(existsSync(cert)).toBe(true);
    const before = await Bun.file(cert).text();
    const again = await cli(["init"], { CODEX_HOME: home });
    expect(again.out).toStartWith(`MITM CA certificate: ${cert} (already present)\n`);
    expect(await Bun.file(cert).text()).toBe(before);
  });

  test("creates the CA folder 0700 even under umask 0, like run (issue 8 row 10)", async () => {
    const home = tempDir();
    const old = process.umask(0);
    try {
      expect((await cli(["init"], { CODEX_HOME: home })).code).toBe(0);
    } finally {
      process.umask(old);
    }
    const { statSync } = await import("node:fs");
    for (const d of ["network_proxy", "network_proxy/mitm"]) expect(statSync(join(home, d)).mode & 0o777).toBe(0o700);
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

describe("no silent config mistakes (issue 13)", () => {
  test("--config naming a missing file → exit 1 naming it (not the defaults)", async () => {
    const file = join(tempDir(), "typo", "path.toml");
    for (const argv of [["--config", file], ["check-config", "--config", file], ["init", "--config", file]]) {
      const r = await cli(argv);
      expect(r).toEqual({ code: 1, out: "", err: `Error: ${file}: config file not found\n` });
    }
  });

  test.each(["network_proxi", "network-proxy", "NetworkProxy", "network.proxy", "networkproxy"])(
    "a [%s] table is an error naming both tables",
    async (name) => {
      const home = tempDir();
      const file = join(home, "config.toml");
      writeFileSync(file, `[${name}]\nmode = "limited"\n`);
      const r = await cli(["check-config", "--config", file]);
      expect(r).toEqual({ code: 1, out: "", err: `Error: ${file}: ${name}: table [${name}] is not read: did you mean [network_proxy]?\n` });
    },
  );

  test("a file with no [network_proxy] table starts with a warning naming the file", async () => {
    const home = tempDir();
    const file = join(home, "config.toml");
    writeFileSync(file, 'model = "o3"\n[profiles.fast]\nmodel = "o4-mini"\n');
    const r = await cli(["check-config", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.err.split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^${TS} WARN: ${file} has no \\[network_proxy\\] table; the defaults apply$`)),
      expect.stringMatching(new RegExp(`^${TS} config: ${file} mode=full allowed_domains=0 denied_domains=0 mitm=off$`)),
      "",
    ]);
  });

  test("run: the summary line (file, mode, pattern counts, MITM) comes before the listeners, every line timestamped", async () => {
    const home = tempDir();
    const file = join(home, "config.toml");
    writeFileSync(file, '[network_proxy]\nmode = "limited"\n[network_proxy.policy]\nallowed_domains = ["a.test", "b.test"]\ndenied_domains = ["c.test"]\n');
    const proc = Bun.spawn([BUN, MAIN, "--config", file, "--http", "127.0.0.1:0", "--socks", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-format", "json"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const lines: Array<Record<string, unknown>> = [];
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of proc.stderr) {
      partial += decoder.decode(chunk, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p));
      if (lines.some((l) => String(l.msg).startsWith("admin API listening"))) break;
    }
    proc.kill("SIGTERM");
    await proc.exited;
    clearTimeout(timer);
    expect(lines[0]).toEqual({
      "event.timestamp": expect.stringMatching(new RegExp(`^${TS}$`)),
      level: "info",
      msg: `config: ${file}`,
      mode: "limited",
      allowed_domains: 2,
      denied_domains: 1,
      mitm: "off",
    });
    for (const l of lines) expect(l["event.timestamp"]).toMatch(new RegExp(`^${TS}$`));
  });

  test("a busy port set in the file names the key", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const home = tempDir();
      writeFileSync(join(home, "config.toml"), `[network_proxy]\nadmin_url = "127.0.0.1:${busy.port}"\n`);
      const r = await cli(["--http", "127.0.0.1:0", "--socks", "127.0.0.1:0"], { CODEX_HOME: home });
      expect(r.code).toBe(1);
      expect(r.err).toEndWith(
        `Error: cannot listen on 127.0.0.1:${busy.port} (admin API): address already in use; set by network_proxy.admin_url (choose another address there or with --admin)\n`,
      );
    } finally {
      busy.stop(true);
    }
  });
});
