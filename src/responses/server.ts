/**
 * The responses proxy listener: routing (SPEC §1.4) over our HTTP/1.1 server, forwarding
 * (SPEC §1.5) for the one accepted route. Binds 127.0.0.1 only.
 */
import type { Http1DirectClient } from "../http1/types.ts";
import type { Logger } from "../log.ts";
import { logAccess, RESPONSES_ACCESS_EVENT } from "../access-log.ts";
import type { CredentialSource } from "./credentials.ts";
import type { Dumper } from "./dump.ts";
import { forwardRequest, upstreamHostHeader, type ForwardConfig } from "./forward.ts";
import type { ExchangeRecord, HttpServerBounds, HttpServerHandle, RouteDecision } from "./http-app.ts";
import { startHttpServer } from "./http-server.ts";
import type { IncomingHead } from "./incoming.ts";
import { nameIs } from "../http1/server-request-head.ts";
import { latin1 } from "../http1/latin1.ts";
import { isBrowserRequest, type BrowserSignals } from "../net/browser-guard.ts";

/**
 * The browser signals of a raw head (SPEC §1.4, beyond): `Origin`, `Sec-Fetch-Site`, `Host`
 * (first value of each), as strings only when present. Names are compared by length first.
 */
export function browserSignals(head: Pick<IncomingHead, "bytes" | "fields">): BrowserSignals {
  const out: BrowserSignals = { origin: null, secFetchSite: null, host: null };
  const { bytes, fields } = head;
  for (let i = 0; i < fields.length; i += 4) {
    const ns = fields[i]!;
    const ne = fields[i + 1]!;
    const n = ne - ns;
    if (n === 4 && out.host === null && nameIs(bytes, ns, ne, "host")) out.host = latin1(bytes, fields[i + 2]!, fields[i + 3]!);
    else if (n === 6 && out.origin === null && nameIs(bytes, ns, ne, "origin")) out.origin = latin1(bytes, fields[i + 2]!, fields[i + 3]!);
    else if (n === 14 && out.secFetchSite === null && nameIs(bytes, ns, ne, "sec-fetch-site")) {
      out.secFetchSite = latin1(bytes, fields[i + 2]!, fields[i + 3]!);
    }
  }
  return out;
}

/** Outcome of routing a request head. */
export type Route = "forward" | "shutdown" | "forbidden";

/**
 * SPEC §1.4, compared exactly and case-sensitively on the raw request-target:
 * `GET /shutdown` (only with `--http-shutdown`) → shutdown; `POST /v1/responses` → forward;
 * anything else (queries, trailing slash, other case, absolute-form, other methods,
 * upgrade attempts) → forbidden.
 */
export function routeRequest(head: Pick<IncomingHead, "method" | "target" | "upgrade">, httpShutdown: boolean): Route {
  if (head.upgrade) return "forbidden";
  if (httpShutdown && head.method === "GET" && head.target === "/shutdown") return "shutdown";
  if (head.method === "POST" && head.target === "/v1/responses") return "forward";
  return "forbidden";
}

/** Options of {@link startResponsesProxy}. */
export interface ResponsesProxyOptions {
  /** 0 = ephemeral. */
  port: number;
  httpShutdown: boolean;
  upstream: URL;
  /** `Bearer <key>` in locked memory (key mode). */
  authorization?: Uint8Array;
  /** Workload identity mode: renewed credentials instead of `authorization` (SPEC §1.8). */
  credentials?: CredentialSource;
  client: Http1DirectClient;
  dumper: Dumper | null;
  /** Called after the `GET /shutdown` response was handed to the socket. */
  onShutdown: () => void;
  /** One line to stderr. */
  logError: (line: string) => void;
  /** Receives one record per finished request (see {@link accessLogger}); absent: none measured. */
  onAccess?: (record: ExchangeRecord) => void;
  /** Listener bounds (SPEC-network §12); defaults when absent. Tests pass small values. */
  bounds?: HttpServerBounds;
}

/**
 * The access line writer of the responses proxy (src/access-log.ts): one line per request at
 * `info` with client, method, path without query, status, bytes each way, duration and the
 * upstream's time to first byte; never a header value. Null when `log` drops `info`
 * (`--log-level warn`), so nothing is measured.
 */
export function accessLogger(log: Logger): ((record: ExchangeRecord) => void) | null {
  if (!log.enabled("info")) return null;
  return (r) =>
    logAccess(log, {
      event: RESPONSES_ACCESS_EVENT,
      client: r.client,
      method: r.method,
      path: r.target,
      protocol: "http",
      status: r.status,
      bytesUp: r.bytesIn,
      bytesDown: r.bytesOut,
      durationMs: r.durationMs,
      upstreamTtfbMs: r.upstreamTtfbMs,
      outcome: r.outcome,
    });
}

/** Start listening on 127.0.0.1. @throws when the port cannot be bound. */
export function startResponsesProxy(opts: ResponsesProxyOptions): HttpServerHandle {
  const forward: ForwardConfig = {
    client: opts.client,
    upstream: opts.upstream,
    hostHeader: upstreamHostHeader(opts.upstream),
    authorization: opts.authorization,
    credentials: opts.credentials,
    dumper: opts.dumper,
    logError: opts.logError,
  };
  // Route decisions are constants: route() runs on every request.
  const HANDLE: RouteDecision = { kind: "handle" };
  const FORBIDDEN: RouteDecision = { kind: "respond", status: 403 };
  const SHUTDOWN: RouteDecision = { kind: "respond", status: 200, afterWrite: opts.onShutdown };
  return startHttpServer({
    hostname: "127.0.0.1",
    port: opts.port,
    bounds: opts.bounds,
    warn: opts.logError,
    app: {
      route(head) {
        // Browsers are refused before routing: no forward, no dump, no shutdown (SPEC §1.4).
        if (isBrowserRequest(browserSignals(head))) return FORBIDDEN;
        switch (routeRequest(head, opts.httpShutdown)) {
          case "forward":
            return HANDLE;
          case "shutdown":
            return SHUTDOWN;
          default:
            return FORBIDDEN;
        }
      },
      handle: (req) => forwardRequest(forward, req),
      onError: (message) => opts.logError(`forwarding error: ${message}`),
      onAccess: opts.onAccess,
    },
  });
}
