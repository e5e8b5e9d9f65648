/**
 * `codex-network-proxy exec` with real commands (SPEC-network §11): the issue's "done when"
 * (git clone through limited mode, git push refused and summarised), exit statuses, signal
 * forwarding, the environment and the ephemeral CA the command sees.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startGitHttpsServer, type GitHttpsServer } from "../../helpers/git-https-server.ts";
import { baseEnv, installCliWrapper, run, tempDir } from "./helpers.ts";

// Real processes on a shared 2-core machine: bounded, but not by bun's 5 s default.
setDefaultTimeout(60_000);

const dir = tempDir();
const bin = installCliWrapper(dir.path);
let git: GitHttpsServer;

beforeAll(async () => {
  git = await startGitHttpsServer({ allowPush: true });
});
afterAll(async () => {
  await git.stop();
  dir[Symbol.dispose]();
});

/**
 * Environment of the user's shell: CODEX_HOME without a config, and SSL_CERT_FILE naming the
 * git server's CA as the "system roots" (the proxy verifies upstreams against it, as it
 * would against the distribution bundle for a public server).
 */
function userEnv(extra: Record<string, string> = {}) {
  return baseEnv(bin, dir.path, {
    CODEX_HOME: join(dir.path, "codex-home"),
    SSL_CERT_FILE: git.caFile,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "t",
    GIT_AUTHOR_EMAIL: "t@example.invalid",
    GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.invalid",
    ...extra,
  });
}

describe("done when: git through exec in limited mode", () => {
  test("clone works, push is refused by the proxy and summarised on stderr", async () => {
    const url = git.url();
    const clone = await run(["codex-network-proxy", "exec", "--mode", "limited", "--allow", "127.0.0.1", "--", "git", "clone", "-q", url, "work"], userEnv(), { cwd: dir.path });
    expect(clone).toEqual({ code: 0, out: "", err: "" });
    expect(readFileSync(join(dir.path, "work/README.md"), "utf8")).toBe("hello from repo\n");
    // The fetch negotiation went through (POST git-upload-pack), as a read.
    expect(git.requests.some((r) => r.method === "POST" && r.path === "/repo.git/git-upload-pack")).toBe(true);

    const work = join(dir.path, "work");
    writeFileSync(join(work, "new.txt"), "new\n");
    expect((await run(["git", "add", "new.txt"], userEnv(), { cwd: work })).code).toBe(0);
    expect((await run(["git", "commit", "-q", "-m", "new"], userEnv(), { cwd: work })).code).toBe(0);
    const push = await run(["codex-network-proxy", "exec", "--mode", "limited", "--allow", "127.0.0.1", "--", "git", "push", "-q", "origin", "main"], userEnv(), { cwd: work });
    expect(push.code).not.toBe(0);
    expect(push.err).toContain("The requested URL returned error: 403");
    expect(push.err).toEndWith(
      `blocked: 127.0.0.1:${git.port} method_not_allowed ×1 (hint: limited mode allows only GET, HEAD and OPTIONS without a body or Upgrade (got POST); full mode (network_proxy.mode = "full") permits it)\n`,
    );
    // The server saw the receive-pack advertisement (a GET) but never the push itself.
    expect(git.requests.some((r) => r.path.endsWith("/git-receive-pack"))).toBe(false);
  }, 60_000);
});

describe("exit status", () => {
  test.each([
    ["exit 0", 0],
    ["exit 7", 7],
    ["kill -TERM $$", 143],
    ["kill -KILL $$", 137],
  ])("sh -c '%s' → %d", async (script, status) => {
    const r = await run(["codex-network-proxy", "exec", "--", "sh", "-c", script], userEnv());
    expect({ code: r.code, err: r.err }).toEqual({ code: status, err: "" });
  });

  test("a command that does not exist: 127 and a message", async () => {
    const r = await run(["codex-network-proxy", "exec", "--", "no-such-command-cnp"], userEnv());
    expect(r).toEqual({ code: 127, out: "", err: "codex-network-proxy exec: cannot run no-such-command-cnp: command not found\n" });
  });

  test("no command is a usage error", async () => {
    const r = await run(["codex-network-proxy", "exec", "--mode", "limited"], userEnv());
    expect(r.code).toBe(2);
    expect(r.err).toStartWith("error: exec needs a command after --\n");
  });
});

test.each(["SIGTERM", "SIGINT"] as const)("%s sent to exec reaches the command, whose status is passed through", async (sig) => {
  // The command traps the signal and exits 42; it prints "ready" once the trap is set.
  const script = `trap 'exit 42' ${sig.slice(3)}; echo ready; while :; do sleep 0.05; done`;
  const p = Bun.spawn(["codex-network-proxy", "exec", "--", "sh", "-c", script], { env: userEnv(), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
  const reader = p.stdout.getReader();
  let seen = "";
  while (!seen.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  p.kill(sig);
  expect(await p.exited).toBe(42);
  clearTimeout(timer);
}, 25_000);

test("limited mode: the command sees the §11 variables and an ephemeral CA bundle that is gone afterwards", async () => {
  const script = [
    'printf "%s\\n" "$HTTPS_PROXY" "$ALL_PROXY" "NO_PROXY=[$NO_PROXY]" "$NODE_USE_ENV_PROXY" "$SSL_CERT_FILE" "$GIT_SSL_CAINFO"',
    'ls "$(dirname "$SSL_CERT_FILE")"',
    'tail -c 30 "$SSL_CERT_FILE"',
  ].join("; ");
  const r = await run(["codex-network-proxy", "exec", "--mode", "limited", "--", "sh", "-c", script], userEnv());
  expect(r.err).toBe("");
  expect(r.code).toBe(0);
  const lines = r.out.split("\n");
  expect(lines[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(lines[1]).toMatch(/^socks5h:\/\/127\.0\.0\.1:\d+$/);
  expect(lines[2]).toBe("NO_PROXY=[]");
  expect(lines[3]).toBe("1");
  const bundle = lines[4]!;
  expect(bundle).toEndWith("/ca-bundle.pem");
  expect(lines[5]).toBe(bundle);
  // The folder holds the certificate and the bundle, never a key.
  expect(lines.slice(6, 8)).toEqual(["ca-bundle.pem", "ca.pem"]);
  expect(r.out).toContain("-----END CERTIFICATE-----\n");
  expect(existsSync(bundle)).toBe(false);
});

test.skipIf(!Bun.which("script"))("on a terminal, SIGINT is left to the terminal (not delivered twice); SIGTERM is still forwarded", async () => {
  // `script` gives exec a pseudo-terminal as stdin. The command counts SIGINTs and reports them on SIGTERM.
  const inner = `trap 'n=$((n+1))' INT; trap 'echo "ints=$n"; exit 42' TERM; n=0; echo "ready $PPID"; while :; do sleep 0.05; done`;
  const cmd = `codex-network-proxy exec -- sh -c '${inner.replaceAll("'", `'\\''`)}'`;
  const p = Bun.spawn(["script", "-qec", cmd, "/dev/null"], { env: userEnv(), stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const reader = p.stdout.getReader();
  let seen = "";
  const until = async (re: RegExp) => {
    while (!re.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    return re.exec(seen);
  };
  const ready = await until(/ready (\d+)/);
  const execPid = Number(ready![1]);
  process.kill(execPid, "SIGINT"); // to exec alone: a terminal would also have sent it to the command
  process.kill(execPid, "SIGTERM");
  expect((await until(/ints=\d+/))![0]).toBe("ints=0");
  expect(await p.exited).toBe(42);
  clearTimeout(timer);
});
