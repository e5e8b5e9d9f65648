/**
 * Limited-mode SOCKS5 peeking (SPEC-network §5, beyond): after REP 0x00 for an allowed
 * host, read the client's first bytes (bounded in size and time) and decide:
 * - a plain HTTP/1.x request line with GET, HEAD or OPTIONS → hand the connection to the HTTP
 *   proxy handler pinned to the target (it judges every request on the connection);
 *   any other method → record `method_not_allowed`, answer 403 with the block body, close;
 * - a TLS ClientHello with MITM enabled → the MITM engine takes the connection;
 * - anything else (including TLS without MITM, or silence until the timeout) → record
 *   `method_not_allowed` and close.
 */
import type { Socket } from "bun";
import { WriteQueue } from "../../net/write-queue.ts";
import { concatBytes } from "../bytes.ts";
import type { ConnHandler, ConnState, NetworkContext, PolicyRequest } from "../types.ts";
import type { PeekDeps, PinnedTarget } from "./connect.ts";
import { TCHAR } from "../../http1/grammar.ts";

/** Methods limited mode lets through (SPEC-network §3.3 step 7). */
const READ_ONLY_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Longest method token considered (longer = not HTTP). */
const MAX_METHOD_LENGTH = 32;

export type PeekResult =
  | { kind: "incomplete" }
  | { kind: "tls" }
  | { kind: "http"; method: string }
  | { kind: "other"; why: string };


const HTTP10 = " HTTP/1.0";
const HTTP11 = " HTTP/1.1";

function endsWithAscii(buf: Uint8Array, end: number, s: string): boolean {
  if (end < s.length) return false;
  for (let i = 0; i < s.length; i++) if (buf[end - s.length + i] !== s.charCodeAt(i)) return false;
  return true;
}

/**
 * Classify the first client bytes. HTTP means a complete request line
 * `token SP target SP HTTP/1.x CRLF` (RFC 9112 §3) within `maxBytes`; TLS means a handshake
 * record header `16 03 0x` (RFC 8446 §5.1). `incomplete` = need more bytes.
 */
export function classifyFirstBytes(buf: Uint8Array, maxBytes: number): PeekResult {
  if (buf.byteLength === 0) return { kind: "incomplete" };
  if (buf[0] === 0x16) {
    if (buf.byteLength < 3) return { kind: "incomplete" };
    return buf[1] === 0x03 && buf[2]! <= 0x04 ? { kind: "tls" } : { kind: "other", why: "not a TLS record" };
  }
  let sp = -1;
  for (let i = 0; i < buf.byteLength && i <= MAX_METHOD_LENGTH; i++) {
    const c = buf[i]!;
    if (c === 0x20) {
      sp = i;
      break;
    }
    if (TCHAR[c] !== 1) return { kind: "other", why: "not an HTTP request line" };
  }
  if (sp === 0) return { kind: "other", why: "not an HTTP request line" };
  if (sp < 0) {
    return buf.byteLength > MAX_METHOD_LENGTH ? { kind: "other", why: "method too long" } : { kind: "incomplete" };
  }
  const lf = buf.indexOf(0x0a, sp);
  if (lf < 0) {
    return buf.byteLength >= maxBytes ? { kind: "other", why: "request line too long" } : { kind: "incomplete" };
  }
  const end = lf > 0 && buf[lf - 1] === 0x0d ? lf - 1 : lf;
  if (!endsWithAscii(buf, end, HTTP11) && !endsWithAscii(buf, end, HTTP10)) {
    return { kind: "other", why: "not an HTTP/1.x request line" };
  }
  return { kind: "http", method: new TextDecoder().decode(buf.subarray(0, sp)) };
}

/**
 * The connection owner between REP 0x00 and the decision. `opts.peekTimeoutMs` bounds the
 * wait, `opts.peekMaxBytes` the bytes buffered. Installs the next owner itself.
 */
export function createPeekHandler(
  ctx: NetworkContext,
  socket: Socket<ConnState>,
  target: PinnedTarget,
  opts: { peekTimeoutMs: number; peekMaxBytes: number; deps: PeekDeps },
): ConnHandler {
  const client = socket.data.client;
  let buf: Uint8Array = new Uint8Array(0);
  let decided = false;
  let closed = false;
  const queue = new WriteQueue(socket);
  let endAfterFlush = false;

  const request = (method: string | null): PolicyRequest => ({
    protocol: "socks5_tcp",
    host: target.host,
    port: target.port,
    method,
    client,
  });

  const block = (method: string | null, why: string, response: Uint8Array | null) => {
    decided = true;
    clearTimeout(timer);
    ctx.log.debug("socks5 limited-mode peek blocked", { client, why });
    ctx.recordBlock(request(method), "method_not_allowed");
    if (response) queue.write(response);
    endAfterFlush = true;
    if (queue.size === 0) socket.end();
  };

  const timer = setTimeout(() => {
    if (decided || closed) return;
    block(null, "no client bytes before the peek timeout", null);
  }, opts.peekTimeoutMs);

  const decide = (r: Exclude<PeekResult, { kind: "incomplete" }>) => {
    if (r.kind === "http") {
      if (!READ_ONLY_METHODS.has(r.method)) {
        const body = opts.deps.blockResponse(ctx, "method_not_allowed", request(r.method), target.host);
        block(r.method, "method not allowed in limited mode", body);
        return;
      }
      decided = true;
      clearTimeout(timer);
      const next = opts.deps.httpHandler(ctx, target);
      socket.data.handler = next;
      next.data(socket, buf);
      return;
    }
    if (r.kind === "tls") {
      const mitm = ctx.mitm();
      if (mitm) {
        decided = true;
        clearTimeout(timer);
        socket.data.handler = null;
        mitm.intercept(socket, target, client, buf);
        return;
      }
      block(null, "TLS without MITM", null);
      return;
    }
    block(null, r.why, null);
  };

  return {
    data(_s, chunk) {
      if (decided || closed) return;
      buf = concatBytes([buf, chunk]);
      const r = classifyFirstBytes(buf, opts.peekMaxBytes);
      if (r.kind !== "incomplete") decide(r);
    },
    drain() {
      if (queue.drain() && endAfterFlush) socket.end();
    },
    close() {
      closed = true;
      clearTimeout(timer);
      queue.discard();
    },
  };
}
