/**
 * The HTTP/1.1 loop inside a decrypted MITM tunnel (SPEC-network §6).
 *
 * Per request, in order: CONNECT → 405; Host / absolute authority ≠ the tunnel target → 400
 * `host mismatch`; the policy again (`ctx.evaluate`, protocol `https`: local/private re-check
 * and the method rule of the current mode); in limited mode a read method carrying a body or
 * asking for Upgrade is a write channel → 403 `method_not_allowed`; else forward to
 * `https://host[:port≠443]/path?query` over the tunnel's pinned addresses with the project
 * HTTP/1.1 client, and stream the response back with our own framing and backpressure.
 * Requests on one connection are handled one at a time, in order (pipelined bytes wait).
 */
import { createBodyDecoder, type BodyDecoder } from "../../http1/body-reader.ts";
import { Cancellation } from "../../http1/cancellation.ts";
import { WriteQueue, type WritableSocketLike } from "../../net/write-queue.ts";
import { blockResponseBytes, textResponseBytes } from "../http/block-response.ts";
import { headerValue, parseRequestHead, type RequestHead } from "../http/head-parser.ts";
import { expectsContinue } from "../http/headers.ts";
import { pipeResponse, type PipeSink } from "../http/response-pipe.ts";
import type { UpstreamClients } from "../http/upstream-clients.ts";
import type { NetworkContext } from "../types.ts";
import {
  authorityMatches,
  carriesBody,
  chooseFraming,
  endToEndHeaders,
  parseAuthority,
  requestPath,
  responseHeadBytes,
} from "./http-message.ts";
import { createRequestBody, type RequestBody } from "./request-body.ts";
import { isGitFetch } from "../git-fetch.ts";

/** The parts of the network context the MITM uses. */
export type MitmContext = Pick<NetworkContext, "config" | "evaluate" | "recordBlock" | "log" | "metrics">;

/** The decrypted side of the tunnel, as the loop sees it. */
export interface InnerTransport extends WritableSocketLike {
  /** Bytes taken (may be fewer than given: queue the rest), or -1 when closed. */
  write(data: Uint8Array): number;
  /** Close after everything written so far is flushed. */
  end(): void;
  /** Stop / restart delivering client bytes (backpressure towards the client). */
  pause(): void;
  resume(): void;
}

/** Events the transport feeds into the loop. */
export interface InnerSession {
  data(chunk: Uint8Array): void;
  drain(): void;
  close(): void;
}

/** The tunnel a session serves. */
export interface MitmTarget {
  host: string;
  port: number;
  addresses: string[];
}

