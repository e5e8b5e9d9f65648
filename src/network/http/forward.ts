/**
 * Forwarding one request (SPEC-network §4 plain HTTP, §5 SOCKS5 hand-off, §6 inside the
 * MITM): resolve the target (absolute-form or origin-form + Host on the plain listener; the
 * pinned, checked target elsewhere), ask the policy (host, then method and the write-channel
 * fact, §3.3) and render a deny as the front end's block answer, then send the request with
 * the project HTTP/1.1 client to the addresses the policy checked (§3.4) and stream the
 * response back.
 *
 * The request-target goes upstream as the client sent its path and query, byte-exact (RFC
 * 9112 §3.2: no dot-segment removal, no percent-encoding; `HttpTarget.path`).
 * Framing towards the client: `content-length` passed through when the upstream gave one,
 * else chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 clients. Hop-by-hop
 * fields are removed both ways. A request body keeps the client's framing upstream:
 * content-length bodies up to 1 MiB are collected (replayable), larger ones stream with their
 * `content-length` (`bodyLength`); chunked bodies stream chunked. The response body is
 * pushed (response-pipe.ts): head and a small body leave in one write.
 */
import type { RequestHead } from "../../http1/server-request-head.ts";
import type { DirectResponse } from "../../http1/types.ts";
import { UpstreamError } from "../../http1/upstream-error.ts";
import type { CheckedTarget, PolicyRequest, Verdict } from "../types.ts";
import { applyHookActions } from "../hooks/inject.ts";
import type { SecretField } from "../hooks/secret-store.ts";
import type { ConnIO, Outcome } from "./conn-io.ts";
import { expectsContinue, stripHopByHop } from "./headers.ts";
import { isWriteChannel, requestHasBody } from "./request-facts.ts";
import { framingOf, responseHeadBytes } from "./response-framing.ts";
import { pipeResponse } from "./response-pipe.ts";
import { pinnedRequestTarget, resolveRequestTarget, type TargetResult } from "./target.ts";
import { isGitFetch } from "../git-fetch.ts";

// Content-length bodies up to this size are collected: a byte body is what the HTTP/1.1 client
// may replay once on a fresh connection when a pooled keep-alive one turns out closed (a
// stream cannot be replayed). Larger ones stream, announced with their content-length.
const SMALL_BODY = 1024 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
// `x-unix-socket` only reaches here on a pinned connection, where it has no meaning: never forward it.
const DROP_DEFAULT: ReadonlySet<string> = new Set(["x-unix-socket"]);
const DROP_EXPECT: ReadonlySet<string> = new Set(["x-unix-socket", "expect"]);

/** Handle one non-CONNECT, non-unix-socket request. */
export async function forwardRequest(io: ConnIO, head: RequestHead): Promise<Outcome> {
  const { ctx, frontEnd } = io;
  const pinned = frontEnd.target;
  const target: TargetResult = pinned ? pinnedRequestTarget(head, { ...frontEnd, target: pinned }) : resolveRequestTarget(head);
  if (!target.ok) {
    io.answer(target.answer, { close: true });
    return "close";
  }
  const req: PolicyRequest = {
    protocol: frontEnd.protocol,
    host: target.hostname,
    port: target.port,
    method: head.method,
    writeChannel: isWriteChannel(head),
    gitFetch: isGitFetch(head.method, target.path, head.headers),
    client: io.client,
  };
  // Decrypted requests: MITM hooks judge the path, query and headers (SPEC-network §10).
  if (frontEnd.protocol === "https") {
    req.target = target.path;
    req.headers = head.headers;
  }
  const verdict = await io.evaluate(req);
  // A hook's secret fields are leased until the request head was written (or abandoned).
  const inject = verdict.action === "allow" ? (verdict.inject ?? null) : null;
  try {
    return await forwardAllowed(io, head, req, verdict, target, inject);
  } finally {
    inject?.release();
  }
}

