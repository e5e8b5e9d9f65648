/**
 * The responses proxy listener: routing (SPEC §1.4) over our HTTP/1.1 server, forwarding
 * (SPEC §1.5) for the one accepted route. Binds 127.0.0.1 only.
 */
import type { Http1DirectClient } from "../http1/types.ts";
import type { CredentialSource } from "./credentials.ts";
import type { Dumper } from "./dump.ts";
import { forwardRequest, upstreamHostHeader, type ForwardConfig } from "./forward.ts";
import { startHttpServer, type HttpServerHandle, type RouteDecision } from "./http-server.ts";
import type { IncomingHead } from "./incoming.ts";

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
    app: {
      route(head) {
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
    },
  });
}
