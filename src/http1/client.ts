/**
 * The project's HTTP/1.1 client (contract: ./types.ts). Requests are written as bytes over
 * `Bun.connect` so a secret header goes from its locked page into one head buffer that is
 * zeroed once the socket took it (SPEC §1.3); responses stream chunk by chunk (SPEC §1.5).
 *
 * Routing per request: `connectTo` → dial those addresses, never a proxy; otherwise the proxy
 * chosen from the proxy environment (proxy-env.ts): https targets through a CONNECT tunnel,
 * http targets in absolute-form to the proxy; otherwise `url.hostname`.
 * No timeouts: nothing here can cut a long, quiet SSE stream.
 */
import type { ClientOptions, ClientRequest, ClientResponse, DirectResponse, Http1DirectClient, ResponseHandler } from "./types.ts";
import { UpstreamError } from "./upstream-error.ts";
import { absoluteForm, buildRequestHead, checkOriginTarget, originForm, type RequestFraming } from "./client-request-head.ts";
import { proxyForUrl, type ProxyChoice } from "./proxy-env.ts";
import { buildTrustedCa, loadExtraCaFromEnv } from "./tls-trust.ts";
import { dial, type DialSpec, type Http1Connection } from "./connection.ts";
import { toClientResponse } from "./client-body-stream.ts";
import { runExchange, type ExchangeInput } from "./exchange.ts";
import { ConnectionPool } from "./pool.ts";

/** Test-only observation points (not part of the contract). */
export interface ClientTestHooks {
  /** Called with each request-head buffer right after it was zeroed. */
  onHeadZeroed?: (head: Uint8Array) => void;
  /** Called after each new connection is dialed (counts dials). */
  onDial?: (key: string) => void;
  /** Called when a connection stops (true) or resumes (false) reading for a slow consumer. */
  onFlow?: (paused: boolean) => void;
}

/**
 * Byte bodies up to this size are copied into the request-head buffer: one write (one send()
 * and one segment) instead of two; the merged buffer is zeroed after the write like the head.
 */
export const INLINE_BODY_MAX = 64 * 1024;

/** Methods whose body-less requests still announce `content-length: 0` (RFC 9110 §8.6). */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** What a request needs from its URL (read once per href). */
interface UrlParts {
  https: boolean;
  /** `url.hostname` as written (IPv6 in brackets), and without brackets (dial / SNI). */
  hostname: string;
  host: string;
  port: number;
  /** `protocol//host` (host with a non-default port). */
  origin: string;
  /** `pathname + search`: the origin-form request-target (RFC 9112 §3.2.1). */
  originTarget: string;
  /** Pool key of the last plain request (no connectTo / servername) and the proxy key it was made with. */
  key: string;
  keyProxy: string | null;
}

/** @throws TypeError for a non-http(s) URL or one without a host */
function parseUrlParts(url: URL): UrlParts {
  const protocol = url.protocol;
  const https = protocol === "https:";
  if (!https && protocol !== "http:") throw new TypeError(`unsupported URL scheme ${protocol}`);
  const hostname = url.hostname;
  const host = unbracket(hostname);
  if (host === "") throw new TypeError("URL has no host");
  const port = url.port === "" ? (https ? 443 : 80) : Number(url.port);
  return { https, hostname, host, port, origin: `${protocol}//${url.host}`, originTarget: originForm(url), key: "", keyProxy: null };
}

/**
 * The request's framing (RFC 9112 §6): `content-length` for bytes and for a stream with a
 * `bodyLength`, chunked for other streams, `content-length: 0` for a body-less POST/PUT/PATCH.
 * @param byteLength length of a byte body (of its `bodyStart..bodyEnd` range)
 * @throws TypeError when `bodyLength` is not a non-negative safe integer or contradicts the body
 */
function requestFraming(
  method: string,
  body: Uint8Array | ReadableStream<Uint8Array> | null,
  bodyLength: number | undefined,
  byteLength: number,
): RequestFraming {
  if (bodyLength !== undefined) {
    if (!Number.isSafeInteger(bodyLength) || bodyLength < 0) throw new TypeError("invalid bodyLength");
    if (body instanceof ReadableStream) return { kind: "length", length: bodyLength };
    if (bodyLength !== byteLength) throw new TypeError("bodyLength does not match the body");
  }
  if (body instanceof ReadableStream) return { kind: "chunked" };
  if (body) return { kind: "length", length: byteLength };
  return BODY_METHODS.has(method.toUpperCase()) ? { kind: "length", length: 0 } : { kind: "none" };
}

