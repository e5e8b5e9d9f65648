/**
 * Git's smart-HTTP fetch counted as a read in limited mode (git-fetch.ts): the classifier,
 * and through a real proxy over plain HTTP (curl), a fetch forwarded while a push and
 * look-alikes are refused.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { isGitFetch } from "../../../src/network/git-fetch.ts";
import { curl, startFakeHttpUpstream, startTestProxy } from "../../helpers/network.ts";

// Real processes on a shared 2-core machine: bounded, but not by bun's 5 s default.
setDefaultTimeout(60_000);

const CT = ["Content-Type", "application/x-git-upload-pack-request"] as const;

describe("isGitFetch", () => {
  test.each([
    ["POST", "/repo.git/git-upload-pack", [CT], true],
    ["POST", "/a/b/repo/git-upload-pack?x=1", [["content-type", "Application/X-Git-Upload-Pack-Request; charset=x"]], true],
    ["GET", "/repo.git/git-upload-pack", [CT], false],
    ["PUT", "/repo.git/git-upload-pack", [CT], false],
    ["POST", "/repo.git/git-receive-pack", [["Content-Type", "application/x-git-receive-pack-request"]], false],
    ["POST", "/repo.git/git-receive-pack", [CT], false],
    ["POST", "/repo.git/git-upload-pack/more", [CT], false],
    ["POST", "/upload?to=/git-upload-pack", [CT], false],
    ["POST", "/repo.git/git-upload-pack", [], false],
    ["POST", "/repo.git/git-upload-pack", [["Content-Type", "application/json"]], false],
    ["POST", "/repo.git/git-upload-pack", [CT, CT], false],
    ["POST", "/repo.git/git-upload-pack", [CT, ["X-HTTP-Method-Override", "DELETE"]], false],
  ] as const)("%s %s %j → %p", (method, path, headers, want) => {
    expect(isGitFetch(method, path, headers as unknown as Array<[string, string]>)).toBe(want);
  });
});

test("limited mode over plain HTTP: upload-pack POST forwarded, receive-pack POST refused", async () => {
  const upstream = startFakeHttpUpstream(() => new Response("pack"));
  try {
    await using proxy = await startTestProxy({ config: { mode: "limited", policy: { allowedDomains: ["127.0.0.1"] } } });
    const base = `http://127.0.0.1:${upstream.port}/repo.git`;
    const proxyArg = ["--proxy", `http://127.0.0.1:${proxy.ports.http}`];
    const fetch = await curl([...proxyArg, "-H", "Content-Type: application/x-git-upload-pack-request", "--data-binary", "0000", `${base}/git-upload-pack`]);
    expect({ status: fetch.status, body: fetch.body }).toEqual({ status: 200, body: "pack" });
    const push = await curl([...proxyArg, "-H", "Content-Type: application/x-git-receive-pack-request", "--data-binary", "0000", `${base}/git-receive-pack`]);
    expect({ status: push.status, error: push.headers["x-proxy-error"] }).toEqual({ status: 403, error: "blocked-by-method-policy" });
    const other = await curl([...proxyArg, "-H", "Content-Type: text/plain", "--data-binary", "0000", `${base}/git-upload-pack`]);
    expect(other.status).toBe(403);
    expect(upstream.seen.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual(["POST /repo.git/git-upload-pack"]);
  } finally {
    await upstream.stop();
  }
});
