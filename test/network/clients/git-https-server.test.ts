import { expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGitHttpsServer } from "../../helpers/git-https-server.ts";

// Real processes on a shared 2-core machine: bounded, but not by bun's 5 s default.
setDefaultTimeout(60_000);

async function git(args: string[], cwd: string, caFile: string) {
  const p = Bun.spawn(["git", "-c", `http.sslCAInfo=${caFile}`, "-c", "user.name=t", "-c", "user.email=t@t", ...args], {
    cwd,
    env: { PATH: process.env.PATH!, HOME: cwd, GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  return { code, err };
}

test("git https server: clone works, push refused by default, push lands when allowed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "git-client-"));
  try {
    await using refusing = await startGitHttpsServer();
    const c = await git(["clone", "-q", refusing.url(), "a"], dir, refusing.caFile);
    expect(c).toEqual({ code: 0, err: "" });
    expect(readFileSync(join(dir, "a/README.md"), "utf8")).toBe("hello from repo\n");
    expect(refusing.requests[0]).toMatchObject({ method: "GET", path: "/repo.git/info/refs", query: "service=git-upload-pack" });
    expect(refusing.requests[0]!.headers["user-agent"]).toStartWith("git/");
    writeFileSync(join(dir, "a/x.txt"), "x\n");
    await git(["add", "x.txt"], join(dir, "a"), refusing.caFile);
    await git(["commit", "-q", "-m", "x"], join(dir, "a"), refusing.caFile);
    const p = await git(["push", "-q", "origin", "main"], join(dir, "a"), refusing.caFile);
    expect(p.code).not.toBe(0);
    expect(p.err).toContain("403");

    await using accepting = await startGitHttpsServer({ repos: ["other"], allowPush: true });
    expect((await git(["clone", "-q", accepting.url("other"), "b"], dir, accepting.caFile)).code).toBe(0);
    writeFileSync(join(dir, "b/y.txt"), "y\n");
    await git(["add", "y.txt"], join(dir, "b"), accepting.caFile);
    await git(["commit", "-q", "-m", "y"], join(dir, "b"), accepting.caFile);
    expect(await git(["push", "-q", "origin", "main"], join(dir, "b"), accepting.caFile)).toEqual({ code: 0, err: "" });
    expect(accepting.requests.some((r) => r.method === "POST" && r.path === "/other.git/git-receive-pack")).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
