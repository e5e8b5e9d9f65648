/**
 * Forwarding of an accepted `POST /v1/responses` (SPEC §1.5) with the project's HTTP/1.1
 * client, which writes `authorization: Bearer <key>` from locked memory as bytes (the key
 * never becomes a JS string; fetch() would leave header copies in freed memory).
 *
 * Request headers: all incoming ones, names lowercased, except `authorization` and `host`;
 * then `host` (upstream authority, default port omitted, IPv6 brackets kept) and
 * `authorization`. Framing headers belong to the client (it writes its own
 * `content-length` for the buffered body and drops `content-length`, `transfer-encoding`,
 * `connection`, `keep-alive`). `expect: 100-continue` is forwarded as RFC 9110 §10.1.1 asks of
 * a proxy; the client sends the body at once and skips an interim `100` from upstream.
 *
 * Response: status mirrored, headers except content-length, transfer-encoding, connection,
 * trailer, upgrade (our listener owns framing), body streamed, never decompressed, 3xx
 * mirrored (the client never follows redirects). Failure before a response head → empty 500
 * and `forwarding error: <message>` on stderr.
 */
import type { CredentialLease, CredentialSource } from "./credentials.ts";
import type { ClientRequest, DirectResponse, Http1DirectClient, RawFields, ResponseHandler } from "../http1/types.ts";
import { incomingHeaders } from "./incoming.ts";
import type { DumpExchange, Dumper } from "./dump.ts";
import type { IncomingRequest } from "./http-app.ts";

const DROP_RESPONSE = new Set(["content-length", "transfer-encoding", "connection", "trailer", "upgrade"]);

/** What a forwarder needs; built once at startup. */
export interface ForwardConfig {
  /** The push path (`requestDirect`) is used: no ReadableStream per response. */
  client: Http1DirectClient;
  /** `--upstream-url`, used verbatim (query included). */
  upstream: URL;
  /** `upstreamHostHeader(upstream)`, computed once (URL getters build a new string per call). */
  hostHeader: string;
  /** `[["host", hostHeader]]`, made on first use and shared by every request (never mutated). */
  hostFields?: Array<[string, string]>;
  /** `{ name: "authorization", value: authorization }`, made on first use and shared. */
  secretHeader?: { name: string; value: Uint8Array };
  /** `Bearer <key>` in locked memory (key mode). */
  authorization?: Uint8Array;
  /** Workload identity mode (SPEC §1.8): a leased, renewed credential per request instead of `authorization`. */
  credentials?: CredentialSource;
  dumper: Dumper | null;
  /** One stderr line per call, no secrets. */
  logError: (line: string) => void;
}

/** `host` header value for `url`: `url.host` already omits the scheme's default port and keeps IPv6 brackets. */
export function upstreamHostHeader(url: URL): string {
  return url.host;
}

/**
 * Forward one request and answer it through `req.respond`; never throws (failures become an
 * empty 500).
 *
 * The incoming field lines go to the client as bytes (`rawFields`): it writes them
 * lower-cased after `host`, skipping `host` (named in `headers`), `authorization` (the
 * secret's name) and the framing fields it owns. The upstream head is relayed as bytes too
 * (`rawHead`); strings are built only for a dump. Without `--dump-dir` no promise is made
 * per request (the client's callback path).
 */
export function forwardRequest(cfg: ForwardConfig, req: IncomingRequest): void {
  if (cfg.credentials) {
    forwardLeased(cfg, cfg.credentials, req);
    return;
  }
  if (cfg.dumper) {
    void forwardDumped(cfg, cfg.dumper, req);
    return;
  }
  cfg.client.send(upstreamRequest(cfg, req), new Forward(cfg, req, null));
}

/**
 * Workload identity: take a lease on the current access token (it may wait for a renewal
 * only when no valid token exists); none available → empty 502 at once, nothing forwarded or
 * dumped, `forwarding error: <unavailable>` on stderr (SPEC §1.8).
 */
function forwardLeased(cfg: ForwardConfig, source: CredentialSource, req: IncomingRequest): void {
  source.acquire((lease) => {
    if (!lease) {
      cfg.logError(`forwarding error: ${source.unavailable}`);
      req.respond({ status: 502, headers: [], body: null });
      return;
    }
    if (cfg.dumper) void forwardDumped(cfg, cfg.dumper, req, lease);
    else cfg.client.send(upstreamRequest(cfg, req, lease), new Forward(cfg, req, null, lease));
  });
}