/** The rest of `forwardRequest` once the policy answered. */
async function forwardAllowed(
  io: ConnIO,
  head: RequestHead,
  req: PolicyRequest,
  verdict: Verdict,
  target: Extract<TargetResult, { ok: true }>,
  inject: { fields: readonly SecretField[]; release(): void } | null,
): Promise<Outcome> {
  const { ctx, frontEnd } = io;
  const pinned = frontEnd.target;
  const hasBody = requestHasBody(head);
  if (io.signal.aborted) return "close";
  // Blocked requests with a body close the connection rather than read and discard it.
  if (verdict.action === "deny") {
    io.block(verdict, req, { close: hasBody });
    return hasBody ? "close" : "keep";
  }
  if (verdict.action === "error") {
    ctx.log.info("upstream name lookup failed", { host: verdict.host, client: io.client });
    io.answer(frontEnd.upstreamFailure, { close: true });
    return "close";
  }

  const cont = hasBody && expectsContinue(head.headers);
  let headers = stripHopByHop(head.headers, cont ? DROP_EXPECT : DROP_DEFAULT);
  if (!target.hasHost) headers.unshift(["Host", target.url.host]);
  let secretHeaders: readonly SecretField[] | undefined;
  if (verdict.hook !== undefined) {
    // §10 actions: strip, drop client fields named like an injected one, inject from locked memory.
    const hooked = applyHookActions(headers, verdict.hook.spec, inject?.fields ?? []);
    headers = hooked.headers;
    secretHeaders = hooked.secretHeaders;
  }

  let body: Uint8Array | ReadableStream<Uint8Array> | null = null;
  let bodyLength: number | undefined;
  if (hasBody) {
    // The client announced it waits for 100 before sending the body; we answer it ourselves
    // (the request is allowed) so the body comes at once instead of after curl's 1 s wait
    // (RFC 9110 §10.1.1), and do not forward the expectation.
    if (cont && head.version === "HTTP/1.1") io.write(CONTINUE);
    const pump = io.openBody(head.framing);
    if (head.framing.kind === "length" && head.framing.length <= SMALL_BODY) {
      try {
        body = await Bun.readableStreamToBytes(pump.stream);
      } catch {
        return "close"; // the client left or sent a bad body; protocolError answered it
      }
    } else {
      body = pump.stream;
      // Keep the client's content-length framing (some origins refuse chunked uploads).
      if (head.framing.kind === "length") bodyLength = head.framing.length;
    }
  }

  const checked: CheckedTarget = pinned ?? { host: verdict.host, port: target.port, addresses: verdict.addresses };
  const cfg = ctx.config();
  let res;
  try {
    res = await io.clients.get(cfg).requestDirect({
      url: target.url,
      target: target.path,
      method: head.method,
      headers,
      body,
      bodyLength,
      secretHeaders,
      // The checked addresses (§3.4) — unless allow_upstream_proxy sends the request through
      // HTTP(S)_PROXY, which then resolves the name.
      connectTo: cfg.allowUpstreamProxy ? undefined : checked.addresses,
      servername: target.scheme === "https" ? checked.host : undefined,
      signal: io.signal,
    });
  } catch (err) {
    if (io.signal.aborted) return "close";
    ctx.log.info("upstream request failed", {
      host: checked.host,
      port: checked.port,
      client: io.client,
      kind: err instanceof UpstreamError ? err.kind : "internal",
      error: err instanceof Error ? err.message : String(err),
    });
    if (!io.responseStarted) io.answer(frontEnd.upstreamFailure, { close: true });
    io.noteOutcome("upstream_failed");
    return "close";
  }
  // The head (and any replay of it) is written: the secret pages are no longer needed.
  inject?.release();
  return streamResponse(io, head, res, checked.host, target.path, verdict.hook?.label);
}

async function streamResponse(
  io: ConnIO,
  head: RequestHead,
  res: DirectResponse,
  host: string,
  path: string,
  hook: string | undefined,
): Promise<Outcome> {
  const { framing, length } = framingOf(head.method, res.status, res.headers, head.version);
  const keepAlive = head.keepAlive && framing !== "close";
  io.responseStarted = true;
  io.noteStatus(res.status);
  const r = await pipeResponse(io, responseHeadBytes(res.status, res.reason, res.headers, framing, keepAlive, head.version), res.body, framing);
  if (r.end === "client-closed") return "close";
  if (r.end instanceof Error) {
    io.ctx.log.info("upstream response body failed", { host, client: io.client, error: r.end.message });
    io.noteOutcome("upstream_failed");
    // Nothing written yet: a clean 502; otherwise the client sees a truncated body.
    if (!r.headWritten) io.answer(io.frontEnd.upstreamFailure, { close: true });
    return "close";
  }
  if (io.frontEnd.inspect) {
    const mitm = io.ctx.config().mitm;
    if (mitm.inspect) {
      io.ctx.log.info("mitm inspect", {
        host,
        method: head.method,
        path: path.split("?", 1)[0],
        status: res.status,
        body_len: r.bytes,
        truncated: r.bytes > mitm.maxBodyBytes,
        "network.policy.hook": hook,
      });
    }
  }
  if (framing === "length" && r.bytes !== length) return "close";
  return keepAlive ? "keep" : "close";
}
