/**
 * `x-unix-socket: /path` requests (SPEC-network §4; beyond: Linux and macOS, the reference
 * is macOS-only). The value must be UTF-8 (400 `invalid x-unix-socket header`); everything
 * else is the policy's (protocol `unix_socket`, policy.ts: proxy enabled (503) → method and
 * write channel in limited mode (403 JSON, host `unix-socket`) → path absolute and equal to
 * an `allow_unix_sockets` entry, literally or after resolving symlinks (403 JSON
 * `not_allowed`)). The request goes to the path the policy checked (its `addresses[0]`);
 * failure → 502 `unix socket proxy failed`.
 *
 * The request is re-written (hop-by-hop fields and `x-unix-socket` removed,
 * `connection: close` added) and the response bytes are relayed unchanged until the socket
 * closes; the client connection closes after it (the response ends with the socket).
 */
import type { Socket } from "bun";
import { CHUNKED_END, encodeChunk } from "../../http1/chunked-encoder.ts";
import type { RequestHead } from "../../http1/server-request-head.ts";
import { WriteQueue } from "../../net/write-queue.ts";
import type { PolicyRequest } from "../types.ts";
import { UNIX_SOCKET_HOST } from "../policy.ts";
import type { ConnIO, Outcome } from "./conn-io.ts";
import { expectsContinue, stripHopByHop } from "./headers.ts";
import { isWriteChannel, requestHasBody } from "./request-facts.ts";

const DROP: ReadonlySet<string> = new Set(["x-unix-socket", "expect"]);
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/** Handle a request carrying `x-unix-socket` (`raw`: the field value, latin1-decoded bytes). */
export async function handleUnixSocket(io: ConnIO, head: RequestHead, raw: string): Promise<Outcome> {
  const { ctx } = io;
  let path: string;
  try {
    path = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(raw, "latin1"));
  } catch {
    path = "";
  }
  if (path === "") {
    io.answer("invalid_unix_socket_header", { close: true });
    return "close";
  }
  const req: PolicyRequest = {
    protocol: "unix_socket",
    host: UNIX_SOCKET_HOST,
    port: 0,
    method: head.method,
    writeChannel: isWriteChannel(head),
    socketPath: path,
    client: io.client,
  };
  const verdict = await io.evaluate(req);
  if (io.signal.aborted) return "close";
  if (verdict.action !== "allow") {
    // A unix-socket decision is never a DNS error; anything but allow is a deny.
    if (verdict.action === "deny") io.block(verdict, req, { close: true });
    else io.answer("unix_socket_failed", { close: true });
    return "close";
  }
  const checkedPath = verdict.addresses[0]!;
  ctx.log.debug("unix socket request", { path: checkedPath, method: head.method, client: io.client });
  return relay(io, head, checkedPath, requestHasBody(head));
}

/** origin-form path+query of the request (absolute-form's authority and any fragment dropped). */
function pathAndQuery(target: string): string {
  if (target.startsWith("/")) return target;
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^#]*)/.exec(target);
  const rest = m?.[1] ?? "";
  return rest.startsWith("/") ? rest : `/${rest}`;
}

interface UnixState {
  onData(chunk: Uint8Array): void;
  onDrain(): void;
  onClose(): void;
}

async function relay(io: ConnIO, head: RequestHead, path: string, hasBody: boolean): Promise<Outcome> {
  const cont = hasBody && expectsContinue(head.headers);
  const headers = stripHopByHop(head.headers, DROP);
  let s = `${head.method} ${pathAndQuery(head.target)} HTTP/1.1\r\n`;
  let hostSeen = false;
  for (const [k, v] of headers) {
    if (k.toLowerCase() === "host") hostSeen = true;
    s += `${k}: ${v}\r\n`;
  }
  if (!hostSeen) s += "Host: localhost\r\n";
  if (head.framing.kind === "chunked") s += "Transfer-Encoding: chunked\r\n";
  s += "Connection: close\r\n\r\n";

  let got = 0;
  const done = Promise.withResolvers<void>();
  const upDrained: Array<() => void> = [];
  const state: UnixState = {
    onData(chunk) {
      // The status of the relayed response, for the access line: `HTTP/1.x NNN` starts it.
      if (got === 0 && chunk.byteLength >= 12) {
        const status = Number(String.fromCharCode(chunk[9]!, chunk[10]!, chunk[11]!));
        if (status >= 100 && status <= 999) io.noteStatus(status);
      }
      got += chunk.byteLength;
      io.responseStarted = true;
      io.write(chunk);
      if (io.queued() > 0) {
        upstream.pause();
        void io.drained().then(() => upstream.resume());
      }
    },
    onDrain() {
      if (queue.drain()) for (const fn of upDrained.splice(0)) fn();
    },
    onClose() {
      for (const fn of upDrained.splice(0)) fn();
      done.resolve();
    },
  };
  let upstream: Socket<UnixState>;
  try {
    upstream = await Bun.connect<UnixState>({
      unix: path,
      data: state,
      socket: {
        data: (sock, chunk) => sock.data.onData(chunk),
        drain: (sock) => sock.data.onDrain(),
        close: (sock) => sock.data.onClose(),
        error: (sock) => sock.data.onClose(),
      },
    });
  } catch (err) {
    io.ctx.log.info("unix socket connect failed", { path, error: err instanceof Error ? err.message : String(err) });
    io.answer("unix_socket_failed", { close: true });
    return "close";
  }
  const queue = new WriteQueue(upstream);
  const onAbort = () => upstream.end();
  io.signal.addEventListener("abort", onAbort, { once: true });
  try {
    queue.write(Buffer.from(s, "latin1"));
    if (hasBody) {
      if (cont && head.version === "HTTP/1.1") io.write(CONTINUE);
      const reader = io.openBody(head.framing).stream.getReader();
      const chunked = head.framing.kind === "chunked";
      while (true) {
        const { value, done: end } = await reader.read();
        if (end) break;
        queue.write(chunked ? encodeChunk(value) : value);
        if (queue.size > 0) await new Promise<void>((r) => upDrained.push(r));
      }
      if (chunked) queue.write(CHUNKED_END);
    }
    await done.promise;
  } catch {
    upstream.end(); // the client's body failed; the client connection closes too
    return "close";
  } finally {
    io.signal.removeEventListener("abort", onAbort);
  }
  if (got === 0 && !io.signal.aborted) io.answer("unix_socket_failed", { close: true });
  await io.drained();
  return "close";
}
