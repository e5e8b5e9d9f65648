/**
 * The admin API (SPEC-network §7) on `Bun.serve`:
 *
 * | request | answer |
 * | `GET /health` | 200 `ok`; after a failed reload (still 200): `ok\nlast reload failed: <msg>` |
 * | `GET /config` | 200 `{"network_proxy":{…}}` (configToJson, current mode); plus `"last_reload_error"` after a failed reload |
 * | `GET /patterns` | 200 `{"allowed":[…],"denied":[…]}` |
 * | `GET /blocked` | 200 `{"blocked":[…]}`, oldest first, drains the buffer |
 * | `POST /mode` | 200 `{"status":"ok","mode":…}`; > 8 KiB 413 `body too large`; empty 400 `missing body`; not JSON 400 `invalid json`; JSON without a valid mode 400 `mode must be "limited" or "full"` |
 * | `POST /reload` | 200 `{"status":"reloaded","allowed":{"added","removed"},"denied":{…}}`; failure 500 `reload failed` |
 * | `GET /metrics` | Prometheus text |
 * | anything else | 404 `not found` |
 *
 * (beyond) With `admin_token_file`, every request needs `Authorization: Bearer <token>`
 * (constant-time compare), else 401 `unauthorized`. Also beyond, against web pages driving
 * the API from a browser: a request carrying an `Origin` header, a `Sec-Fetch-Site` other
 * than `none`, or (on a loopback bind) a `Host` that is not a loopback name, gets 403
 * `forbidden` — a cross-site `POST /mode` is a CORS "simple request" that browsers send
 * without asking, a cross-site `<img src=…/blocked>` carries no `Origin` but drains the block
 * log, and DNS rebinding can point any name at 127.0.0.1.
 * Routing uses the path only; query strings are ignored.
 */
import { readFileSync, statSync } from "node:fs";
import * as z from "zod/mini";
import { configToJson } from "./config.ts";
import type { NetworkContextHandle } from "./context.ts";
import type { ReloadResult } from "./reload.ts";
import { isBrowserRequest } from "../net/browser-guard.ts";

/** Largest accepted admin request body (POST /mode), bytes. */
export const MAX_ADMIN_BODY = 8 * 1024;

/** Options of {@link startAdminServer}. */
export interface AdminOptions {
  /** Run a reload (POST /reload). */
  reload(): Promise<ReloadResult>;
  /** The last reload error, or null (GET /health, GET /config). */
  lastReloadError(): string | null;
  /** The admin bearer token, or null when none is configured. Read per request (reloads may change it). */
  token?(): Uint8Array | null;
}

/** A running admin server. */
export interface AdminServer {
  /** Bound port. */
  readonly port: number;
  /** Stop listening and close open connections. */
  stop(): Promise<void>;
}

const ModeBody = z.object({ mode: z.enum(["limited", "full"]) });

function text(status: number, body: string, headers?: Record<string, string>): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/**
 * Read the admin token file: its content with trailing whitespace removed.
 * @throws Error naming the file (never the token) when it can't be read or is empty
 */