/** Read methods of limited mode (SPEC-network §3.3 step 7). */
const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** Pipelined bytes buffered while a request is in flight before we stop reading. */
const MAX_PIPELINED = 64 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/** Start the loop for one decrypted connection. `client` is the downstream `ip:port` (or null). */
export function createInnerHttpSession(
  deps: { ctx: MitmContext; clients: UpstreamClients },
  target: MitmTarget,
  clientAddr: string | null,
  transport: InnerTransport,
): InnerSession {
  const { ctx } = deps;
  let buf: Uint8Array | null = null;
  let scanFrom = 0;
  let busy = false;
  let closed = false;
  let paused = false;
  /** The body still being read from the client (null once complete). */
  let body: { decoder: BodyDecoder; sink: RequestBody } | null = null;
  /** The current request's body sink, complete or not. */
  let current: RequestBody | null = null;
  /** Request-body content bytes of the current request (metrics). */
  let reqBodyLen = 0;
  /** Cancels the current upstream request (and its body) when the client connection closes. */
  let abort: Cancellation | null = null;
  let drained: PromiseWithResolvers<void> | null = null;
  let endWhenDrained = false;
  const out = new WriteQueue(transport, undefined, () => {
    const d = drained;
    drained = null;
    d?.resolve();
    if (endWhenDrained) transport.end();
  });

  const append = (chunk: Uint8Array) => {
    if (!buf || buf.byteLength === 0) {
      buf = chunk; // Bun hands every data callback a fresh buffer: keep it without copying.
      return;
    }
    const joined = new Uint8Array(buf.byteLength + chunk.byteLength);
    joined.set(buf, 0);
    joined.set(chunk, buf.byteLength);
    buf = joined;
  };

  /** Read the client only while the body sink wants more and pipelined bytes stay bounded. */
  const updatePause = () => {
    const p = body ? body.sink.full : buf !== null && buf.byteLength > MAX_PIPELINED;
    if (p === paused || closed) return;
    paused = p;
    if (p) transport.pause();
    else transport.resume();
  };

  /** Close gracefully: after the queued answer bytes reach the socket. */
  const finish = () => {
    if (closed) return;
    closed = true;
    if (out.size > 0) endWhenDrained = true;
    else transport.end();
  };

  /** The decrypted side as a response-pipe sink; `signal` is the current request's cancellation. */
  const sink = (signal: Cancellation): PipeSink => ({
    write: (bytes) => out.write(bytes),
    queued: () => (closed ? 0 : out.size),
    drained: () => {
      if (closed || out.size === 0) return Promise.resolve();
      drained ??= Promise.withResolvers<void>();
      return drained.promise;
    },
    signal,
  });

  /** Write our own short answer; close unless the request is finished and kept alive. */
  const answer = (bytes: Uint8Array, keepAlive: boolean) => {
    out.write(bytes);
    if (keepAlive) next();
    else finish();
  };

  /** Feed bytes to the current request body; bytes past its end are pipelined requests. */
  const feedBody = (chunk: Uint8Array) => {
    const b = body!;
    let used: number;
    try {
      used = b.decoder.push(chunk, (c) => {
        reqBodyLen += c.byteLength;
        b.sink.push(c);
      });
    } catch {
      // Malformed chunked framing from the client: the stream is unusable.
      b.sink.fail(new Error("invalid request body framing"));
      body = null;
      finish();
      return;
    }
    if (b.decoder.done) {
      b.sink.end();
      body = null;
      if (used < chunk.byteLength) append(chunk.subarray(used));
    }
    updatePause();
  };

  const pump = () => {
    while (!busy && !closed && buf && buf.byteLength > 0) {
      const r = parseRequestHead(buf, undefined, scanFrom);
      if (r.kind === "incomplete") {
        scanFrom = r.resumeAt;
        return;
      }
      if (r.kind === "error") {
        answer(textResponseBytes(r.status, r.message, true), false);
        return;
      }
      const rest = buf.subarray(r.headLength);
      buf = null;
      scanFrom = 0;
      busy = true;
      const head = r.head;
      if (carriesBody(head)) {
        current = createRequestBody(head.framing);
        body = { decoder: createBodyDecoder(head.framing), sink: current };
        current.onWant(updatePause);
      }
      if (rest.byteLength > 0) {
        if (body) feedBody(rest);
        else append(rest);
      }
      void handle(head).catch((e: unknown) => {
        ctx.log.error("mitm internal error", { host: target.host, error: (e as Error).message });
        finish();
      });
    }
    updatePause();
  };

  /** The request is complete and answered: take the next one. */
  const next = () => {
    busy = false;
    body = null;
    current = null;
    reqBodyLen = 0;
    abort = null;
    pump();
  };

  const handle = async (head: RequestHead) => {
    const hasBody = carriesBody(head);
    // Blocked requests with a body close the connection rather than read and discard it.
    const reuse = head.keepAlive && !hasBody;
    if (head.method === "CONNECT") {
      return answer(textResponseBytes(405, "CONNECT not supported inside MITM", true), false);
    }
    const path = requestPath(head, target);
    if (path === null) return answer(textResponseBytes(400, "invalid request target", true), false);
    if (path === "mismatch") return answer(textResponseBytes(400, "host mismatch", true), false);
    const hostField = headerValue(head.headers, "host");
    if (hostField === undefined && head.version === "HTTP/1.1") {
      return answer(textResponseBytes(400, "missing host", true), false);
    }
    if (hostField !== undefined) {
      const a = parseAuthority(hostField);
      if (!a || !authorityMatches(a, target)) return answer(textResponseBytes(400, "host mismatch", true), false);
    }
    const gitFetch = isGitFetch(head.method, path, head.headers);
    const req = { protocol: "https" as const, host: target.host, port: target.port, method: head.method, client: clientAddr, gitFetch };
    const verdict = await ctx.evaluate(req);
    if (closed) return;
    if (verdict.action === "error") return answer(textResponseBytes(502, "mitm upstream error", !reuse), reuse);
    const details = { host: verdict.host, port: target.port, method: head.method, protocol: "https", hint: "", json: false };
    if (verdict.action === "deny") return answer(blockResponseBytes(verdict.reason, { ...details, close: !reuse }), reuse);
    const upgrade = headerValue(head.headers, "upgrade") !== undefined;
    if (ctx.config().mode === "limited" && !gitFetch && (hasBody || upgrade || !READ_METHODS.has(head.method))) {
      ctx.recordBlock(req, "method_not_allowed");
      return answer(blockResponseBytes("method_not_allowed", { ...details, close: !reuse }), reuse);
    }
    if (hasBody && expectsContinue(head.headers)) {
      // RFC 9110 §10.1.1: we answer the expectation ourselves (curl otherwise waits a second
      // before sending a large body) and do not forward it.
      out.write(CONTINUE);
    }
    await forward(head, path);
  };

  const forward = async (head: RequestHead, path: string) => {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    // The URL names the origin only; the path and query go upstream byte-exact as the client
    // sent them (`target`: no dot-segment removal or percent-encoding, RFC 9112 §3.2).
    const url = new URL(`https://${host}${target.port === 443 ? "" : `:${target.port}`}/`);
    const hash = path.indexOf("#");
    const rawTarget = hash < 0 ? path : path.slice(0, hash);
    const headers = endToEndHeaders(head.headers).filter(([k]) => k.length !== 6 || k.toLowerCase() !== "expect");
    if (headerValue(headers, "host") === undefined) headers.unshift(["host", url.host]);
    abort = new Cancellation();
    let reqBody: Uint8Array | ReadableStream<Uint8Array> | null = null;
    if (current) reqBody = await current.body();
    if (closed) return;
    // A streamed Content-Length body keeps its framing upstream (some origins refuse chunked).
    const bodyLength = reqBody instanceof ReadableStream && head.framing.kind === "length" ? head.framing.length : undefined;
    let res;
    try {
      const cfg = ctx.config();
      res = await deps.clients.get(cfg).requestDirect({
        url,
        target: rawTarget,
        method: head.method,
        headers,
        body: reqBody,
        bodyLength,
        // The pinned, policy-checked addresses (§3.4) — unless allow_upstream_proxy sends the
        // request through HTTPS_PROXY, which then resolves the name (as the HTTP listener does).
        connectTo: cfg.allowUpstreamProxy ? undefined : target.addresses,
        servername: target.host,
        signal: abort,
      });
    } catch (e) {
      if (closed) return;
      ctx.log.warn("mitm upstream error", { host: target.host, port: target.port, error: (e as Error).message });
      return answer(textResponseBytes(502, "mitm upstream error", true), false);
    }
    if (closed) {
      res.body.cancel();
      return;
    }
    const framing = chooseFraming(head.method, res.status, res.headers, head.version);
    const keepAlive = head.keepAlive && framing !== "close" && !body;
    const headBytes = responseHeadBytes(res.status, res.reason, res.headers, framing, keepAlive, head.version);
    // The head leaves with the body bytes that came with it (one TLS record, one syscall), or
    // alone at once when none did (a quiet SSE stream still shows its status).
    const r = await pipeResponse(sink(abort), headBytes, res.body, framing);
    ctx.metrics.bytes(reqBodyLen, r.bytes);
    if (r.end === "client-closed" || closed) return;
    if (r.end instanceof Error) {
      ctx.log.warn("mitm upstream body error", { host: target.host, error: r.end.message });
      // Nothing sent yet: a clean 502. Otherwise the client must see a truncated message.
      if (!r.headWritten) return answer(textResponseBytes(502, "mitm upstream error", true), false);
      return finish();
    }
    const bodyLen = r.bytes;
    const cfg = ctx.config().mitm;
    if (cfg.inspect) {
      ctx.log.info("mitm inspect", {
        host: target.host,
        method: head.method,
        path: path.split("?", 1)[0],
        status: res.status,
        body_len: bodyLen,
        truncated: bodyLen > cfg.maxBodyBytes,
      });
    }
    if (keepAlive) next();
    else finish();
  };

  return {
    data(chunk) {
      if (closed) return;
      if (body) feedBody(chunk);
      else {
        append(chunk);
        pump();
      }
    },
    drain() {
      out.drain();
    },
    close() {
      // Idempotent: `finish()` may already have marked us closed; still cancel in-flight work.
      closed = true;
      endWhenDrained = false;
      out.discard();
      abort?.abort();
      body?.sink.fail(new Error("client closed the connection"));
      body = null;
      const d = drained;
      drained = null;
      d?.resolve();
    },
  };
}
