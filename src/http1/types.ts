/**
 * Contract of the project's HTTP/1.1 client (src/http1/client.ts). It exists because the
 * responses proxy must write the `Authorization` header from locked memory as bytes
 * (fetch() leaves copies of header strings in freed memory), and because the network proxy
 * must dial addresses its policy already checked. RFC 9112 framing; strict and bounded.
 */

/**
 * The part of AbortSignal the client uses. An AbortSignal satisfies it; hot paths may pass a
 * `Cancellation` (cancellation.ts), which costs no EventTarget per request.
 */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/**
 * Header field lines as byte ranges of a buffer (no string per field): `fields` holds 4
 * numbers per line: name start, name end, value start, value end (value without OWS).
 */
export interface RawFields {
  bytes: Uint8Array;
  fields: number[];
}

/** One request to an origin. */
export interface ClientRequest {
  /**
   * Absolute `http:` or `https:` URL: scheme, host, port and routing. The request-target is
   * `pathname + search` exactly as in `url.href`, unless `target` is given.
   */
  url: URL;
  /**
   * Origin-form request-target written verbatim instead of `url.pathname + url.search`
   * (RFC 9112 §3.2.1): a forward proxy must pass on the client's path and query byte-exact,
   * without the URL parser's dot-segment removal or percent-encoding. It must start with `/`,
   * or be `*` with method OPTIONS (asterisk-form, §3.2.4), and hold visible ASCII only (no
   * CTL, no space); otherwise the request rejects with a TypeError before any dial. Sent to an
   * HTTP proxy it becomes absolute-form `scheme://authority` + target (for `*`: just
   * `scheme://authority`, §3.2.4).
   */
  target?: string;
  method: string;
  /**
   * Header fields written verbatim, in order. The caller supplies `host` and everything
   * else; the client owns framing: it drops any `content-length`, `transfer-encoding`,
   * `connection` and `keep-alive` given here and writes its own (`content-length` for a
   * byte body, `transfer-encoding: chunked` for a stream, `content-length: 0` for a
   * body-less POST/PUT/PATCH; no `connection` field: HTTP/1.1 is persistent by default).
   * Names and values are validated (RFC 9110 token / field-value); a bad one throws a
   * TypeError naming the field, never its value.
   */
  headers: Array<[string, string]>;
  /**
   * More header fields as bytes (e.g. a listener's incoming field lines, forwarded without
   * turning them into strings), written after `headers` as `name: value` with the name
   * lowercased. Skipped: a field named like one in `headers` or like `secretHeader`, and the
   * framing fields the client owns (see `headers`). Names and values are validated as for
   * `headers` (a bad one throws a TypeError naming no value).
   */
  rawFields?: RawFields;
  /**
   * A header whose value must never exist as a JS string (the API key). Its bytes are
   * copied into the request-head buffer, which is zeroed as soon as the socket took it,
   * including any part queued for backpressure.
   */
  secretHeader?: { name: string; value: Uint8Array };
  /**
   * More secret fields (the network proxy's MITM hook credentials, SPEC-network §10), each
   * written as `<name>: <prefix><value bytes>` with the same zeroing as `secretHeader`; fields
   * of `headers` and `rawFields` with one of their names are dropped (never duplicated).
   */
  secretHeaders?: ReadonlyArray<{ name: string; prefix?: string; value: Uint8Array }>;
  /**
   * The response carries a secret (a token endpoint's answer): every socket chunk of the
   * response is zeroed once it has been parsed and its pieces delivered, and so is a head
   * accumulation buffer. The consumer must copy what it keeps inside `data()`/`range()` (and
   * attach in `onResponse` on the `send` path; pieces that arrive before it attaches are held
   * as copies).
   */
  secretResponse?: boolean;
  /** Body bytes (content-length framing), a stream (chunked framing, or `bodyLength`), or none. */
  body?: Uint8Array | ReadableStream<Uint8Array> | null;
  /**
   * With a byte body: send only `body[bodyStart..bodyEnd)` (defaults 0 and its length). Spares
   * the caller a subarray view: the first view of a fresh socket chunk costs JavaScriptCore an
   * ArrayBuffer object. Out of range → TypeError before any dial.
   */
  bodyStart?: number;
  bodyEnd?: number;
  /**
   * Length in bytes of a ReadableStream body: the client writes `content-length: <bodyLength>`
   * instead of chunked framing (RFC 9112 §6.2) and streams the body unframed. A stream that
   * yields more bytes, or ends with fewer, fails the request with UpstreamError kind
   * "aborted" (a rejection before the response head, else an error of the response body) and
   * closes the connection; the extra bytes are never written. With a byte body it must equal
   * its length, with no body it must be 0; anything else (or a negative / non-integer value)
   * rejects with a TypeError before any dial.
   */
  bodyLength?: number;
  /** Connect to these addresses (in order) instead of resolving `url.hostname` (network proxy pinning). */
  connectTo?: string[];
  /** TLS server name for SNI and certificate verification; default `url.hostname`. */
  servername?: string;
  /**
   * Aborting before the response rejects; aborting later errors the body stream and closes the
   * connection. An AbortSignal, or any AbortLike (e.g. the lighter `Cancellation`).
   */
  signal?: AbortSignal | AbortLike;
}