export function readAdminToken(path: string, warn?: (msg: string) => void): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
    if (warn && (statSync(path).mode & 0o077) !== 0) warn(`admin token file ${path} is accessible by other users`);
  } catch (err) {
    throw new Error(`cannot read admin token file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d || raw[end - 1] === 0x20 || raw[end - 1] === 0x09)) end--;
  if (end === 0) throw new Error(`admin token file ${path} is empty`);
  const token = new Uint8Array(raw.subarray(0, end));
  raw.fill(0);
  return token;
}

/** Constant-time check of an `Authorization` header against the token. */
function authorized(header: string | null, token: Uint8Array): boolean {
  if (header === null || header.length < 7 || header.slice(0, 7).toLowerCase() !== "bearer ") return false;
  // Hash both sides so the compare is constant-time whatever the lengths. node:crypto is
  // required here, not at start: loading it costs ~15 ms of start-to-listening (bench).
  const { createHash, timingSafeEqual } = require("node:crypto") as typeof import("node:crypto");
  const given = createHash("sha256").update(header.slice(7).trim()).digest();
  const want = createHash("sha256").update(token).digest();
  return timingSafeEqual(given, want);
}

/** Read a request body up to `max` bytes; null when it is larger. */
async function readLimited(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > max) return null;
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    parts.push(value);
  }
  return Buffer.concat(parts);
}

/**
 * Start the admin API on `addr` (already parsed and clamped by the caller).
 * @throws when the address can't be bound (EADDRINUSE …)
 */
export function startAdminServer(
  ctx: NetworkContextHandle,
  addr: { host: string; port: number },
  opts: AdminOptions,
): AdminServer {
  const loopbackBind = addr.host === "::1" || addr.host.startsWith("127.");

  const route = async (req: Request, path: string): Promise<Response> => {
    const m = req.method;
    if (m === "GET") {
      switch (path) {
        case "/health": {
          const err = opts.lastReloadError();
          return text(200, err === null ? "ok" : `ok\nlast reload failed: ${err}`);
        }
        case "/config": {
          const body = configToJson(ctx.config()) as Record<string, unknown>;
          const err = opts.lastReloadError();
          return json(200, err === null ? body : { ...body, last_reload_error: err });
        }
        case "/patterns": {
          const p = ctx.config().policy;
          return json(200, { allowed: p.allowedDomains, denied: p.deniedDomains });
        }
        case "/blocked":
          return json(200, { blocked: ctx.recorder.drain() });
        case "/metrics":
          return new Response(ctx.metrics.render(), {
            headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
          });
      }
    } else if (m === "POST") {
      switch (path) {
        case "/mode": {
          const body = await readLimited(req, MAX_ADMIN_BODY);
          if (body === null) return text(413, "body too large");
          if (body.byteLength === 0) return text(400, "missing body");
          let parsed: unknown;
          try {
            parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
          } catch {
            return text(400, "invalid json");
          }
          // Well-formed JSON with a wrong or missing mode says what is accepted (issue 13:
          // `{"mode":"FULL"}` answered "invalid json", which sent people hunting for a syntax error).
          const r = ModeBody.safeParse(parsed);
          if (!r.success) return text(400, 'mode must be "limited" or "full"');
          ctx.setMode(r.data.mode);
          ctx.log.info("mode changed by admin API", { mode: r.data.mode });
          return json(200, { status: "ok", mode: r.data.mode });
        }
        case "/reload": {
          const r = await opts.reload();
          if (!r.ok) return text(500, "reload failed");
          return json(200, { status: "reloaded", ...r.diff });
        }
      }
    }
    return text(404, "not found");
  };

  const server = Bun.serve({
    hostname: addr.host,
    port: addr.port,
    // Small API; a slow client holding a socket open for long is not useful here.
    idleTimeout: 30,
    async fetch(req) {
      try {
        const h = req.headers;
        if (isBrowserRequest({ origin: h.get("origin"), secFetchSite: h.get("sec-fetch-site"), host: h.get("host") }, loopbackBind)) {
          return text(403, "forbidden");
        }
        const token = opts.token?.() ?? null;
        if (token !== null && !authorized(req.headers.get("authorization"), token)) {
          return text(401, "unauthorized", { "www-authenticate": "Bearer" });
        }
        const url = req.url;
        // req.url is absolute (`http://host/path?query`): take the path after the authority.
        const start = url.indexOf("/", url.indexOf("//") + 2);
        const q = url.indexOf("?", start);
        const path = start < 0 ? "/" : url.slice(start, q < 0 ? undefined : q);
        return await route(req, path);
      } catch (err) {
        ctx.log.error("admin API fault", { error: err instanceof Error ? err.message : String(err) });
        return text(500, "error");
      }
    },
    error() {
      return text(500, "error");
    },
  });

  return {
    port: server.port!,
    stop: () => server.stop(true),
  };
}
