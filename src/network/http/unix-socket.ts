/**
 * `x-unix-socket: /path` requests (SPEC-network §4; beyond: Linux and macOS, the reference
 * is macOS-only). Checks in the spec's order: value is UTF-8 (400 `invalid x-unix-socket
 * header`) → proxy enabled (503) → method in limited mode (403 JSON, host `unix-socket`) →
 * path absolute and equal to an `allow_unix_sockets` entry, literally or after resolving
 * symlinks (403 JSON `not_allowed`, host `unix-socket`) → forward path+query over the
 * socket (502 `unix socket proxy failed`). The domain policy is not consulted.
 *
 * The connection goes to the path that was checked: a literal allow-list entry, or the
 * symlink-free path `realpath` returned, never the client's name resolved a second time
 * (flipping a symlink between check and connect reached sockets outside the list).
 *
 * The request is re-written (hop-by-hop fields and `x-unix-socket` removed,
 * `connection: close` added) and the response bytes are relayed unchanged until the socket
 * closes; the client connection closes after it (the response ends with the socket).
 */
import type { Socket } from "bun";
import { realpath } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { WriteQueue } from "../../net/write-queue.ts";
import type { PolicyRequest } from "../types.ts";
import { encodeChunk, CHUNKED_END } from "./chunked.ts";
import type { ConnIO, Outcome } from "./conn-io.ts";
import { requestHasBody } from "./forward.ts";
import type { RequestHead } from "./head-parser.ts";
import { expectsContinue, hasHeader, stripHopByHop } from "./headers.ts";

const LIMITED_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const DROP: ReadonlySet<string> = new Set(["x-unix-socket", "expect"]);
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const HOST = "unix-socket";

/** Handle a request carrying `x-unix-socket` (`raw`: the field value, latin1-decoded bytes). */
export async function handleUnixSocket(io: ConnIO, head: RequestHead, raw: string): Promise<Outcome> {
  const { ctx } = io;
  const hasBody = requestHasBody(head);
  let path: string;
  try {
    path = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(raw, "latin1"));
  } catch {
    path = "";
  }
  if (path === "") {
    io.text(400, "invalid x-unix-socket header", true);
    return "close";
  }
  const cfg = ctx.config();
  if (!cfg.enabled) {
    io.text(503, "proxy disabled", true);
    return "close";
  }
  const req: PolicyRequest = { protocol: "unix_socket", host: HOST, port: 0, method: head.method, client: io.client };
  if (
    cfg.mode === "limited" &&
    (!LIMITED_METHODS.has(head.method) || hasBody || hasHeader(head.headers, "upgrade"))
  ) {
    ctx.recordBlock(req, "method_not_allowed");
    io.block("method_not_allowed", req, HOST, true, true);
    return "close";
  }
  const checked = process.platform === "win32" || !isAbsolute(path) ? null : await allowedSocketPath(path, cfg.policy.allowUnixSockets);
  if (checked === null) {
    ctx.recordBlock(req, "not_allowed");
    io.block("not_allowed", req, HOST, true, true);
    return "close";
  }
  if (io.signal.aborted) return "close";
  ctx.metrics.request("unix-socket", "allow", null);
  ctx.log.info("unix socket request allowed", { path, method: head.method, client: io.client });
  return relay(io, head, checked, hasBody);
}

/**
 * The path to connect to when `path` is allowed, else null: `path` itself when it is an entry
 * literally, else its `realpath` (resolved once) when that is an entry or the realpath of one.
 */
export async function allowedSocketPath(path: string, allowed: string[]): Promise<string | null> {
  if (allowed.includes(path)) return path;
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return null;
  }
  for (const entry of allowed) {
    if (entry === real) return real;
    try {
      if ((await realpath(entry)) === real) return real;
    } catch {
      // An entry that does not exist matches nothing.
    }
  }
  return null;
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
    io.text(502, "unix socket proxy failed", true);
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
  if (got === 0 && !io.signal.aborted) io.text(502, "unix socket proxy failed", true);
  await io.drained();
  return "close";
}
