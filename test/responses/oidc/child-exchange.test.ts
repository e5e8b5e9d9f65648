/**
 * The token-exchange child (SPEC §1.8 "beyond"): real children (`bun src/responses/main.ts`
 * in the child role) against fake GitHub / OpenAI https servers on 127.0.0.1 (test CA), and
 * scripted children for the parent's reading of broken or stuck ones.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadLibc } from "../../../src/hardening/libc.ts";
import { childEnvironment, createChildExchanger, type ChildExchangerOptions } from "../../../src/responses/oidc/child-exchanger.ts";
import { startFakeProxy } from "../../helpers/fake-proxy.ts";
import { BUN } from "../../helpers/responses.ts";
import { makeTestPki } from "../../helpers/pki.ts";
import { removeTempDirs, tempDir } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const libc = loadLibc();
const ACCESS = "urn:ietf:params:oauth:token-type:access_token";
const REQUEST_TOKEN = "req.tok-EN_1";

type Handler = (req: Request) => Response | Promise<Response>;

describe.skipIf(process.platform !== "linux" || !libc)("token exchange in a child process", () => {
  const pki = makeTestPki({ leafNames: ["localhost", "127.0.0.1"] });
  const dir = tempDir("oidc-child-");
  writeFileSync(join(dir, "ca.pem"), pki.caPem);
  let github: Handler = () => Response.json({ value: "jwt.sub.ject" });
  let openai: Handler = () => okToken();
  const seen: Array<{ path: string; authorization: string | null; body: string }> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    tls: { cert: pki.leaf.cert, key: pki.leaf.key },
    async fetch(req) {
      const u = new URL(req.url);
      seen.push({ path: u.pathname + u.search, authorization: req.headers.get("authorization"), body: await req.text() });
      return (u.pathname === "/gh" ? github : openai)(req);
    },
  });
  afterAll(() => {
    server.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  function okToken(over: Record<string, unknown> = {}) {
    return Response.json({
      access_token: "at-1.x~y+z/=",
      token_type: "Bearer",
      issued_token_type: ACCESS,
      expires_in: 600,
      expires_at: Math.floor(Date.now() / 1000) + 1800,
      ...over,
    });
  }
  const options = (over: Partial<ChildExchangerOptions> = {}): ChildExchangerOptions => ({
    libc: libc!,
    config: {
      audience: "aud",
      identityProviderId: "idp_1",
      serviceAccountId: "sa_1",
      requestUrl: new URL(`https://localhost:${server.port}/gh?x=1`),
    },
    requestAuthorization: new TextEncoder().encode(`Bearer ${REQUEST_TOKEN}`),
    tokenUrl: new URL(`https://localhost:${server.port}/oauth/token`),
    env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: join(dir, "ca.pem") },
    ...over,
  });
  const run = async (over: Partial<ChildExchangerOptions> = {}) => {
    const ex = createChildExchanger(options(over));
    try {
      const t = await ex.obtain();
      const out = { auth: new TextDecoder().decode(t.authorization), lifetimeS: Math.round((t.expiresAtMs - t.receivedAtMs) / 1000) };
      t.free();
      return out;
    } catch (e) {
      return (e as Error).message;
    }
  };
  /** A scripted child: `code` runs in Bun with fd 1 the result pipe. */
  const scripted = (code: string) => [BUN, "-e", code];
  const openFds = () => readdirSync("/proc/self/fd").length;

  test("the token arrives over the pipe; the request token reached GitHub; no descriptor leaks", async () => {
    seen.length = 0;
    github = () => Response.json({ value: "jwt.sub.ject" });
    openai = () => okToken();
    const before = openFds();
    expect(await run()).toEqual({ auth: "Bearer at-1.x~y+z/=", lifetimeS: 600 });
    expect(seen.map((s) => [s.path, s.authorization])).toEqual([
      ["/gh?x=1&audience=aud", `Bearer ${REQUEST_TOKEN}`],
      ["/oauth/token", null],
    ]);
    expect(JSON.parse(seen[1]!.body)).toMatchObject({ subject_token: "jwt.sub.ject", identity_provider_id: "idp_1" });
    expect(openFds()).toBe(before);
  }, 30_000);

  // A failure crosses the process boundary as its reason and status: the exact §1.8 message
  // (every message itself is covered in process by token-exchange.test.ts).
  test.each([
    ["GitHub 403", () => new Response("no", { status: 403 }), () => okToken(), "GitHub OIDC token request rejected (HTTP 403)"],
    ["GitHub empty value", () => Response.json({ value: "" }), () => okToken(), "workload identity source returned an invalid subject token"],
    ["OpenAI 401", () => Response.json({ value: "j" }), () => new Response("secret body", { status: 401 }), "OpenAI workload identity token request rejected (HTTP 401)"],
    ["OpenAI lifetime", () => Response.json({ value: "j" }), () => okToken({ expires_in: 3601 }), "OpenAI returned an invalid token lifetime"],
  ] as Array<[string, Handler, Handler, string]>)("%s", async (_name, gh, oa, message) => {
    github = gh;
    openai = oa;
    expect(await run()).toBe(message);
  }, 30_000);

  test("transport failures by step: GitHub unreachable, OpenAI past its bound (the child's own timer)", async () => {
    expect(await run({ config: { ...options().config, requestUrl: new URL("https://127.0.0.1:1/gh") } })).toBe("GitHub OIDC token request failed");
    github = () => Response.json({ value: "j" });
    let release = () => {};
    openai = () => new Promise<Response>((r) => (release = () => r(okToken())));
    expect(await run({ timeoutMs: 300 })).toBe("OpenAI workload identity token exchange failed");
    release();
  }, 30_000);

  test("a stuck child is killed at its step's bound and fails as that step", async () => {
    const hang = "setInterval(() => {}, 1000)";
    expect(await run({ command: scripted(hang), timeoutMs: 200, startGraceMs: 0 })).toBe("GitHub OIDC token request failed");
    const afterGithub = `require("fs").writeSync(1, Buffer.from("G")); ${hang}`;
    expect(await run({ command: scripted(afterGithub), timeoutMs: 200, startGraceMs: 5_000 })).toBe("OpenAI workload identity token exchange failed");
  }, 30_000);

  test("a child that breaks the protocol fails as its step, never as success", async () => {
    const frame = (bytes: string) => scripted(`require("fs").writeSync(1, Buffer.from(${JSON.stringify(bytes)}, "hex"))`);
    const head = (n: number) => {
      const b = Buffer.alloc(21);
      b[0] = 0x54;
      b.writeDoubleLE(Date.now(), 1);
      b.writeDoubleLE(Date.now() + 60_000, 9);
      b.writeUInt32LE(n, 17);
      return b.toString("hex");
    };
    const ok = Buffer.from("Bearer tok").toString("hex");
    expect(await run({ command: frame(head(10) + ok) })).toEqual({ auth: "Bearer tok", lifetimeS: 60 });
    expect(await run({ command: frame("47" + head(10) + ok) })).toEqual({ auth: "Bearer tok", lifetimeS: 60 });
    expect(await run({ command: frame("") })).toBe("GitHub OIDC token request failed");
    expect(await run({ command: frame("58") })).toBe("GitHub OIDC token request failed");
    expect(await run({ command: frame("47") })).toBe("OpenAI workload identity token exchange failed");
    expect(await run({ command: frame(head(10) + ok + "00") })).toBe("GitHub OIDC token request failed");
    expect(await run({ command: frame(head(10) + ok.slice(0, -2)) })).toBe("GitHub OIDC token request failed");
    expect(await run({ command: frame(head(10) + Buffer.from("Bearer t k").toString("hex")) })).toBe("GitHub OIDC token request failed");
    expect(await run({ command: frame(head(7) + Buffer.from("Bearer ").toString("hex")) })).toBe("GitHub OIDC token request failed");
    expect(await run({ command: frame("45" + "03" + Buffer.from("bad").toString("hex") + "0000") })).toBe("GitHub OIDC token request failed");
    const rejected = Buffer.from("openai-rejected").toString("hex");
    expect(await run({ command: frame("4745" + "0f" + rejected + "f401") })).toBe("OpenAI workload identity token request rejected (HTTP 500)");
  }, 60_000);

  test("the child gets the proxy and CA variables (HTTPS_PROXY is honoured there) and no other variable", async () => {
    const env = childEnvironment({
      HTTPS_PROXY: "http://127.0.0.1:1",
      NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"),
      PATH: "/bin",
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: "leftover",
      OPENAI_API_KEY: "sk-x",
      BUN_OPTIONS: "--preload x",
    });
    expect(env).toEqual({ HTTPS_PROXY: "http://127.0.0.1:1", NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"), PATH: "/bin" });
    github = () => Response.json({ value: "j" });
    openai = () => okToken();
    const proxy = startFakeProxy();
    try {
      expect(await run({ env: { ...env, HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` } })).toEqual({ auth: "Bearer at-1.x~y+z/=", lifetimeS: 600 });
      expect(proxy.heads).toEqual([`CONNECT localhost:${server.port} HTTP/1.1\r\nhost: localhost:${server.port}\r\n\r\n`]);
    } finally {
      proxy.stop();
    }
  }, 30_000);

  test("stop() kills a running child", async () => {
    const ex = createChildExchanger(options({ command: scripted("setInterval(() => {}, 1000)") }));
    const pending = ex.obtain().catch((e: Error) => e.message);
    ex.stop();
    expect(await pending).toBe("GitHub OIDC token request failed");
    expect(await ex.obtain().catch((e: Error) => e.message)).toBe("GitHub OIDC token request failed");
  }, 30_000);
});
