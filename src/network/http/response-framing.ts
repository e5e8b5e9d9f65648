/**
 * The response head the proxy sends its client for a forwarded response (SPEC-network §4,
 * §6): the framing chosen towards the client (RFC 9112 §6.3, §7.1) and the head bytes with
 * hop-by-hop fields removed (RFC 9110 §7.6.1). One definition for the plain listener and the
 * MITM.
 */
import type { PipeFraming } from "./response-pipe.ts";
import { reasonPhrase } from "./answer-bytes.ts";
import { stripHopByHop } from "./headers.ts";

const DROP_LENGTH: ReadonlySet<string> = new Set(["content-length"]);

/**
 * Copy `headers` without hop-by-hop fields and the fields `Connection` names
 * (`stripHopByHop`), and without `content-length` when `dropLength` (responses we
 * re-frame). Names keep their case.
 */
export function endToEndHeaders(headers: ReadonlyArray<readonly [string, string]>, dropLength = false): Array<[string, string]> {
  return stripHopByHop(headers, dropLength ? DROP_LENGTH : undefined);
}

/**
 * Choose the client-side framing of a response (RFC 9112 §6.3): no body for HEAD, 1xx, 204
 * and 304; the upstream's Content-Length when it sent exactly one valid value and no
 * Transfer-Encoding; otherwise chunked for HTTP/1.1 clients and close-delimited for HTTP/1.0.
 * Returns the framing and the announced length (-1 when none).
 */
export function chooseFraming(
  method: string,
  status: number,
  headers: ReadonlyArray<readonly [string, string]>,
  clientVersion: "HTTP/1.0" | "HTTP/1.1",
): PipeFraming {
  return framingOf(method, status, headers, clientVersion).framing;
}

/** {@link chooseFraming} plus the Content-Length it relies on (-1 when none). */
export function framingOf(
  method: string,
  status: number,
  headers: ReadonlyArray<readonly [string, string]>,
  clientVersion: "HTTP/1.0" | "HTTP/1.1",
): { framing: PipeFraming; length: number } {
  if (method === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return { framing: "none", length: -1 };
  }
  let lengths = 0;
  let length = -1;
  let chunked = false;
  for (const [k, v] of headers) {
    // Response field names come lower-case from the HTTP/1.1 client; compare both spellings cheaply.
    if (k.length === 14 && k.toLowerCase() === "content-length") {
      lengths++;
      length = /^[0-9]{1,15}$/.test(v.trim()) ? Number(v.trim()) : -1;
    } else if (k.length === 17 && k.toLowerCase() === "transfer-encoding" && v.trim() !== "") chunked = true;
  }
  if (lengths === 1 && length >= 0 && !chunked) return { framing: "length", length };
  return { framing: clientVersion === "HTTP/1.1" ? "chunked" : "close", length: -1 };
}

/**
 * Response-head bytes: status line (the upstream's reason phrase, or ours when it sent none),
 * end-to-end fields (Content-Length kept only for `length`/`none` framing), our framing field
 * and the connection field.
 */
export function responseHeadBytes(
  status: number,
  reason: string,
  headers: ReadonlyArray<readonly [string, string]>,
  framing: PipeFraming,
  keepAlive: boolean,
  clientVersion: "HTTP/1.0" | "HTTP/1.1",
): Uint8Array {
  let head = `HTTP/1.1 ${status} ${reason || reasonPhrase(status)}\r\n`;
  for (const [k, v] of endToEndHeaders(headers, framing === "chunked" || framing === "close")) {
    head += `${k}: ${v}\r\n`;
  }
  if (framing === "chunked") head += "transfer-encoding: chunked\r\n";
  if (!keepAlive) head += "connection: close\r\n";
  else if (clientVersion === "HTTP/1.0") head += "connection: keep-alive\r\n";
  head += "\r\n";
  // Field values are latin1 (the response parser decodes bytes that way); keep them byte-exact.
  return Buffer.from(head, "latin1");
}
