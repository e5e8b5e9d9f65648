/**
 * `codex-network-proxy env` output (SPEC-network §11): which variables, from which addresses,
 * and each format read back by the program that consumes it (sh, fish, pwsh, Bun's dotenv,
 * JSON) with values that need quoting (spaces, `'`, `$`, backslashes, quotes).
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { clientEnv, parseServerInfo, renderEnv, type EnvFormat, type EnvVars } from "../../../src/network/clients/env.ts";
import { testConfig } from "../../helpers/network.ts";
import { tempDir } from "./helpers.ts";

// Real processes on a shared 2-core machine: bounded, but not by bun's 5 s default.
setDefaultTimeout(60_000);

const TRICKY: EnvVars = [
  ["CNP_SPACE", "/tmp/with space/ca-bundle.pem"],
  ["CNP_QUOTE", "/tmp/it's/ca.pem"],
  ["CNP_DOLLAR", "$HOME ${HOME} $(id) `id`"],
  ["CNP_BACKSLASH", "a\\b\\\\c\\'d"],
  ["CNP_DQUOTE", 'say "hi"'],
  ["CNP_EMPTY", ""],
];

const which = (cmd: string) => Bun.which(cmd) !== null;

/** Program that loads `file` and prints every value followed by NUL. */
const READERS: Record<Exclude<EnvFormat, "json">, { available: boolean; argv: (file: string, names: string[]) => string[] }> = {
  sh: { available: which("sh"), argv: (f, n) => ["sh", "-c", `. '${f}'; printf '%s\\0' ${n.map((x) => `"$${x}"`).join(" ")}`] },
  fish: { available: which("fish"), argv: (f, n) => ["fish", "--no-config", "-c", `source '${f}'; printf '%s\\0' ${n.map((x) => `"$${x}"`).join(" ")}`] },
  powershell: {
    available: which("pwsh"),
    argv: (f, n) => ["pwsh", "-NoProfile", "-Command", `. '${f}'; [Console]::Out.Write((@(${n.map((x) => `$env:${x}`).join(",")}) -join [char]0) + [char]0)`],
  },
  dotenv: {
    available: true,
    argv: (f, n) => [process.execPath, `--env-file=${f}`, "-e", `process.stdout.write(${JSON.stringify(n)}.map((k) => (process.env[k] ?? "") + "\\0").join(""))`],
  },
};

/** dotenv readers disagree on `$` and `\\` (see env.ts): the values they all read the same way. */
const DOTENV_SAFE: EnvVars = TRICKY.filter(([, v]) => !/[$\\]/.test(v));

