/**
 * Response serialisation for the responses proxy's listener (RFC 9112 §4, §6, §7.1): the
 * response head, and a pushed body (BodySource) piped to the client with chunked or
 * close-delimited framing, batched into as few send()s as possible without delaying any byte.
 */
import { STATUS_CODES } from "node:http";
import { latin1Bytes } from "../http1/latin1.ts";
import type { BodyConsumer, BodySource } from "../http1/types.ts";

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
  // Latin-1, not UTF-8: upstream field values were decoded byte per code unit (obs-text
  // included), so this writes them back byte-exact.
  return latin1Bytes(text + "\r\n");
}

/** `<size in hex>\r\n` of a chunk (RFC 9112 §7.1). */
function chunkPrefix(size: number): Uint8Array {
  const hex = size.toString(16);
  const out = new Uint8Array(hex.length + 2);
  for (let i = 0; i < hex.length; i++) out[i] = hex.charCodeAt(i);
  out[hex.length] = 13;
  out[hex.length + 1] = 10;
  return out;
}

/** How a piped body ended: written completely, the client went away, or the upstream body failed. */
export type PipeOutcome = "complete" | "client-closed" | Error;

/**
 * Write `head`, then every piece of `body`, framed as chunked (`chunked`) or raw
 * (close-delimited). Output is batched per upstream read: the head, the pieces of one socket
 * read and the last chunk go out in one write when they arrived together, and every read is
 * written as soon as it was decoded (no added delay; SSE flushes per event). While the
 * client's backlog is not empty the upstream is paused, so it is read no faster than the
 * client takes the bytes.
 *
 * @param done called once: "complete" (terminating chunk written), "client-closed", or the
 *   upstream body's error (after writing what was already read)
 */
export function pipeBody(
  sink: BodySink,
  head: Uint8Array,
  body: BodySource,
  chunked: boolean,
  done: (outcome: PipeOutcome) => void,
): void {
  body.attach(new BodyPipe(sink, head, body, chunked, done));
}

/** The consumer behind `pipeBody` (one object per response: methods, not closures). */
class BodyPipe implements BodyConsumer {
  private out: Uint8Array[];
  private outBytes: number;
  private paused = false;
  private finished = false;

  constructor(
    private readonly sink: BodySink,
    head: Uint8Array,
    private readonly body: BodySource,
    private readonly chunked: boolean,
    private readonly done: (outcome: PipeOutcome) => void,
  ) {
    this.out = [head];
    this.outBytes = head.byteLength;
  }

  private push(piece: Uint8Array): void {
    this.out.push(piece);
    this.outBytes += piece.byteLength;
  }

  data(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    if (this.chunked) {
      this.push(chunkPrefix(piece.byteLength));
      this.push(piece);
      this.push(CRLF);
    } else this.push(piece);
    if (this.outBytes >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    const { out, sink } = this;
    if (out.length === 0 || sink.closed) return;
    sink.write(out.length === 1 ? out[0]! : concat(out, this.outBytes));
    this.out = [];
    this.outBytes = 0;
    if (sink.backlog > 0 && !this.paused && !this.finished) {
      this.paused = true;
      this.body.pause();
      void sink.drained().then(() => {
        this.paused = false;
        if (!this.finished && !sink.closed) this.body.resume();
      });
    }
  }

  end(): void {
    this.finished = true;
    if (this.sink.closed) return this.done("client-closed");
    if (this.chunked) this.push(LAST_CHUNK);
    this.flush();
    this.done("complete");
  }

  error(err: Error): void {
    this.finished = true;
    if (this.sink.closed) return this.done("client-closed");
    this.flush();
    this.done(err);
  }
}
