import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { curl } from "../../helpers/network.ts";
import { splitResponse, startProxy } from "../../helpers/http-proxy.ts";
import { rawClient } from "../../helpers/raw-client.ts";
import { removeTempDirs, tempDir } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

const dir = tempDir("h5-unix-");
const sock = join(dir, "api.sock");
const link = join(dir, "link.sock");
const linkAllowed = join(dir, "allowed-link.sock");
const missing = join(dir, "nobody.sock");
const seen: Array<{ method: string; path: string; headers: Record<string, string>; body: string }> = [];
const unixConfig = (mode: "full" | "limited", list: string[] = [sock]) => ({
  mode,
  policy: { allowUnixSockets: list },
});

// The unix-socket server and its links exist only where the tests run (issue 14, row 8).
describe.skipIf(process.platform === "win32")("x-unix-socket", () => {
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    server = Bun.serve({
      unix: sock,
      async fetch(req) {
        const url = new URL(req.url);
        const body = await req.text();
        seen.push({ method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers), body });
        return new Response(`unix ${req.method} ${url.pathname}${url.search} ${body}`);
      },
    });
    symlinkSync(sock, link);
    symlinkSync(sock, linkAllowed);
  });
  afterAll(() => server?.stop(true));
  const proxy = startProxy(unixConfig("full", [sock, missing, linkAllowed]));
  afterAll(() => proxy.stop());

  test("allowed path: path+query forwarded over the socket, x-unix-socket and hop-by-hop fields removed", async () => {
    seen.length = 0;
    const r = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${sock}`, "-H", "Proxy-Authorization: Basic dTpw", "http://localhost/v1/info?x=1"]);
    expect([r.status, r.body]).toEqual([200, "unix GET /v1/info?x=1 "]);
    expect(seen[0]!.headers["x-unix-socket"]).toBeUndefined();
    expect(seen[0]!.headers["proxy-authorization"]).toBeUndefined();
    expect(seen[0]!.headers.host).toBe("localhost");
  });

  test("POST body in full mode, chunked upload re-framed", async () => {
    const r = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${sock}`, "--data-binary", "payload", "http://localhost/post"]);
    expect(r.body).toBe("unix POST /post payload");
    const c = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${sock}`, "-H", "Transfer-Encoding: chunked", "--data-binary", "chunky", "http://localhost/c"]);
    expect(c.body).toBe("unix POST /c chunky");
  });

  test("symlinks resolve on both sides: a link to an allowed socket, the target of an allowed link", async () => {
    const viaLink = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${link}`, "http://localhost/l"]);
    expect([viaLink.status, viaLink.body]).toEqual([200, "unix GET /l "]);
    const p = startProxy(unixConfig("full", [linkAllowed]));
    try {
      const real = await curl(["-x", p.url, "-H", `x-unix-socket: ${sock}`, "http://localhost/r"]);
      expect([real.status, real.body]).toEqual([200, "unix GET /r "]);
    } finally {
      await p.stop();
    }
  });

  test("a path not in allow_unix_sockets, or relative → 403 JSON not_allowed with host unix-socket", async () => {
    for (const path of [join(dir, "other.sock"), "api.sock"]) {
      const r = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${path}`, "http://localhost/"]);
      const body = JSON.parse(r.body);
      expect([r.status, r.headers["x-proxy-error"], body.status, body.host, body.reason, body.protocol]).toEqual([
        403, "blocked-by-allowlist", "blocked", "unix-socket", "not_allowed", "unix-socket",
      ]);
      expect(body.hint).toBe(
        "add the socket's absolute path to network_proxy.policy.allow_unix_sockets; this is a policy decision: do not retry through another route",
      );
    }
    expect(proxy.ctx.recorder.drain().map((e) => [e.host, e.reason, e.protocol])).toEqual([
      ["unix-socket", "not_allowed", "unix-socket"],
      ["unix-socket", "not_allowed", "unix-socket"],
    ]);
  });

  test("allowed but nothing listening → 502 unix socket proxy failed", async () => {
    const r = await curl(["-x", proxy.url, "-H", `x-unix-socket: ${missing}`, "http://localhost/"]);
    expect([r.status, r.body]).toEqual([502, "unix socket proxy failed"]);
  });

  test("a value that is not UTF-8 → 400 invalid x-unix-socket header", async () => {
    const c = await rawClient(proxy.port);
    c.write(new Uint8Array([...Buffer.from("GET http://localhost/ HTTP/1.1\r\nx-unix-socket: /tmp/"), 0xff, 0xfe, ...Buffer.from("\r\n\r\n")]));
    const res = splitResponse(await c.closed());
    expect([res.status, res.body]).toEqual([400, "invalid x-unix-socket header"]);
  });

  test("limited mode: POST → 403 JSON method_not_allowed (host unix-socket); GET passes", async () => {
    const p = startProxy(unixConfig("limited"));
    try {
      const post = await curl(["-x", p.url, "-H", `x-unix-socket: ${sock}`, "-d", "x", "http://localhost/"]);
      const body = JSON.parse(post.body);
      expect([post.status, post.headers["x-proxy-error"], body.host, body.reason, body.method]).toEqual([
        403, "blocked-by-method-policy", "unix-socket", "method_not_allowed", "POST",
      ]);
      const get = await curl(["-x", p.url, "-H", `x-unix-socket: ${sock}`, "http://localhost/ok"]);
      expect([get.status, get.body]).toEqual([200, "unix GET /ok "]);
    } finally {
      await p.stop();
    }
  });

  test("disabled → 503 proxy disabled (before the method and path checks)", async () => {
    const p = startProxy(unixConfig("limited", []));
    try {
      p.ctx.setConfig({ ...p.ctx.loadedConfig(), enabled: false });
      const r = await curl(["-x", p.url, "-H", `x-unix-socket: ${sock}`, "-d", "x", "http://localhost/"]);
      expect([r.status, r.body]).toEqual([503, "proxy disabled"]);
    } finally {
      await p.stop();
    }
  });
});

describe.skipIf(process.platform === "win32")("x-unix-socket: the socket connected is the socket checked (issue 8 row 3)", () => {
  test("flipping a symlink between an allowed and an outside socket never reaches the outside one", async () => {
    // Its own allowed socket: the first describe's server is stopped by now.
    const insideSock = join(dir, "inside.sock");
    const inside = Bun.serve({ unix: insideSock, fetch: () => new Response("unix inside") });
    const outsideSock = join(dir, "outside.sock");
    let outsideHits = 0;
    const outside = Bun.serve({
      unix: outsideSock,
      fetch() {
        outsideHits++;
        return new Response("outside");
      },
    });
    const flip = join(dir, "flip.sock");
    symlinkSync(insideSock, flip);
    const proxy = startProxy(unixConfig("full", [insideSock]));
    // A child process swaps the link atomically (rename over it) between both targets, as fast as it can.
    const flipper = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const fs=require("fs");const [a,b,l]=process.argv.slice(1);console.log("ready");for(let i=0;i<5e6;i++){const t=l+".t";try{fs.unlinkSync(t)}catch{};fs.symlinkSync(i%2?a:b,t);fs.renameSync(t,l)}`,
        insideSock,
        outsideSock,
        flip,
      ],
      { stdout: "pipe", stderr: "ignore" },
    );
    try {
      await flipper.stdout.getReader().read(); // "ready": the flips are running
      const statuses = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        const r = await fetch(`http://localhost/r${i}`, { proxy: proxy.url, headers: { "x-unix-socket": flip } });
        const body = await r.text();
        const key = `${r.status} ${body.startsWith("unix") ? "allowed" : body === "outside" ? "OUTSIDE" : "other"}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
      expect(statuses.get("200 allowed") ?? 0).toBeGreaterThan(0);
      expect(outsideHits).toBe(0);
      expect([...statuses.keys()].filter((k) => k.includes("OUTSIDE"))).toEqual([]);
    } finally {
      flipper.kill();
      await flipper.exited;
      await proxy.stop();
      outside.stop(true);
      inside.stop(true);
    }
  });
});