describe("each format read back by its consumer", () => {
  for (const [format, reader] of Object.entries(READERS) as [Exclude<EnvFormat, "json">, (typeof READERS)["sh"]][]) {
    test.skipIf(!reader.available)(`${format}${reader.available ? "" : " (not installed: skipped)"}`, async () => {
      using dir = tempDir();
      const file = join(dir.path, `env.${format}`);
      // PowerShell (and some shells) do not keep empty variables: only check those as "" or unset.
      const vars = format === "dotenv" ? DOTENV_SAFE : TRICKY;
      writeFileSync(file, renderEnv(vars, format));
      const names = vars.map(([k]) => k);
      const p = Bun.spawn(reader.argv(file, names), { env: { PATH: process.env.PATH!, HOME: "/nonexistent-home" }, stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      expect(out.split("\0").slice(0, -1)).toEqual(vars.map(([, v]) => v));
    });
  }

  test("dotenv read by Node's --env-file too", async () => {
    using dir = tempDir();
    const file = join(dir.path, "env.dotenv");
    writeFileSync(file, renderEnv(DOTENV_SAFE, "dotenv"));
    const names = DOTENV_SAFE.map(([k]) => k);
    const p = Bun.spawn(["node", `--env-file=${file}`, "-e", `process.stdout.write(${JSON.stringify(names)}.map((k) => (process.env[k] ?? "") + "\\0").join(""))`], { stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect(code).toBe(0);
    expect(out.split("\0").slice(0, -1)).toEqual(DOTENV_SAFE.map(([, v]) => v));
  });

  test("dotenv refuses a value no reader takes literally", () => {
    expect(() => renderEnv([["SSL_CERT_FILE", "/tmp/$x/ca.pem"]], "dotenv")).toThrow("SSL_CERT_FILE: value cannot be written as dotenv");
  });

  test("json", () => {
    expect(JSON.parse(renderEnv(TRICKY, "json"))).toEqual(Object.fromEntries(TRICKY));
  });
});

describe("clientEnv", () => {
  const names = (v: EnvVars) => v.map(([k]) => k);
  const PROXY_NAMES = [
    "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "WS_PROXY", "WSS_PROXY", "ALL_PROXY", "all_proxy",
    "NO_PROXY", "no_proxy", "npm_config_proxy", "npm_config_https_proxy", "YARN_HTTP_PROXY", "YARN_HTTPS_PROXY",
    "PIP_PROXY", "NODE_USE_ENV_PROXY",
  ];
  const CA_NAMES = [
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
    "CARGO_HTTP_CAINFO", "PIP_CERT", "npm_config_cafile", "BUNDLE_SSL_CA_CERT", "CODEX_CA_CERTIFICATE",
  ];

  test("defaults: config addresses, socks5h for ALL_PROXY, empty NO_PROXY, no CA variables without MITM", () => {
    const cfg = testConfig({ proxyUrl: "http://127.0.0.1:3128", socksUrl: "http://127.0.0.1:8081" });
    const env = Object.fromEntries(clientEnv(cfg));
    expect(names(clientEnv(cfg))).toEqual(PROXY_NAMES);
    expect(env).toMatchObject({
      HTTP_PROXY: "http://127.0.0.1:3128",
      http_proxy: "http://127.0.0.1:3128",
      ALL_PROXY: "socks5h://127.0.0.1:8081",
      NO_PROXY: "",
      PIP_PROXY: "http://127.0.0.1:3128",
      NODE_USE_ENV_PROXY: "1",
    });
  });

  test("server-info ports win; SOCKS5 off → ALL_PROXY is the HTTP proxy; local binding → loopback in NO_PROXY", () => {
    const cfg = testConfig({ proxyUrl: "127.0.0.1:3128", policy: { allowLocalBinding: true } });
    const env = Object.fromEntries(clientEnv(cfg, { http: 40001, socks: null }));
    expect(env).toMatchObject({ HTTPS_PROXY: "http://127.0.0.1:40001", ALL_PROXY: "http://127.0.0.1:40001", NO_PROXY: "localhost,127.0.0.1,::1" });
  });

  test("IPv6 and unspecified binds are dialable addresses", () => {
    expect(Object.fromEntries(clientEnv(testConfig({ proxyUrl: "[::1]:3128", enableSocks5: false }))).HTTP_PROXY).toBe("http://[::1]:3128");
    expect(Object.fromEntries(clientEnv(testConfig({ proxyUrl: "0.0.0.0:3128" }))).HTTP_PROXY).toBe("http://127.0.0.1:3128");
  });

  test("MITM on: every CA variable names ca-bundle.pem beside the CA certificate", () => {
    const cfg = testConfig({ mitm: { enabled: true, caCertPath: "/x/y/ca.pem" } });
    const vars = clientEnv(cfg);
    expect(names(vars)).toEqual([...PROXY_NAMES, ...CA_NAMES]);
    for (const [k, v] of vars) if (CA_NAMES.includes(k)) expect(v).toBe("/x/y/ca-bundle.pem");
  });

  test("server-info line", () => {
    expect(parseServerInfo('{"http":1,"socks":null,"admin":3,"pid":9}\n', "f")).toEqual({ http: 1, socks: null });
    expect(() => parseServerInfo("nope", "/run/x.json")).toThrow("/run/x.json: not a server-info line");
    expect(() => parseServerInfo('{"http":0}', "f")).toThrow("f: not a server-info line");
  });
});
