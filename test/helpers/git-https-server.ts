/**
 * A local git smart-HTTP server over TLS for tests: `git http-backend` run as CGI behind a
 * `Bun.serve` HTTPS listener on 127.0.0.1 port 0, with a throwaway test CA.
 *
 * const git = await startGitHttpsServer({ repos: ["repo"], allowPush: false });
 * git.url("repo")      // https://127.0.0.1:<port>/repo.git
 * git.caFile           // PEM of the CA that signed the server certificate (for GIT_SSL_CAINFO)
 * git.requests         // every request received: method, path (no query), query, headers
 * await git.stop();    // closes the listener and removes the temp folder
 *
 * Each repo is a bare repository with one commit on `main` holding `README.md` (content
 * `hello from <name>\n`). With `allowPush: false` (default) every request for the
 * `git-receive-pack` service (the `info/refs?service=git-receive-pack` advertisement and the
 * `POST …/git-receive-pack`) is answered 403 `push refused` by this server; with `true`,
 * `http.receivepack` is enabled in each repo and pushes land.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestPki } from "../responses/tls-fixture.ts";

/** One request as the server saw it (header names lowercase). */
export interface GitRequest {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
}

export interface GitHttpsServerOptions {
  /** Repository names to create (`<name>.git`); default `["repo"]`. */
  repos?: string[];
  /** Let `git push` land (default false: receive-pack answered 403 `push refused`). */
  allowPush?: boolean;
}

export interface GitHttpsServer {
  readonly port: number;
  /** `https://127.0.0.1:<port>/<name>.git` */
  url(name?: string): string;
  /** PEM text of the CA that signed the server certificate. */
  readonly caPem: string;
  /** Path of a file holding `caPem`. */
  readonly caFile: string;
  /** Folder holding the bare repositories (`<root>/<name>.git`). */
  readonly root: string;
  readonly requests: GitRequest[];
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: "test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
  HOME: tmpdir(),
};

async function git(args: string[], cwd: string): Promise<void> {
  const p = Bun.spawn(["git", ...args], { cwd, env: { ...GIT_ENV, PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`git ${args.join(" ")} failed (${code}): ${err}`);
}

async function createRepo(root: string, name: string, allowPush: boolean): Promise<void> {
  const work = join(root, `.work-${name}`);
  await git(["init", "-q", "-b", "main", work], root);
  writeFileSync(join(work, "README.md"), `hello from ${name}\n`);
  await git(["add", "README.md"], work);
  await git(["commit", "-q", "-m", "initial"], work);
  await git(["clone", "-q", "--bare", work, join(root, `${name}.git`)], root);
  rmSync(work, { recursive: true, force: true });
  if (allowPush) await git(["config", "http.receivepack", "true"], join(root, `${name}.git`));
}

/** Split a CGI answer into status, headers and body (RFC 3875 §6). */
function cgiResponse(out: Uint8Array): Response {
  let end = -1;
  let sep = 0;
  for (let i = 0; i + 1 < out.length; i++) {
    if (out[i] === 10 && out[i + 1] === 10) { end = i; sep = 2; break; }
    if (out[i] === 13 && out[i + 1] === 10 && out[i + 2] === 13 && out[i + 3] === 10) { end = i; sep = 4; break; }
  }
  if (end < 0) return new Response("bad CGI output", { status: 500 });
  const headers = new Headers();
  let status = 200;
  for (const line of new TextDecoder().decode(out.subarray(0, end)).split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else headers.append(name, value);
  }
  return new Response(out.subarray(end + sep), { status, headers });
}

/** Start the server; see the module comment. Throws when git or a repo cannot be set up. */
export async function startGitHttpsServer(opts: GitHttpsServerOptions = {}): Promise<GitHttpsServer> {
  const root = mkdtempSync(join(tmpdir(), "git-https-"));
  const allowPush = opts.allowPush ?? false;
  for (const name of opts.repos ?? ["repo"]) await createRepo(root, name, allowPush);
  const pki = createTestPki();
  const caFile = join(root, "ca.pem");
  writeFileSync(caFile, pki.caPem);
  const requests: GitRequest[] = [];

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: pki.certPem, key: pki.keyPem },
    async fetch(req) {
      const url = new URL(req.url);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      requests.push({ method: req.method, path: url.pathname, query: url.search.slice(1), headers });
      const receivePack = url.pathname.endsWith("/git-receive-pack") || url.searchParams.get("service") === "git-receive-pack";
      if (receivePack && !allowPush) return new Response("push refused\n", { status: 403 });
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : new Uint8Array(await req.arrayBuffer());
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: "1",
        GIT_CONFIG_NOSYSTEM: "1",
        HOME: root,
        REQUEST_METHOD: req.method,
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REMOTE_ADDR: "127.0.0.1",
        REMOTE_USER: "test",
        CONTENT_TYPE: req.headers.get("content-type") ?? "",
        SERVER_PROTOCOL: "HTTP/1.1",
      };
      if (body) env.CONTENT_LENGTH = String(body.length);
      const enc = req.headers.get("content-encoding");
      if (enc) env.HTTP_CONTENT_ENCODING = enc;
      const proto = req.headers.get("git-protocol");
      if (proto) env.GIT_PROTOCOL = proto;
      const cgi = Bun.spawn(["git", "http-backend"], { env, stdin: body ?? "ignore", stdout: "pipe", stderr: "ignore" });
      const out = new Uint8Array(await new Response(cgi.stdout).arrayBuffer());
      await cgi.exited;
      return cgiResponse(out);
    },
  });

  const port = server.port!;
  const stop = async () => {
    await server.stop(true);
    rmSync(root, { recursive: true, force: true });
  };
  return {
    port,
    url: (name = "repo") => `https://127.0.0.1:${port}/${name}.git`,
    caPem: pki.caPem,
    caFile,
    root,
    requests,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
