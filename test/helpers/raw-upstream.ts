/**
 * A raw fake origin (plain TCP or TLS) that records every request exactly as it arrived on
 * the wire: the head bytes (request line untouched: no URL parsing) and the body bytes with
 * the framing the sender used (content-length or chunked, decoded here). Each request is
 * answered `200` with the request line as the body. Test-only; 127.0.0.1, port 0.
 */
import type { Socket, TCPSocketListener } from "bun";
import { decodeChunkedAt } from "./chunked.ts";

/** One request as the origin received it. */
export interface RawRequest {
  /** The head as sent, up to and including the empty line (latin1). */
  head: string;
  /** The request line as sent, without CRLF. */
  requestLine: string;
  /** Field lines as sent (names lowercased, values trimmed). */
  headers: Array<[string, string]>;
  framing: "length" | "chunked" | "none";
  /** Decoded content bytes. */
  body: Buffer;
}

/** A running raw origin. */
export interface RawUpstream {
  port: number;
  requests: RawRequest[];
  /** Resolves with the n-th request (0-based, over all connections) once it is complete. */
  request(n: number): Promise<RawRequest>;
  /** Resolves with the bytes the n-th accepted connection left unparsed, once it closed. */
  closed(n: number): Promise<Buffer>;
  /** Resolves once the n-th accepted connection has received at least `k` bytes in all. */
  received(n: number, k: number): Promise<void>;
  stop(): void;
}

interface ConnState {
  chunks: Buffer[];
  size: number;
  /** Bytes a length-framed request needs in all; nothing to parse before that. */
  need: number;
  /** Accept order. */
  index: number;
}

const CRLF2 = Buffer.from("\r\n\r\n");

/** Try to take one complete request from `buf`; `need` (total bytes) while a length body is incomplete. */
function takeRequest(buf: Buffer): { req: RawRequest; used: number } | { need: number } | null {
  const end = buf.indexOf(CRLF2);
  if (end < 0) return null;
  const head = buf.toString("latin1", 0, end + 4);
  const lines = head.slice(0, -4).split("\r\n");
  const headers: Array<[string, string]> = lines.slice(1).map((l) => {
    const c = l.indexOf(":");
    return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
  });
  const cl = headers.find(([k]) => k === "content-length");
  const te = headers.find(([k]) => k === "transfer-encoding");
  let at = end + 4;
  if (te) {
    const r = decodeChunkedAt(buf, at); // throws on bad framing: never loops
    if (r === "incomplete") return null;
    const body = r.body;
    at = r.end;
    return { req: { head, requestLine: lines[0]!, headers, framing: "chunked", body }, used: at };
  }
  const len = cl ? Number(cl[1]) : 0;
  if (buf.length < at + len) return { need: at + len };
  const body = Buffer.from(buf.subarray(at, at + len));
  return { req: { head, requestLine: lines[0]!, headers, framing: cl ? "length" : "none", body }, used: at + len };
}

/** Start a raw origin; `tls` makes it an https one. */
export function startRawUpstream(tls?: { key: string; cert: string }): RawUpstream {
  const requests: RawRequest[] = [];
  const waiters = new Map<number, PromiseWithResolvers<RawRequest>>();
  const waiter = (n: number) => {
    let w = waiters.get(n);
    if (!w) {
      w = Promise.withResolvers<RawRequest>();
      waiters.set(n, w);
    }
    return w;
  };
  const closes: Array<PromiseWithResolvers<Buffer>> = [];
  const closeOf = (n: number) => (closes[n] ??= Promise.withResolvers<Buffer>());
  let accepted = 0;
  const totals: number[] = [];
  const byteWaiters: Array<{ n: number; k: number; resolve: () => void }> = [];
  const checkBytes = () => {
    for (let i = byteWaiters.length - 1; i >= 0; i--) {
      const w = byteWaiters[i]!;
      if ((totals[w.n] ?? 0) >= w.k) {
        byteWaiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  const listener: TCPSocketListener<ConnState> = Bun.listen<ConnState>({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls ? { tls } : {}),
    socket: {
      open(s) {
        s.data = { chunks: [], size: 0, need: 0, index: accepted++ };
      },
      close(s: Socket<ConnState>) {
        closeOf(s.data.index).resolve(Buffer.concat(s.data.chunks));
      },
      data(s: Socket<ConnState>, d) {
        const st = s.data;
        st.chunks.push(Buffer.from(d));
        st.size += d.byteLength;
        totals[st.index] = (totals[st.index] ?? 0) + d.byteLength;
        checkBytes();
        // A large length-framed body arrives in many chunks: join them once it is all there.
        // Each pass takes one whole request (≥ 4 bytes) or returns: bounded by the bytes held.
        for (let pass = 0; pass <= st.size; pass++) {
          if (st.size < st.need) return;
          const buf = st.chunks.length === 1 ? st.chunks[0]! : Buffer.concat(st.chunks, st.size);
          st.chunks = [buf];
          let got: ReturnType<typeof takeRequest>;
          try {
            got = takeRequest(buf);
          } catch (e) {
            // Bad framing from the proxy: the test waiting for this request fails with the reason.
            waiter(requests.length).reject(e);
            s.end();
            return;
          }
          if (!got) return;
          if ("need" in got) {
            st.need = got.need;
            return;
          }
          st.need = 0;
          const rest = buf.subarray(got.used);
          st.chunks = rest.length > 0 ? [rest] : [];
          st.size = rest.length;
          requests.push(got.req);
          waiter(requests.length - 1).resolve(got.req);
          const answer = got.req.requestLine;
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(answer, "latin1")}\r\n\r\n${answer}`);
          if (rest.length === 0) return;
        }
      },
      error() {},
    },
  });
  return {
    port: listener.port,
    requests,
    request: (n) => (requests[n] ? Promise.resolve(requests[n]!) : waiter(n).promise),
    closed: (n) => closeOf(n).promise,
    received(n, k) {
      const p = Promise.withResolvers<void>();
      byteWaiters.push({ n, k, resolve: p.resolve });
      checkBytes();
      return p.promise;
    },
    stop: () => listener.stop(true),
  };
}
