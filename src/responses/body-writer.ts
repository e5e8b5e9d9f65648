/**
 * Response serialisation for the responses proxy's listener (RFC 9112 §4, §6, §7.1): the
 * response head, and a streamed body piped to the client with chunked or close-delimited
 * framing, batched into as few send()s as possible without delaying any byte.
 */
import { STATUS_CODES } from "node:http";

/** Where bytes go: the connection's WriteQueue plus its state. */
export interface BodySink {
  write(bytes: Uint8Array): void;
  /** Bytes accepted but not yet taken by the socket. */
  readonly backlog: number;
  /** Resolves when the backlog is empty again (or the connection closed). */
  drained(): Promise<void>;
  readonly closed: boolean;
}

/** How the body of a response is delimited. */
export type ResponseFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };

/**
 * Header fields the listener owns; an app's values for them are dropped. (`keep-alive` is
 * not among them: SPEC §1.5 forwards every upstream header but these and trailer/upgrade.)
 */
const FRAMING_FIELDS = new Set(["content-length", "transfer-encoding", "connection"]);
const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = new Uint8Array([48, 13, 10, 13, 10]); // "0\r\n\r\n"
/** Batched output is written once it reaches this size, whatever else is pending. */
const FLUSH_BYTES = 64 * 1024;
const TURN = Symbol("turn");
/** Resolves after one event-loop turn (setImmediate runs after pending I/O callbacks). */
const nextTurn = () => new Promise<typeof TURN>((resolve) => setImmediate(resolve, TURN));
const encoder = new TextEncoder();

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const buf = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    buf.set(p, off);
    off += p.byteLength;
  }
  return buf;
}

/**
 * `HTTP/1.1 <status> <reason>` + `headers` (framing fields dropped) + our framing fields +
 * `connection: close` when `close` + the empty line.
 */
export function encodeResponseHead(status: number, headers: Array<[string, string]>, framing: ResponseFraming, close: boolean): Uint8Array {
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
  for (const [name, value] of headers) {
    if (!FRAMING_FIELDS.has(name.toLowerCase())) text += `${name}: ${value}\r\n`;
  }
  if (framing.kind === "chunked") text += "transfer-encoding: chunked\r\n";
  else if (framing.kind === "length") text += `content-length: ${framing.length}\r\n`;
  if (close) text += "connection: close\r\n";
  return encoder.encode(text + "\r\n");
}

/**
 * Write `head`, then every chunk of `body`, framed as chunked (`chunked`) or raw
 * (close-delimited). Pieces that are already available — the first chunk after the head,
 * chunks read together, the end of the stream — join one write; whatever waits longer than
 * one event-loop turn is written on its own, so nothing is delayed (SSE flushes per event)
 * and small responses cost one send(). Waits for `drained()` under backpressure, so the
 * upstream is read no faster than the client takes the bytes.
 *
 * @returns "complete" (terminating chunk written) or "client-closed" (body cancelled).
 * @throws the body's error, after writing what was already read.
 */
export async function pipeBody(
  sink: BodySink,
  head: Uint8Array,
  body: ReadableStream<Uint8Array>,
  chunked: boolean,
): Promise<"complete" | "client-closed"> {
  const reader = body.getReader();
  const out: Uint8Array[] = [head];
  let outBytes = head.byteLength;
  const push = (piece: Uint8Array) => {
    out.push(piece);
    outBytes += piece.byteLength;
  };
  const flush = () => {
    if (out.length === 0) return;
    sink.write(out.length === 1 ? out[0]! : concat(out, outBytes));
    out.length = 0;
    outBytes = 0;
  };
  try {
    let next = reader.read();
    for (;;) {
      if (out.length > 0 && (await Promise.race([next, nextTurn()])) === TURN) {
        flush();
        if (sink.backlog > 0) await sink.drained();
      }
      const { done, value } = await next;
      if (sink.closed) {
        void reader.cancel().catch(() => {});
        return "client-closed";
      }
      if (done) break;
      if (value && value.byteLength > 0) {
        if (chunked) {
          push(encoder.encode(`${value.byteLength.toString(16)}\r\n`));
          push(value);
          push(CRLF);
        } else push(value);
        if (outBytes >= FLUSH_BYTES) {
          flush();
          if (sink.backlog > 0) await sink.drained();
        }
      }
      next = reader.read();
    }
  } catch (e) {
    if (!sink.closed) flush();
    throw e;
  }
  if (chunked) push(LAST_CHUNK);
  flush();
  return "complete";
}
