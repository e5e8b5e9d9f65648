/**
 * Response serialisation for the responses proxy's listener (RFC 9112 §4, §6, §7.1): the
 * response head, and a pushed body (BodySource) piped to the client with chunked or
 * close-delimited framing, batched into as few send()s as possible without delaying any byte.
 */
import { latin1Bytes } from "../http1/latin1.ts";
import type { BodyConsumer, BodySource, RawFields } from "../http1/types.ts";
import { CHUNKED_END, chunkSizeLine } from "../http1/chunked-encoder.ts";

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
 * `HTTP/1.1 <status> <reason>\r\n` as bytes for every status Node knows, built on the first
 * response and read-only after: node:http (where the reason phrases are) costs ~15 ms of
 * start-to-listening to load (`npm run bench`), so it is required then, not at start.
 */
const statusLines = (() => {
  let table: ReadonlyMap<number, Uint8Array> | null = null;
  return (): ReadonlyMap<number, Uint8Array> => {
    if (table) return table;
    const codes = (require("node:http") as typeof import("node:http")).STATUS_CODES;
    table = new Map(Object.keys(codes).map((k) => [Number(k), latin1Bytes(`HTTP/1.1 ${k} ${codes[k]}\r\n`)] as const));
    return table;
  };
})();
const CHUNKED_FIELD = latin1Bytes("transfer-encoding: chunked\r\n");
const CLOSE_FIELD = latin1Bytes("connection: close\r\n");
const CONTENT_LENGTH = latin1Bytes("content-length: ");

/**
 * Upstream response fields the listener never relays (SPEC §1.5): framing and hop-by-hop
 * fields it owns. Matched on the lower-cased name bytes, by length first.
 */
const DROP_RAW = ["content-length", "transfer-encoding", "connection", "trailer", "upgrade"];

function dropRaw(b: Uint8Array, ns: number, ne: number): boolean {
  const n = ne - ns;
  if (n !== 14 && n !== 17 && n !== 10 && n !== 7) return false;
  outer: for (const name of DROP_RAW) {
    if (name.length !== n) continue;
    for (let i = 0; i < n; i++) if ((b[ns + i]! | 0x20) !== name.charCodeAt(i)) continue outer;
    return true;
  }
  return false;
}

/**
 * `HTTP/1.1 <status> <reason>` + `headers` (framing fields dropped) + our framing fields +
 * `connection: close` when `close` + the empty line.
 *
 * `headers` is a list of strings, or the upstream head's field lines as bytes (RawFields),
 * which are copied with names lower-cased and content-length, transfer-encoding, connection,
 * trailer and upgrade dropped (no string per field). The returned buffer has `spare` zero
 * bytes after the head (room for the first body bytes, so head and body go out in one write).
 */
