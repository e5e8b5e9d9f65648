/**
 * Limited-mode SOCKS5 peeking (SPEC-network §5, beyond): after REP 0x00 for an allowed
 * host, read the client's first bytes (bounded in size and time) and decide who owns the
 * connection:
 * - a plain HTTP/1.x request line → the one HTTP request loop pinned to the checked target
 *   (`socksFrontEnd`): the policy judges every request on the connection (method, write
 *   channel), so a non-read method gets the 403 block body from there;
 * - a TLS ClientHello with MITM enabled → the MITM engine takes the connection;
 * - anything else (including TLS without MITM, or silence until the timeout) → the policy
 *   is asked about a stream it cannot read (`writeChannel` with no method): limited mode
 *   denies it `method_not_allowed` (source `mode_guard`, one decision line), a host with MITM
 *   hooks `mitm_required` (source `mitm_hook`, SPEC-network §10: peeking happens for it in
 *   full mode too), and the connection closes.
 */
import type { Socket } from "bun";
import { TCHAR } from "../../http1/grammar.ts";
import { concatBytes } from "../bytes.ts";
import { socksFrontEnd } from "../http/conn-io.ts";
import { createHttpConnectionHandler } from "../http/connection.ts";
import type { CheckedTarget, ConnHandler, ConnState, NetworkContext, PolicyRequest } from "../types.ts";

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
  target: CheckedTarget,
  opts: { peekTimeoutMs: number; peekMaxBytes: number },
): ConnHandler {
  const client = socket.data.client;
  let buf: Uint8Array = new Uint8Array(0);
  let decided = false;
  let closed = false;

  /** Bytes the proxy cannot judge: the policy decides (limited mode denies a write channel). */
  const opaque = (why: string) => {
    decided = true;
    clearTimeout(timer);
    ctx.log.debug("socks5 limited-mode peek: no readable request", { client, why });
    const req: PolicyRequest = { protocol: "socks5_tcp", host: target.host, port: target.port, method: null, writeChannel: true, client };
    // Whatever the verdict, this connection ends: a deny is the limited-mode answer, and an
    // allow (the mode switched to full while peeking) cannot be spliced from here any more —
    // the client retries on a fresh connection.
    void ctx.evaluate(req).then(() => {
      if (!closed) socket.end();
    });
  };

  const timer = setTimeout(() => {
    if (decided || closed) return;
    opaque("no client bytes before the peek timeout");
  }, opts.peekTimeoutMs);

  const decide = (r: Exclude<PeekResult, { kind: "incomplete" }>) => {
    if (r.kind === "http") {
      decided = true;
      clearTimeout(timer);
      const next = createHttpConnectionHandler(ctx, { frontEnd: socksFrontEnd(target) });
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
      opaque("TLS without MITM");
      return;
    }
    opaque(r.why);
  };

  return {
    data(_s, chunk) {
      if (decided || closed) return;
      buf = concatBytes([buf, chunk]);
      const r = classifyFirstBytes(buf, opts.peekMaxBytes);
      if (r.kind !== "incomplete") decide(r);
    },
    drain() {},
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
