/**
 * Runs INSIDE a private network namespace (netns.ts): fakes on 127.0.0.1:443 play GitHub,
 * auth.openai.com and api.openai.com; the compiled proxy given as argv[2] runs in
 * `--github-oidc` mode with its fixed OpenAI URLs. Prints one JSON summary on stdout for
 * oidc-e2e.test.ts to compare. Every wait is on an event and bounded by the test's timeout.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LineWaiter } from "../../helpers/responses.ts";
import { makeTestPki } from "../../helpers/pki.ts";
import { startFakeIdentity } from "../../helpers/fake-identity.ts";

const bin = process.argv[2]!;
const dir = mkdtempSync(join(tmpdir(), "oidc-e2e-"));
const pki = makeTestPki({ leafNames: ["localhost", "auth.openai.com", "api.openai.com", "127.0.0.1"] });
writeFileSync(join(dir, "ca.pem"), pki.caPem);
// The first token lives 2 s (renewed at 1.8 s by the timer); later ones an hour.
const fake = startFakeIdentity({ pki, port: 443, lifetime: (n) => (n === 1 ? 2 : 3600) });
const info = join(dir, "info.json");
const proxy = Bun.spawn(
  [
    bin,
    "--github-oidc",
    "--github-oidc-request-url", "https://127.0.0.1/github/token?api-version=2.0&audience=old",
    "--oidc-audience", "api://codex test",
    "--identity-provider-id", "idp_123",
    "--service-account-id", "sa_456",
    "--server-info", info,
    "--log-level", "warn",
  ],
  { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: join(dir, "ca.pem") } },
);
proxy.stdin.write(fake.requestToken + "\n");
await proxy.stdin.end();
const stderr = new LineWaiter(proxy.stderr);
const out: Record<string, unknown> = {};
try {
  const listening = await stderr.wait(/listening on 127\.0\.0\.1:(\d+)/);
  if (!listening) throw new Error(`proxy exited: ${stderr.text}`);
  out.serverInfo = JSON.parse(readFileSync(info, "utf8")).pid === proxy.pid;
  const post = async () => {
    const r = await fetch(`http://127.0.0.1:${listening[1]}/v1/responses`, { method: "POST", body: '{"model":"m","input":"hi"}' });
    return [r.status, (await r.text()).length > 0];
  };
  const statuses = [await post()];
  // Renewal ahead of need: the second token arrives with no request asking for it.
  await fake.issuedCount(2);
  out.upstreamCallsWhenRenewed = fake.log.upstream.length;
  // The proxy switches once it has read the exchange's answer, a moment after the fake sent
  // it; until then the old token (still valid) serves. Bounded: at most 100 requests.
  let last = await post();
  for (let i = 0; i < 100 && fake.log.upstream.at(-1)?.authorization !== `Bearer ${fake.issued[1]}`; i++) last = await post();
  statuses.push(last);
  fake.failNextUpstream();
  statuses.push(await post()); // 401 passed through, token dropped
  statuses.push(await post()); // waits for a fresh token (the third)
  out.statuses = statuses;
  const name = (auth: string | null) => `token${fake.issued.findIndex((t) => `Bearer ${t}` === auth) + 1}`;
  // Consecutive identical entries collapse (the requests made while the switch was pending).
  out.upstream = fake.log.upstream
    .map((u) => [u.host, name(u.authorization), u.status])
    .filter((e, i, all) => i === 0 || JSON.stringify(e) !== JSON.stringify(all[i - 1]));
  out.github = fake.log.github.map((g) => [g.path, g.authorization === `Bearer ${fake.requestToken}`, g.accept]);
  out.exchanges = fake.log.exchanges.map((e) => [e.contentType, e.body.replace(fake.jwt, "<jwt>")]);
  out.issued = fake.issued.length;
} finally {
  proxy.kill("SIGTERM");
  out.exit = await proxy.exited;
  await stderr.ended;
  out.stderr = stderr.lines.map((l) => l.replace(/127\.0\.0\.1:\d+/, "127.0.0.1:<port>"));
  fake.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + "\n");
process.exit(0);
