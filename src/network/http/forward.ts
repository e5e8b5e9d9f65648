/**
 * Plain-HTTP forwarding (SPEC-network §4): resolve the target (absolute-form or origin-form +
 * Host), judge it (`protocol: "http"`; host before method, §3.3), apply the limited-mode
 * write-channel rule (beyond: GET/HEAD/OPTIONS with a body or `Upgrade` → 403
 * `method_not_allowed`), then send the request with the project HTTP/1.1 client to the
 * addresses the policy checked (§3.4) and stream the response back.
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
import { UpstreamError, type DirectResponse } from "../../http1/types.ts";
import type { PolicyRequest } from "../types.ts";
import type { ConnIO, Outcome } from "./conn-io.ts";
import type { RequestHead } from "./head-parser.ts";
import { expectsContinue, hasHeader, stripHopByHop } from "./headers.ts";
import { pipeResponse, type PipeFraming } from "./response-pipe.ts";
import { parseAuthority, resolveRequestTarget, withoutFragment, type HttpTarget } from "./target.ts";
import { isGitFetch } from "../git-fetch.ts";

// Content-length bodies up to this size are collected: a byte body is what the HTTP/1.1 client
// may replay once on a fresh connection when a pooled keep-alive one turns out closed (a
// stream cannot be replayed). Larger ones stream, announced with their content-length.
const SMALL_BODY = 1024 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
// `x-unix-socket` only reaches here on a SOCKS5 hand-off, where it has no meaning: never forward it.
const DROP_DEFAULT: ReadonlySet<string> = new Set(["x-unix-socket"]);
const DROP_EXPECT: ReadonlySet<string> = new Set(["x-unix-socket", "expect"]);
const LIMITED_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether the request carries content (a zero content-length does not). */
export function requestHasBody(head: RequestHead): boolean {
  return head.framing.kind === "chunked" || (head.framing.kind === "length" && head.framing.length > 0);
}

