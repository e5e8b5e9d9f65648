/**
 * `scripts/key-copies.ts --github-oidc`: how many plaintext copies of each workload identity
 * secret live in the compiled proxy's memory (SPEC §1.8 "beyond": each at most one; retired
 * access tokens none).
 *
 * The proxy's OpenAI URLs are fixed, so the run happens inside `unshare -n -m` with a
 * bind-mounted /etc/hosts mapping auth.openai.com and api.openai.com to 127.0.0.1 (the
 * script re-executes itself there); fakes for GitHub, the token endpoint and the Responses
 * upstream listen on 127.0.0.1:443 with a throwaway CA. The first access token lives 3 s, so
 * the proxy's timer renews it during the run; later tokens live an hour. Half the requests
 * go before the renewal, half after; then the memory is scanned for:
 *   - the GitHub request token (stdin), the current access token: figure ≤ 1 each;
 *   - every retired access token and the subject JWT: 0 expected.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeIdentity } from "../../test/helpers/fake-identity.ts";
import { privateNetworkAvailable, spawnInPrivateNetwork } from "../../test/helpers/netns.ts";
import { makeTestPki } from "../../test/helpers/pki.ts";
import { closeSync, openSync, readSync } from "node:fs";
import { countCopies, needles, scan } from "./mem-scan.ts";

/** `before` bytes preceding `address` in the process's memory, as Latin-1 (for --verbose). */
function readContext(pid: number, address: number, before: number): string {
  const fd = openSync(`/proc/${pid}/mem`, "r");
  const b = Buffer.alloc(before);
  try {
    readSync(fd, b, 0, before, address - before);
  } catch {
    return "";
  } finally {
    closeSync(fd);
  }
  return b.toString("latin1").replace(/[^\x20-\x7e]/g, ".");
}

export interface OidcRunOptions {
  requests: number;
  binary: string;
  concurrency: number;
  fullScan: boolean;
  /** Negative control: the request token also in the proxy's environment (must be found). */
  control: boolean;
  /** Print where each copy was found. */
  verbose: boolean;
}

const INSIDE = "KEY_COPIES_PRIVATE_NETWORK";

/** Run the measurement; re-executes this script inside a private network namespace first. */
export async function runGithubOidc(o: OidcRunOptions): Promise<number> {
  if (process.env[INSIDE] !== "1") {
    if (!privateNetworkAvailable()) throw new Error("--github-oidc needs root and `unshare -n -m` (private network and mount namespace)");
    const p = spawnInPrivateNetwork([process.execPath, ...process.argv.slice(1)], { ...process.env, [INSIDE]: "1" });
    const pipe = async (from: ReadableStream<Uint8Array>, to: NodeJS.WriteStream) => {
      for await (const chunk of from) to.write(chunk);
    };
    await Promise.all([pipe(p.stdout, process.stdout), pipe(p.stderr, process.stderr)]);
    return await p.exited;
  }

  const dir = mkdtempSync(join(tmpdir(), "key-copies-oidc-"));
  const pki = makeTestPki({ leafNames: ["localhost", "auth.openai.com", "api.openai.com", "127.0.0.1"] });
  writeFileSync(join(dir, "ca.pem"), pki.caPem);
  const fake = startFakeIdentity({ pki, port: 443, lifetime: (n) => (n === 1 ? 3 : 3600) });
  const proxy = Bun.spawn(
    [
      o.binary,
      "--github-oidc",
      "--github-oidc-request-url", "https://127.0.0.1/github/token?api-version=2.0",
      "--oidc-audience", "api://key-copies",
      "--identity-provider-id", "idp_keycopies",
      "--service-account-id", "sa_keycopies",
      // No access line per request: the scan counts token copies, and this stderr is shown.
      "--log-level", "warn",
    ],
    {
      stdin: "pipe",
      stdout: "ignore",
      stderr: "pipe",
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"),
        ...(o.control ? { KEY_COPIES_CONTROL: fake.requestToken } : {}),
      },
    },
  );
  proxy.stdin.write(fake.requestToken + "\n");
  await proxy.stdin.end();
  try {
    const reader = proxy.stderr.getReader();
    let head = "";
    while (!head.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`proxy exited before listening: ${head}`);
      head += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    void proxy.stderr.pipeTo(new WritableStream({ write: (c) => void process.stderr.write(c) })).catch(() => {});
    const m = head.match(/listening on 127\.0\.0\.1:(\d+)/);
    if (!m) throw new Error(`unexpected proxy output: ${head}`);
    const base = `http://127.0.0.1:${m[1]}`;

    let failed = 0;
    const send = async (count: number) => {
      let sent = 0;
      const worker = async () => {
        while (sent < count) {
          sent++;
          const res = await fetch(`${base}/v1/responses`, { method: "POST", body: '{"model":"m","input":"hello","stream":true}' });
          await res.arrayBuffer();
          if (res.status !== 200) failed++;
        }
      };
      await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(count, 1)) }, worker));
    };
    const firstHalf = Math.floor(o.requests / 2);
    await send(firstHalf);
    await fake.issuedCount(2); // the timer's renewal (the first token lives 3 s)
    await send(o.requests - firstHalf);
    if (failed) process.stderr.write(`warning: ${failed} requests did not get 200\n`);

    if (o.verbose) {
      const names: Array<[string, string]> = [["request token", fake.requestToken], ["subject JWT", fake.jwt], ...fake.issued.map((t, i): [string, string] => [`access token ${i + 1}`, t])];
      for (const [label, secret] of names) {
        for (const n of needles(secret)) {
          for (const h of scan(proxy.pid, n.bytes, o.fullScan)) {
            const context = readContext(proxy.pid, h.address, 48);
            process.stderr.write(`  ${label}: 0x${h.address.toString(16)} in ${h.region.perms} ${h.region.name || "[anon]"} size ${h.region.end - h.region.start}${n.enc === "utf16le" ? " as UTF-16" : ""} after ${JSON.stringify(context)}\n`);
          }
        }
      }
    }
    const current = fake.issued[fake.issued.length - 1]!;
    const retired = fake.issued.slice(0, -1);
    const figures = {
      request: countCopies(proxy.pid, fake.requestToken, o.fullScan),
      current: countCopies(proxy.pid, current, o.fullScan),
      retired: retired.reduce((n, t) => n + countCopies(proxy.pid, t, o.fullScan), 0),
      subject: countCopies(proxy.pid, fake.jwt, o.fullScan),
    };
    const control = scan(proxy.pid, Buffer.from("https://api.openai.com/v1/responses", "latin1"), o.fullScan).length;
    process.stderr.write(`scanner self-check: upstream URL found ${control} times\n`);
    if (control === 0) throw new Error("scanner self-check failed: could not find the upstream URL in the proxy's memory");
    process.stdout.write(
      `renewals: ${fake.issued.length - 1}\n` +
        `request token copies after ${o.requests} requests: ${figures.request}\n` +
        `current access token copies after ${o.requests} requests: ${figures.current}\n` +
        `retired access token copies (${retired.length} tokens): ${figures.retired}\n` +
        `subject token (JWT) copies: ${figures.subject}\n`,
    );
    return 0;
  } finally {
    proxy.kill("SIGTERM");
    await proxy.exited;
    fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
