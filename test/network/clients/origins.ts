/**
 * Local origins for the client tests, all on 127.0.0.1 port 0 with a throwaway test CA:
 * a plain HTTP origin and one HTTPS origin that serves `GET /hello`, a PEP 503 simple index
 * with one wheel (`demo-pkg` 1.0), and an npm registry with one package (`demo-pkg` 1.0.0).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTestPki } from "../../responses/tls-fixture.ts";

export interface Origins {
  httpPort: number;
  httpsPort: number;
  /** PEM of the CA behind the HTTPS origin. */
  caPem: string;
  /** Requests seen by either origin: `METHOD path`. */
  seen: string[];
  stop(): Promise<void>;
}

/** Build `demo_pkg-1.0-py3-none-any.whl` (a zip made by Python's zipfile) in `dir`. */
function buildWheel(dir: string): Uint8Array {
  const file = join(dir, "demo_pkg-1.0-py3-none-any.whl");
  const py = [
    "import sys, zipfile",
    "z = zipfile.ZipFile(sys.argv[1], 'w')",
    "z.writestr('demo_pkg/__init__.py', 'VALUE = 1\\n')",
    "z.writestr('demo_pkg-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: demo-pkg\\nVersion: 1.0\\n')",
    "z.writestr('demo_pkg-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')",
    "z.writestr('demo_pkg-1.0.dist-info/RECORD', '')",
    "z.close()",
  ].join("\n");
  const r = Bun.spawnSync(["python3", "-c", py, file]);
  if (r.exitCode !== 0) throw new Error(`building the wheel failed: ${r.stderr.toString()}`);
  return readFileSync(file);
}

/** Build the npm tarball `package/package.json` + `package/index.js` in `dir`. */
function buildTarball(dir: string): Uint8Array {
  const pkg = join(dir, "package");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "demo-pkg", version: "1.0.0", main: "index.js" }));
  writeFileSync(join(pkg, "index.js"), "module.exports = 'demo';\n");
  const r = Bun.spawnSync(["tar", "czf", "demo-pkg-1.0.0.tgz", "package"], { cwd: dir });
  if (r.exitCode !== 0) throw new Error(`building the tarball failed: ${r.stderr.toString()}`);
  return readFileSync(join(dir, "demo-pkg-1.0.0.tgz"));
}

/** Start both origins; `dir` is a scratch folder for the built artefacts. */
export function startOrigins(dir: string): Origins {
  // Its own CA name: the proxy trusts it next to the git server's test CA.
  const pki = createTestPki(["localhost"], "client-test origins CA");
  const wheel = buildWheel(dir);
  const tgz = buildTarball(dir);
  const seen: string[] = [];
  const wheelSha = createHash("sha256").update(wheel).digest("hex");
  const tgzSha1 = createHash("sha1").update(tgz).digest("hex");
  const tgzIntegrity = "sha512-" + createHash("sha512").update(tgz).digest("base64");

  const https = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: pki.certPem, key: pki.keyPem },
    fetch(req) {
      const url = new URL(req.url);
      seen.push(`${req.method} ${url.pathname}`);
      const base = `https://${url.host}`;
      switch (url.pathname) {
        case "/hello":
          return new Response("hello over https\n");
        case "/simple/demo-pkg/":
          return new Response(
            `<!DOCTYPE html><html><body><a href="/files/demo_pkg-1.0-py3-none-any.whl#sha256=${wheelSha}">demo_pkg-1.0-py3-none-any.whl</a></body></html>`,
            { headers: { "content-type": "text/html" } },
          );
        case "/files/demo_pkg-1.0-py3-none-any.whl":
          return new Response(wheel, { headers: { "content-type": "application/octet-stream" } });
        case "/demo-pkg":
          return Response.json({
            name: "demo-pkg",
            "dist-tags": { latest: "1.0.0" },
            versions: {
              "1.0.0": {
                name: "demo-pkg",
                version: "1.0.0",
                main: "index.js",
                dist: { tarball: `${base}/demo-pkg/-/demo-pkg-1.0.0.tgz`, shasum: tgzSha1, integrity: tgzIntegrity },
              },
            },
          });
        case "/demo-pkg/-/demo-pkg-1.0.0.tgz":
          return new Response(tgz, { headers: { "content-type": "application/octet-stream" } });
        default:
          return new Response("not found\n", { status: 404 });
      }
    },
  });
  const http = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      return new Response("hello over http\n");
    },
  });
  return {
    httpPort: http.port!,
    httpsPort: https.port!,
    caPem: pki.caPem,
    seen,
    stop: async () => {
      await Promise.all([https.stop(true), http.stop(true)]);
    },
  };
}