export function encodeResponseHead(
  status: number,
  headers: Array<[string, string]> | RawFields,
  framing: ResponseFraming,
  close: boolean,
  spare = 0,
): Uint8Array {
  const statusLine = statusLines().get(status) ?? latin1Bytes(`HTTP/1.1 ${status} Unknown\r\n`);
  let text = "";
  let raw: RawFields | null = null;
  if (Array.isArray(headers)) {
    for (const [name, value] of headers) {
      if (!FRAMING_FIELDS.has(name.toLowerCase())) text += `${name}: ${value}\r\n`;
    }
  } else raw = headers;
  let size = statusLine.length + text.length + 2;
  if (raw) {
    const { bytes: b, fields: f } = raw;
    for (let i = 0; i < f.length; i += 4) if (!dropRaw(b, f[i]!, f[i + 1]!)) size += f[i + 1]! - f[i]! + f[i + 3]! - f[i + 2]! + 4;
  }
  const lengthText = framing.kind === "length" ? String(framing.length) : "";
  if (framing.kind === "chunked") size += CHUNKED_FIELD.length;
  else if (framing.kind === "length") size += CONTENT_LENGTH.length + lengthText.length + 2;
  if (close) size += CLOSE_FIELD.length;

  const out = new Uint8Array(size + spare);
  out.set(statusLine);
  let at = statusLine.length;
  // Latin-1, not UTF-8: upstream field values are bytes (obs-text included); this writes them back byte-exact.
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  if (raw) {
    const { bytes: b, fields: f } = raw;
    for (let i = 0; i < f.length; i += 4) {
      const ns = f[i]!, ne = f[i + 1]!;
      if (dropRaw(b, ns, ne)) continue;
      for (let j = ns; j < ne; j++) {
        const c = b[j]!;
        out[at++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
      }
      out[at++] = 0x3a;
      out[at++] = 0x20;
      for (let j = f[i + 2]!, e = f[i + 3]!; j < e; j++) out[at++] = b[j]!;
      out[at++] = 13;
      out[at++] = 10;
    }
  }
  if (framing.kind === "chunked") {
    out.set(CHUNKED_FIELD, at);
    at += CHUNKED_FIELD.length;
  } else if (framing.kind === "length") {
    out.set(CONTENT_LENGTH, at);
    at += CONTENT_LENGTH.length;
    for (let i = 0; i < lengthText.length; i++) out[at++] = lengthText.charCodeAt(i);
    out[at++] = 13;
    out[at++] = 10;
  }
  if (close) {
    out.set(CLOSE_FIELD, at);
    at += CLOSE_FIELD.length;
  }
  out[at++] = 13;
  out[at++] = 10;
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
 * @param headLength bytes of `head` that are the head; the rest (raw framing only) is room
 *   the first body bytes are copied into, so head and a small body are one buffer
 */
export function pipeBody(
  sink: BodySink,
  head: Uint8Array,
  body: BodySource,
  chunked: boolean,
  done: (outcome: PipeOutcome) => void,
  headLength = head.byteLength,
): void {
  body.attach(new BodyPipe(sink, head, headLength, body, chunked, done));
}

/** The consumer behind `pipeBody` (one object per response: methods, not closures). */
class BodyPipe implements BodyConsumer {
  private out: Uint8Array[];
  private outBytes: number;
  private paused = false;
  private finished = false;
  /** The head buffer while body bytes may still be copied into its spare room, and its fill. */
  private first: Uint8Array | null;
  private fill: number;

  constructor(
    private readonly sink: BodySink,
    head: Uint8Array,
    headLength: number,
    private readonly body: BodySource,
    private readonly chunked: boolean,
    private readonly done: (outcome: PipeOutcome) => void,
  ) {
    if (headLength < head.byteLength && !chunked) {
      this.first = head;
      this.fill = headLength;
      this.out = [];
      this.outBytes = 0;
    } else {
      this.first = null;
      this.fill = 0;
      this.out = [headLength < head.byteLength ? head.subarray(0, headLength) : head];
      this.outBytes = headLength;
    }
  }

  private push(piece: Uint8Array): void {
    const first = this.first;
    if (first !== null && this.out.length === 0 && this.fill + piece.byteLength <= first.byteLength) {
      first.set(piece, this.fill);
      this.fill += piece.byteLength;
      return;
    }
    this.out.push(piece);
    this.outBytes += piece.byteLength;
  }

  data(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    if (this.chunked) {
      this.push(chunkSizeLine(piece.byteLength));
      this.push(piece);
      this.push(CRLF);
    } else this.push(piece);
    if (this.outBytes + this.fill >= FLUSH_BYTES) this.flush();
  }

  /** A piece as a range: small ones are copied into the head's room by a loop (no view made). */
  range(bytes: Uint8Array, start: number, end: number): void {
    const n = end - start;
    const first = this.first;
    if (first !== null && this.out.length === 0 && n <= 1024 && this.fill + n <= first.byteLength) {
      let at = this.fill;
      for (let i = start; i < end; i++) first[at++] = bytes[i]!;
      this.fill = at;
      if (this.fill >= FLUSH_BYTES) this.flush();
      return;
    }
    this.data(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
  }

  flush(): void {
    const { out, sink, first } = this;
    if (sink.closed) return;
    if (first !== null) {
      // The head (and the body bytes copied behind it) go out first, as one buffer.
      this.first = null;
      sink.write(this.fill === first.byteLength ? first : first.subarray(0, this.fill));
      this.fill = 0;
    }
    if (out.length > 0) {
      sink.write(out.length === 1 ? out[0]! : concat(out, this.outBytes));
      this.out = [];
      this.outBytes = 0;
    }
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
    if (this.chunked) this.push(CHUNKED_END);
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
