/**
 * What the origin sees of a request forwarded by the MITM, on the wire (SPEC-network §6, RFC
 * 9112 §3.2/§6): the decrypted request-target's path and query byte-exact, and a large
 * content-length body still framed by content-length (not chunked). Real HTTP proxy listener
 * (CONNECT in limited mode → MITM), a raw TLS client inside the tunnel, a raw TLS origin.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { startHttpProxyListener } from "../../../src/network/http/listener.ts";
import type { Ca } from "../../../src/network/mitm/ca.ts";
import type { MitmEngineHandle } from "../../../src/network/mitm/engine.ts";
import { within } from "../../helpers/within.ts";
import { startRawUpstream, type RawUpstream } from "../../helpers/raw-upstream.ts";
import { connectThrough, startMitmContext, type MitmSetup } from "../../helpers/mitm.ts";
import { selfSignedCert } from "../../helpers/pki.ts";
import { removeTempDirs } from "../../helpers/temp.ts";

afterAll(removeTempDirs);

let t: MitmSetup["t"];
let ca: Ca;
let engine: MitmEngineHandle;
let origin: RawUpstream;
let listener: Awaited<ReturnType<typeof startHttpProxyListener>>;
let up: number;

beforeAll(async () => {
  const cert = selfSignedCert(["allowed.test"]);
  ({ t, ca, engine } = await startMitmContext(cert.cert));
  origin = startRawUpstream({ key: cert.key, cert: cert.cert });
  up = origin.port;
  listener = startHttpProxyListener(t.ctx, { host: "127.0.0.1", port: 0 });
});

afterAll(async () => {
  await listener?.stop();
  engine?.stop();
  origin?.stop();
});

/** A TLS connection to `allowed.test:<up>` through the listener's CONNECT; collects what it reads. */
async function tunnel(): Promise<{ tls: TLSSocket; until(pred: (got: string) => boolean): Promise<string> }> {
  const sock = await connectThrough(listener.port, "allowed.test", up);
  const tls = tlsConnect({ socket: sock, servername: "allowed.test", ca: ca.certPem });
  let got = "";
  let wake: (() => void) | null = null;
  let closed = false;
  tls.on("data", (b: Buffer) => {
    got += b.toString("latin1");
    wake?.();
  });
  tls.on("close", () => {
    closed = true;
    wake?.();
  });
  tls.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    tls.once("secureConnect", () => resolve());
    tls.once("error", reject);
  });
  return {
    tls,
    async until(pred) {
      // Each wait needs new bytes or the close, bounded by 10 s.
      while (!pred(got)) {
        if (closed) throw new Error(`tunnel closed; got ${JSON.stringify(got.slice(0, 300))}`);
        await within(new Promise<void>((r) => (wake = r)), 10_000, "tunnel data");
      }
      return got;
    },
  };
}

const RAW = "/a/../b/%2F;p=1/./c/%2e%2E/{x}|^`\\?q=%2F..&r=a/../b&s=\"'<>";

describe("MITM: request-target and body framing at the origin", () => {
  test("origin-form and absolute-form targets reach the origin byte-exact", async () => {
    const before = origin.requests.length;
    const c = await tunnel();
    try {
      c.tls.write(`GET ${RAW} HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n`);
      await c.until((g) => g.endsWith(`GET ${RAW} HTTP/1.1`));
      c.tls.write(`GET https://allowed.test:${up}/x/../y;z?w=%2F#frag HTTP/1.1\r\nHost: allowed.test:${up}\r\n\r\n`);
      await c.until((g) => g.endsWith("GET /x/../y;z?w=%2F HTTP/1.1"));
      expect(origin.requests.slice(before).map((r) => r.requestLine)).toEqual([
        `GET ${RAW} HTTP/1.1`,
        "GET /x/../y;z?w=%2F HTTP/1.1",
      ]);
    } finally {
      c.tls.destroy();
    }
  });

  test("a 3 MiB content-length upload arrives with content-length (not chunked), byte-exact", async () => {
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const c = await tunnel();
    // The mode is read per request inside the tunnel: full mode lets the upload through.
    t.ctx.setMode("full");
    try {
      const before = origin.requests.length;
      c.tls.write(`PUT /up/../load HTTP/1.1\r\nHost: allowed.test:${up}\r\ncontent-length: ${body.byteLength}\r\n\r\n`);
      c.tls.write(body);
      await c.until((g) => g.endsWith("PUT /up/../load HTTP/1.1"));
      const got = origin.requests[before]!;
      expect(got.framing).toBe("length");
      expect(got.headers.filter(([k]) => k === "content-length" || k === "transfer-encoding")).toEqual([
        ["content-length", String(body.byteLength)],
      ]);
      expect(got.body.equals(body)).toBe(true);
    } finally {
      t.ctx.setMode("limited");
      c.tls.destroy();
    }
  });
});