async function forwardDumped(cfg: ForwardConfig, dumper: Dumper, req: IncomingRequest, lease?: CredentialLease): Promise<void> {
  const head = req.head;
  if (req.bodyStream) {
    // A streamed body goes upstream as it arrives; the request file is written once it has
    // been read (the listener bounds it at 128 MiB, SPEC §1.7).
    const exchange = dumper.open();
    const pieces: Uint8Array[] = [];
    let total = 0;
    const copy = new TransformStream<Uint8Array, Uint8Array>({
      transform(piece, out) {
        pieces.push(piece);
        total += piece.byteLength;
        out.enqueue(piece);
      },
      flush() {
        const body = new Uint8Array(total);
        let at = 0;
        for (const p of pieces) {
          body.set(p, at);
          at += p.byteLength;
        }
        pieces.length = 0;
        void exchange.request(head.method, head.target, incomingHeaders(head), body);
      },
    });
    cfg.client.send(upstreamRequest(cfg, req, lease, req.bodyStream.pipeThrough(copy)), new Forward(cfg, req, exchange, lease));
    return;
  }
  let dump: DumpExchange;
  try {
    dump = await dumper.request(head.method, head.target, incomingHeaders(head), req.body);
  } catch (e) {
    lease?.release();
    cfg.logError(`forwarding error: ${e instanceof Error ? e.message : String(e)}`);
    req.respond({ status: 500, headers: [], body: null });
    return;
  }
  cfg.client.send(upstreamRequest(cfg, req, lease), new Forward(cfg, req, dump, lease));
}

function upstreamRequest(
  cfg: ForwardConfig,
  req: IncomingRequest,
  lease?: CredentialLease,
  stream: ReadableStream<Uint8Array> | null = req.bodyStream,
): ClientRequest {
  const secretHeader = lease?.header ?? (cfg.secretHeader ??= { name: "authorization", value: cfg.authorization! });
  if (stream) {
    // A streamed body (large or chunked): content-length framing when the client gave a length.
    const framing = req.head.framing;
    return {
      url: cfg.upstream,
      method: "POST",
      headers: (cfg.hostFields ??= [["host", cfg.hostHeader]]),
      rawFields: req.head,
      secretHeader,
      body: stream,
      bodyLength: framing.kind === "length" ? framing.length : undefined,
      signal: req.signal,
    };
  }
  return {
    url: cfg.upstream,
    method: "POST",
    headers: (cfg.hostFields ??= [["host", cfg.hostHeader]]),
    rawFields: req.head,
    secretHeader,
    body: req.bodyBytes,
    bodyStart: req.bodyStart,
    bodyEnd: req.bodyEnd,
    signal: req.signal,
  };
}

/** The outcome of one upstream request, turned into the client's response. */
class Forward implements ResponseHandler {
  constructor(
    private readonly cfg: ForwardConfig,
    private readonly req: IncomingRequest,
    private readonly dump: DumpExchange | null,
    private readonly lease?: CredentialLease,
  ) {}

  onResponse(res: DirectResponse): void {
    if (this.lease) {
      // SPEC §1.8: a 401 is passed on and drops the token it answered.
      if (res.status === 401) this.lease.unauthorized();
      this.lease.release();
    }
    let headers: Array<[string, string]> | RawFields;
    if (res.rawHead) headers = res.rawHead;
    else {
      headers = [];
      for (const [name, value] of res.headers) if (!DROP_RESPONSE.has(name)) headers.push([name, value]);
    }
    const body = this.dump ? this.dump.wrap(res.status, res.headers, res.body) : res.body;
    this.req.respond({ status: res.status, headers, body, bodyLength: res.bodyLength, fromUpstream: true });
  }

  onError(e: Error): void {
    this.lease?.release();
    if (!this.req.signal.aborted) this.cfg.logError(`forwarding error: ${e instanceof Error ? e.message : String(e)}`);
    if (this.dump) {
      const respond = () => this.req.respond({ status: 500, headers: [], body: null });
      void this.dump.response(500, [], new Uint8Array(0)).then(respond, respond);
    } else this.req.respond({ status: 500, headers: [], body: null });
  }
}