/** Handle one non-CONNECT, non-unix-socket request. */
export async function forwardRequest(io: ConnIO, head: RequestHead): Promise<Outcome> {
  const { ctx } = io;
  const target = io.opts.fixedTarget ? fixedTargetOf(io, head) : resolveRequestTarget(head);
  const hasBody = requestHasBody(head);
  if (!target.ok) {
    io.text(400, target.message, true);
    return "close";
  }
  const req: PolicyRequest = {
    protocol: io.opts.protocol ?? "http",
    host: target.hostname,
    port: target.port,
    method: head.method,
    client: io.client,
    gitFetch: isGitFetch(head.method, target.url.pathname, head.headers),
  };
  const verdict = await ctx.evaluate(req);
  if (io.signal.aborted) return "close";
  if (verdict.action === "deny") {
    if (verdict.reason === "proxy_disabled") io.text(503, "proxy disabled", hasBody);
    else io.block(verdict.reason, req, verdict.host, true, hasBody);
    return hasBody ? "close" : "keep";
  }
  if (verdict.action === "error") {
    ctx.log.info("upstream name lookup failed", { host: verdict.host, client: io.client });
    io.text(502, "upstream failure", true);
    return "close";
  }
  const cfg = ctx.config();
  if (cfg.mode === "limited" && LIMITED_METHODS.has(head.method) && (hasBody || hasHeader(head.headers, "upgrade"))) {
    ctx.recordBlock(req, "method_not_allowed");
    io.block("method_not_allowed", req, verdict.host, true, hasBody);
    return hasBody ? "close" : "keep";
  }

  const cont = hasBody && expectsContinue(head.headers);
  const headers = stripHopByHop(head.headers, cont ? DROP_EXPECT : DROP_DEFAULT);
  if (!target.hasHost) headers.unshift(["Host", target.url.host]);

  let body: Uint8Array | ReadableStream<Uint8Array> | null = null;
  let bodyLength: number | undefined;
  if (hasBody) {
    // The client announced it waits for 100 before sending the body; we answer it ourselves
    // (the request is allowed) so the body comes at once instead of after curl's 1 s wait.
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

  const connectTo = io.opts.fixedTarget?.addresses ?? verdict.addresses;
  let res;
  try {
    res = await io.clients.get(cfg).requestDirect({
      url: target.url,
      target: target.path,
      method: head.method,
      headers,
      body,
      bodyLength,
      // With allow_upstream_proxy the client must be free to use HTTP(S)_PROXY (connectTo
      // would force a direct dial).
      connectTo: cfg.allowUpstreamProxy ? undefined : connectTo,
      signal: io.signal,
    });
  } catch (err) {
    if (io.signal.aborted) return "close";
    ctx.log.info("upstream request failed", {
      host: verdict.host,
      port: target.port,
      client: io.client,
      kind: err instanceof UpstreamError ? err.kind : "internal",
      error: err instanceof Error ? err.message : String(err),
    });
    if (!io.responseStarted) io.text(502, "upstream failure", true);
    return "close";
  }
  return streamResponse(io, head, res, verdict.host);
}

async function streamResponse(io: ConnIO, head: RequestHead, res: DirectResponse, host: string): Promise<Outcome> {
  const noBody = head.method === "HEAD" || res.status < 200 || res.status === 204 || res.status === 304;
  let length = -1;
  let chunkedUpstream = false;
  for (const [k, v] of res.headers) {
    if (k === "content-length" && length < 0 && /^[0-9]{1,15}$/.test(v)) length = Number(v);
    else if (k === "transfer-encoding") chunkedUpstream = true;
  }
  let framing: PipeFraming;
  if (noBody) framing = "none";
  else if (length >= 0 && !chunkedUpstream) framing = "length";
  else framing = head.version === "HTTP/1.1" ? "chunked" : "close";
  const keepAlive = head.keepAlive && framing !== "close";

  let s = `HTTP/1.1 ${res.status} ${res.reason}\r\n`;
  for (const [k, v] of stripHopByHop(res.headers)) {
    if (k === "content-length" && (framing === "chunked" || framing === "close")) continue;
    s += `${k}: ${v}\r\n`;
  }
  if (framing === "chunked") s += "transfer-encoding: chunked\r\n";
  if (!keepAlive) s += "connection: close\r\n";
  else if (head.version === "HTTP/1.0") s += "connection: keep-alive\r\n";
  s += "\r\n";
  io.responseStarted = true;

  // Field values were decoded byte per code unit: latin1 writes them back byte-exact.
  const r = await pipeResponse(io, Buffer.from(s, "latin1"), res.body, framing);
  io.ctx.metrics.bytes(io.body?.received ?? 0, r.bytes);
  if (r.end === "client-closed") return "close";
  if (r.end instanceof Error) {
    io.ctx.log.info("upstream response body failed", { host, client: io.client, error: r.end.message });
    // Nothing written yet: a clean 502; otherwise the client sees a truncated body.
    if (!r.headWritten) io.text(502, "upstream failure", true);
    return "close";
  }
  if (framing === "length" && r.bytes !== length) return "close";
  return keepAlive ? "keep" : "close";
}

/** SOCKS5 hand-off: every request goes to the pinned target; a Host field must name it. */
function fixedTargetOf(io: ConnIO, head: RequestHead): ({ ok: true } & HttpTarget) | { ok: false; message: string } {
  const fixed = io.opts.fixedTarget!;
  const hostName = fixed.host.includes(":") ? `[${fixed.host}]` : fixed.host;
  const authority = fixed.port === 80 ? hostName : `${hostName}:${fixed.port}`;
  let path = withoutFragment(head.target);
  if (!path.startsWith("/")) {
    const r = resolveRequestTarget(head);
    if (!r.ok) return r;
    if (!sameHost(r.hostname, hostName) || r.port !== fixed.port) {
      return { ok: false, message: "Host header does not match request target" };
    }
    path = r.path;
  }
  let hasHost = false;
  for (const [k, v] of head.headers) {
    if (k.toLowerCase() !== "host") continue;
    hasHost = true;
    const a = parseAuthority(v);
    if (!a || !sameHost(canonical(a.host), hostName)) {
      return { ok: false, message: "Host header does not match request target" };
    }
  }
  let url: URL;
  try {
    url = new URL(`http://${authority}/`);
  } catch {
    return { ok: false, message: "invalid host" };
  }
  return { ok: true, scheme: "http", hostname: url.hostname, port: fixed.port, url, path, hasHost };
}

function canonical(host: string): string {
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return "";
  }
}

function sameHost(a: string, b: string): boolean {
  const strip = (h: string) => h.toLowerCase().replace(/\.+$/, "");
  return strip(a) === strip(canonical(b) || b);
}