/**
 * A response whose head has been parsed; the body streams. Interim responses (100, 102, 103)
 * are skipped; a 101, a transfer-encoding other than exactly `chunked`, or conflicting
 * content-length values reject with UpstreamError kind "protocol".
 */
export interface ClientResponse {
  status: number;
  reason: string;
  /** Header fields as received, names lowercased, in order (repeated fields kept separate). */
  headers: Array<[string, string]>;
  /** Decoded framing (de-chunked), content bytes untouched (never decompressed). Empty for HEAD/1xx/204/304. */
  body: ReadableStream<Uint8Array>;
}

/** Options of a client (one per process part; it owns the keep-alive pool). */
export interface ClientOptions {
  /**
   * Extra trusted CA certificates (PEM), in addition to the system roots. Default: read
   * from `NODE_EXTRA_CA_CERTS` and `SSL_CERT_FILE` when set (unreadable files are skipped;
   * `loadExtraCaFromEnv` in tls-trust.ts reports them, for callers that want to log).
   */
  extraCa?: string[];
  /**
   * Environment for `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (upper or lower case). `null`
   * disables proxy use. https targets are tunnelled with CONNECT; http targets are sent in
   * absolute-form to the proxy. The default (`process.env`) is read on every request; an
   * object given here is a snapshot: the proxy choice per scheme + authority is made once.
   */
  proxyEnv?: Record<string, string | undefined> | null;
  /** Idle keep-alive connections kept per origin (default 16). */
  maxIdlePerOrigin?: number;
}

/** The client: `request()` and `close()` (closes pooled connections). */
export interface Http1Client {
  request(req: ClientRequest): Promise<ClientResponse>;
  close(): void;
}

/**
 * Push consumer of a response body (the lighter internal path, see
 * {@link Http1DirectClient.requestDirect}): no ReadableStream, no promise per chunk.
 */
export interface BodyConsumer {
  /** A decoded piece of content: a subarray of a socket chunk that is never reused, so it may be kept. */
  data(piece: Uint8Array): void;
  /**
   * Optional: a decoded piece as `bytes[start..end)` instead of a view (called instead of
   * `data` when present). For consumers that copy: the first view of a fresh socket chunk
   * costs JavaScriptCore an ArrayBuffer. `bytes` is never reused, so it may be kept.
   */
  range?(bytes: Uint8Array, start: number, end: number): void;
  /** Every piece of one socket read was delivered: the moment to write batched output. */
  flush(): void;
  /** The body is complete. */
  end(): void;
  /** The body failed (upstream closed early, bad framing, aborted); no further calls follow. */
  error(err: Error): void;
}

/** The body of a {@link DirectResponse}: attach a consumer once; pause/resume for backpressure. */
export interface BodySource {
  /**
   * Attach the consumer (once). Pieces that arrived before are delivered at once, in order,
   * followed by `flush()` and, when the body already ended, `end()` / `error()`.
   */
  attach(consumer: BodyConsumer): void;
  /** Stop reading the connection until `resume()` (the consumer is behind). */
  pause(): void;
  resume(): void;
  /** Abandon the body: the connection is closed, no further consumer calls. */
  cancel(): void;
}

/** A response whose body is pushed to a {@link BodyConsumer} instead of a ReadableStream. */
export interface DirectResponse {
  status: number;
  reason: string;
  /** As in ClientResponse (may be built on first access). */
  readonly headers: Array<[string, string]>;
  body: BodySource;
  /** The head's field lines as bytes (names as received), to relay them without strings. */
  readonly rawHead?: RawFields;
  /** Length of the body when the upstream framed it with content-length (the decoded body has exactly this length). */
  readonly bodyLength?: number;
}

/** Receiver of one request's outcome on the callback path ({@link Http1DirectClient.send}). */
export interface ResponseHandler {
  /** The response head arrived (called from the socket's data event; attach to the body at once or soon). */
  onResponse(res: DirectResponse): void;
  /** The request failed before a response head (an UpstreamError, or a TypeError for bad input). */
  onError(err: Error): void;
}

/**
 * A client that also offers the push path. `requestDirect` behaves exactly like `request`
 * (same framing, errors, pooling, secret handling) except that the body is a BodySource;
 * `request` is built on it. Used by the responses proxy's hot path.
 */
export interface Http1DirectClient extends Http1Client {
  requestDirect(req: ClientRequest): Promise<DirectResponse>;
  /**
   * `requestDirect` without promises: exactly one of the handler's methods is called once,
   * never synchronously for bad input (a microtask later), possibly synchronously for an
   * already aborted signal or a pooled connection found closed. The lightest path, for the
   * responses proxy's per-request hot path.
   */
  send(req: ClientRequest, handler: ResponseHandler): void;
}
