/**
 * End-to-end: the compiled proxy in `--github-oidc` mode against fake GitHub / OpenAI https
 * servers with a throwaway CA, inside `unshare -n -m` (auth.openai.com and api.openai.com map
 * to 127.0.0.1 only there; nothing can leave the machine). Skipped visibly where namespaces
 * are not available (not root, not Linux, no unshare).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { BUN, ROOT } from "../../helpers/responses.ts";
import { privateNetworkAvailable, spawnInPrivateNetwork } from "../../helpers/netns.ts";
import { removeTempDirs, tempDir } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const available = privateNetworkAvailable();

describe.skipIf(!available)("compiled proxy, --github-oidc, in a private network namespace", () => {
  const dir = tempDir("rp-oidc-bin-");
  const bin = join(dir, "codex-responses-api-proxy");
  beforeAll(() => {
    const r = Bun.spawnSync([BUN, join(ROOT, "scripts", "build.ts"), "--only", "responses", "--outdir", dir], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`build failed: ${r.stderr.toString()}`);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test(
    "first token before binding, forwarding, timer renewal ahead of need, 401 → new token",
    async () => {
      const p = spawnInPrivateNetwork([BUN, join(import.meta.dir, "oidc-runner.ts"), bin], { PATH: process.env.PATH });
      const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
      const body = (id: string) =>
        '{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","subject_token_type":"urn:ietf:params:oauth:token-type:jwt",' +
        `"subject_token":"<jwt>","identity_provider_id":"${id}","service_account_id":"sa_456"}`;
      const gh = ["/github/token?api-version=2.0&audience=api%3A%2F%2Fcodex+test", true, "*/*"];
      expect(JSON.parse(stdout)).toEqual({
        serverInfo: true,
        upstreamCallsWhenRenewed: 1,
        statuses: [[200, true], [200, true], [401, true], [200, true]],
        upstream: [
          ["api.openai.com", "token1", 200],
          ["api.openai.com", "token2", 200],
          ["api.openai.com", "token2", 401],
          ["api.openai.com", "token3", 200],
        ],
        github: [gh, gh, gh],
        exchanges: [0, 1, 2].map(() => ["application/json", body("idp_123")]),
        issued: 3,
        exit: 0,
        stderr: ["responses-api-proxy listening on 127.0.0.1:<port>"],
      });
    },
    60_000,
  );

  // SPEC §1.8 (beyond): each secret only in its locked page, retired access tokens and the
  // spent subject JWT nowhere. Both token calls run in a child process, so the copies Bun's
  // socket layer leaves in freed receive buffers die with it (README, key-copies section).
  test.skipIf(process.getuid?.() !== 0)(
    "scripts/key-copies.ts --github-oidc: request token 1 copy, current access token 1, retired 0, JWT 0, after a renewal",
    async () => {
      const r = Bun.spawn([BUN, join(ROOT, "scripts", "key-copies.ts"), "--github-oidc", "--binary", bin, "--requests", "200"], { stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(r.stdout).text(), new Response(r.stderr).text(), r.exited]);
      expect({ code, err: err.replace(/scanner self-check: upstream URL found [1-9]\d* times\n/, "") }).toEqual({ code: 0, err: "" });
      const figure = (label: RegExp) => Number(out.match(label)?.[1]);
      expect({
        renewals: figure(/^renewals: (\d+)$/m),
        request: figure(/^request token copies after 200 requests: (\d+)$/m),
        current: figure(/^current access token copies after 200 requests: (\d+)$/m),
        retired: figure(/^retired access token copies \(1 tokens\): (\d+)$/m),
        subject: figure(/^subject token \(JWT\) copies: (\d+)$/m),
      }).toEqual({ renewals: 1, request: 1, current: 1, retired: 0, subject: 0 });
    },
    60_000,
  );
});