/**
 * Create a client that owns a keep-alive pool.
 * @param opts see ClientOptions (extra CAs, proxy environment, idle pool size)
 * @param hooks test-only observation points
 */
export function createHttp1Client(opts: ClientOptions = {}, hooks: ClientTestHooks = {}): Http1DirectClient {
  const pool = new ConnectionPool(opts.maxIdlePerOrigin ?? 16);
  const proxyEnv = opts.proxyEnv === undefined ? process.env : opts.proxyEnv;
  // process.env is read on every request (it may change); a caller's own object is a snapshot,
  // so its proxy choice per scheme + authority is computed once.
  const proxyCache = proxyEnv !== process.env ? new Map<string, ProxyChoice | null>() : null;
  const chooseProxy = (url: URL, origin: string): ProxyChoice | null => {
    if (!proxyCache) return proxyForUrl(url, proxyEnv);
    let p = proxyCache.get(origin);
    if (p === undefined) {
      p = proxyForUrl(url, proxyEnv);
      proxyCache.set(origin, p);
    }
    return p;
  };
  let ca: string[] | null = null;
  // Built on first https use, then shared by every connection (one TLS context in Bun).
  const trustedCa = () => (ca ??= buildTrustedCa(opts.extraCa ?? loadExtraCaFromEnv(process.env).pems));

  // Parsed pieces of each request URL, by href: URL getters are native calls that build a
  // new string each time, and a proxy sends every request to the same URL. Bounded.
  const urlParts = new Map<string, UrlParts>();
  const partsOf = (url: URL): UrlParts => {
    const href = url.href;
    let p = urlParts.get(href);
    if (p === undefined) {
      p = parseUrlParts(url);
      if (urlParts.size >= 256) urlParts.clear();
      urlParts.set(href, p);
    }
    return p;
  };

  /** Everything one request needs across attempts (computed once per request). */
  interface Prepared {
    req: ClientRequest;
    method: string;
    target: string;
    framing: RequestFraming;
    extra: Array<[string, string]> | undefined;
    body: Uint8Array | ReadableStream<Uint8Array> | null;
    /** A stream announced with a content-length is checked against it while it is written. */
    streamLength: number | undefined;
    inline: Uint8Array | undefined;
    /** The range of `inline` that is the body. */
    inlineStart: number;
    inlineEnd: number;
    key: string;
    u: UrlParts;
    proxy: ProxyChoice | null;
    servername: string;
    viaHttpProxy: boolean;
  }

  /** @throws TypeError for bad input, UpstreamError kind "proxy" for a bad proxy environment */
  function prepare(req: ClientRequest): Prepared {
    const url = req.url;
    const u = partsOf(url);
    const { https, host, port } = u;
    const method = req.method;
    if (req.target !== undefined) checkOriginTarget(req.target, method);

    let proxy: ProxyChoice | null = null;
    if (!req.connectTo) {
      try {
        proxy = chooseProxy(url, u.origin);
      } catch (e) {
        throw new UpstreamError("proxy", (e as Error).message);
      }
    }
    const viaHttpProxy = proxy !== null && !https;
    const servername = req.servername ?? host;
    let body = req.body ?? null;
    let start = 0;
    let end = body instanceof Uint8Array ? body.length : 0;
    if (body instanceof Uint8Array && (req.bodyStart !== undefined || req.bodyEnd !== undefined)) {
      start = req.bodyStart ?? 0;
      end = req.bodyEnd ?? body.length;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > body.length) {
        throw new TypeError("invalid bodyStart/bodyEnd");
      }
    }
    const framing = requestFraming(method, body, req.bodyLength, end - start);
    const extra: Array<[string, string]> | undefined =
      viaHttpProxy && proxy!.authorization ? [["proxy-authorization", proxy!.authorization]] : undefined;
    const target = viaHttpProxy ? absoluteForm(url, req.target) : (req.target ?? u.originTarget);
    const streamLength = body instanceof ReadableStream && framing.kind === "length" ? framing.length : undefined;
    const inline = body instanceof Uint8Array && end > start && end - start <= INLINE_BODY_MAX ? body : undefined;
    // Only a body too large to inline needs its own view.
    if (!inline && body instanceof Uint8Array && (start !== 0 || end !== body.length)) body = body.subarray(start, end);
    // Within one client the proxy (and its credentials) per target scheme is fixed, so the
    // proxy's host:port identifies it; the key never carries credentials.
    let key: string;
    if (req.connectTo === undefined && req.servername === undefined && u.keyProxy === (proxy?.key ?? "")) key = u.key;
    else {
      key = `${u.origin}:${port}|${req.connectTo?.join(",") ?? ""}|${servername}|${proxy?.key ?? ""}`;
      if (req.connectTo === undefined && req.servername === undefined) {
        // Remembered for the next request to this URL (the string is built once, not per request).
        u.key = key;
        u.keyProxy = proxy?.key ?? "";
      }
    }
    return { req, method, target, framing, extra, body, streamLength, inline, inlineStart: start, inlineEnd: end, key, u, proxy, servername, viaHttpProxy };
  }

  function dialSpec(p: Prepared): DialSpec {
    const { u, proxy, req } = p;
    return {
      hosts: p.viaHttpProxy ? [proxy!.host] : (req.connectTo ?? [u.host]),
      port: p.viaHttpProxy ? proxy!.port : u.port,
      tls: u.https ? { ca: trustedCa(), servername: p.servername } : null,
      tunnel:
        u.https && proxy
          ? { host: proxy.host, port: proxy.port, authority: `${u.hostname}:${u.port}`, authorization: proxy.authorization }
          : null,
      signal: req.signal,
    };
  }

  const release = (c: Http1Connection) => pool.release(c);

  /** The exchange input of one attempt; it carries the Prepared request for a replay. */
  interface AttemptInput extends ExchangeInput {
    prepared: Prepared;
    reused: boolean;
  }

  /**
   * A kept-alive connection the server closed while idle: replay once on a fresh connection,
   * but only when nothing of a response arrived and the body is replayable.
   */
  const replay = (input: ExchangeInput, err: Error, conn: Http1Connection): boolean => {
    const a = input as AttemptInput;
    if (!a.reused || !(err instanceof UpstreamError) || err.kind !== "closed" || conn.receivedAny) return false;
    if (a.prepared.body instanceof ReadableStream) return false;
    attempt(a.prepared, input.handler, false);
    return true;
  };

  /** One attempt: build the head (a fresh buffer: the last one was zeroed), take or dial a connection, run the exchange. */
  function attempt(p: Prepared, handler: ResponseHandler, mayReplay: boolean): void {
    let head: Uint8Array;
    try {
      // Throws TypeError on invalid input, before any dial.
      head = buildRequestHead({
        method: p.method,
        target: p.target,
        headers: p.req.headers,
        rawFields: p.req.rawFields,
        secretHeader: p.req.secretHeader,
        secretHeaders: p.req.secretHeaders,
        framing: p.framing,
        extra: p.extra,
        inlineBody: p.inline,
        inlineStart: p.inlineStart,
        inlineEnd: p.inlineEnd,
      });
    } catch (e) {
      failLater(handler, e as Error);
      return;
    }
    const conn = pool.acquire(p.key);
    if (conn) {
      run(p, handler, head, conn, mayReplay);
      return;
    }
    dial(p.key, dialSpec(p)).then(
      (c) => {
        hooks.onDial?.(p.key);
        if (hooks.onFlow) c.onFlow = hooks.onFlow;
        run(p, handler, head, c, false);
      },
      (e) => {
        head.fill(0);
        hooks.onHeadZeroed?.(head);
        handler.onError(e as Error);
      },
    );
  }

  function run(p: Prepared, handler: ResponseHandler, head: Uint8Array, conn: Http1Connection, reused: boolean): void {
    const input: AttemptInput = {
      method: p.method,
      head,
      body: p.inline ? null : p.body,
      bodyLength: p.streamLength,
      signal: p.req.signal,
      onHeadZeroed: hooks.onHeadZeroed,
      zeroReceived: p.req.secretResponse === true,
      handler,
      replay: reused ? replay : null,
      prepared: p,
      reused,
    };
    runExchange(conn, input, release);
  }

  /**
   * Input errors are reported from a microtask: a caller that answers a failure by starting
   * its next request (a listener serving pipelined requests) must not recurse without bound.
   */
  function failLater(handler: ResponseHandler, err: Error): void {
    queueMicrotask(() => handler.onError(err));
  }

  function send(req: ClientRequest, handler: ResponseHandler): void {
    let p: Prepared;
    try {
      p = prepare(req);
    } catch (e) {
      failLater(handler, e as Error);
      return;
    }
    attempt(p, handler, true);
  }

  function requestDirect(req: ClientRequest): Promise<DirectResponse> {
    const { promise, resolve, reject } = Promise.withResolvers<DirectResponse>();
    send(req, { onResponse: resolve, onError: reject });
    return promise;
  }

  return {
    send,
    requestDirect,
    request: (req: ClientRequest): Promise<ClientResponse> => requestDirect(req).then(toClientResponse),
    close: () => pool.close(),
  };
}
