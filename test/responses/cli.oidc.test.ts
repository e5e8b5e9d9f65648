import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCli, USAGE, type ResponsesProxyArgs } from "../../src/responses/cli.ts";
import { BUN, MAIN, runProxyMain } from "../helpers/responses.ts";

const FLAGS = [
  "--github-oidc",
  "--oidc-audience", "aud",
  "--identity-provider-id", "idp",
  "--service-account-id", "sa",
  "--github-oidc-request-url", "https://127.0.0.1:1/token?x=1",
];

describe("--github-oidc on the command line (SPEC §1.8)", () => {
  test("all five flags parse, both spellings", () => {
    const args: ResponsesProxyArgs = { port: 0, httpShutdown: false, upstreamUrl: "https://api.openai.com/v1/responses", logLevel: "info", logFormat: "text", githubOidc: true, oidcAudience: "aud", identityProviderId: "idp", serviceAccountId: "sa", githubOidcRequestUrl: "https://127.0.0.1:1/token?x=1" };
    expect(parseCli(FLAGS)).toEqual({ kind: "run", args });
    expect(parseCli(["--github-oidc", "--oidc-audience=aud", "--identity-provider-id=idp", "--service-account-id=sa", "--github-oidc-request-url=https://127.0.0.1:1/token?x=1"])).toEqual({ kind: "run", args });
  });

  test.each([
    [["--github-oidc"], ["--oidc-audience <A>", "--identity-provider-id <ID>", "--service-account-id <ID>", "--github-oidc-request-url <URL>"]],
    [["--oidc-audience", "a", "--service-account-id", "s"], ["--github-oidc", "--identity-provider-id <ID>", "--github-oidc-request-url <URL>"]],
    [FLAGS.slice(0, 7), ["--github-oidc-request-url <URL>"]],
  ])("each flag requires the four others: %j", (argv, missing) => {
    expect(parseCli(argv)).toEqual({
      kind: "usage-error",
      text: `error: the following required arguments were not provided:\n${missing.map((m) => `  ${m}\n`).join("")}\n${USAGE}\n\nFor more information, try '--help'.\n`,
    });
  });

  test("--github-oidc takes no value", () => {
    expect(parseCli(["--github-oidc=1"])).toMatchObject({ kind: "usage-error" });
  });

  test("--help documents the mode with a GitHub Actions example", async () => {
    const r = await runProxyMain(["--help"]);
    expect(r.code).toBe(0);
    for (const s of ["--github-oidc", "--oidc-audience <A>", "--github-oidc-request-url <URL>", "id-token: write", "printenv ACTIONS_ID_TOKEN_REQUEST_TOKEN", "env -u ACTIONS_ID_TOKEN_REQUEST_TOKEN"]) {
      expect(r.stdout).toContain(s);
    }
  });
});

describe("start-up as a child process", () => {
  const dir = mkdtempSync(join(tmpdir(), "rp-oidc-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Run with stdin left open and never written: a child that read stdin would hang (and the test time out). */
  async function runWithOpenStdin(args: string[]) {
    const proc = Bun.spawn([BUN, MAIN, ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH } });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    proc.stdin.end();
    return { code, stdout, stderr };
  }

  test.each([
    [["--upstream-url", "http://127.0.0.1:1/v1/responses"], "workload identity requires the default OpenAI Responses endpoint"],
    [["--identity-provider-id", " "], "workload identity requires a nonempty --identity-provider-id"],
    [["--service-account-id", ""], "workload identity requires a nonempty --service-account-id"],
    [["--oidc-audience", ""], "workload identity requires a nonempty --oidc-audience"],
    [["--github-oidc-request-url", ""], "workload identity requires a nonempty --github-oidc-request-url"],
    [["--github-oidc-request-url", "::"], "invalid GitHub OIDC request URL"],
    [["--github-oidc-request-url", "https://h/t#"], "GitHub OIDC request URL must be HTTPS without user info or fragment"],
  ])("%j → exit 1 before stdin is read: %s", async (override, message) => {
    const argv = [...FLAGS];
    for (let i = 0; i < override.length; i += 2) {
      const at = argv.indexOf(override[i]!);
      if (at >= 0) argv[at + 1] = override[i + 1]!;
      else argv.push(override[i]!, override[i + 1]!);
    }
    expect(await runWithOpenStdin(argv)).toEqual({ code: 1, stdout: "", stderr: `Error: ${message}\n` });
  });

  test.each([
    ["tok en\n", "invalid workload identity bearer credential"],
    ["", "invalid workload identity bearer credential"],
    ["x".repeat(17_000), "GitHub OIDC request credential too large"],
  ])("stdin %# → exit 1: %s", async (stdin, message) => {
    expect(await runProxyMain(FLAGS, stdin)).toEqual({ code: 1, stdout: "", stderr: `Error: ${message}\n` });
  });

  test("the first token is obtained before binding: a failed GitHub call exits 1 without server-info", async () => {
    const info = join(dir, "info.json");
    const r = await runProxyMain([...FLAGS, "--server-info", info], "req-token\n");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "Error: GitHub OIDC token request failed\n" });
    expect(existsSync(info)).toBe(false);
  });
});
