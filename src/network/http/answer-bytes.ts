/**
 * Bytes of the proxy's own HTTP answers (SPEC-network §4, §6): the one renderer of the
 * answers table (answers.ts) for the plain listener and inside the MITM. Policy blocks are
 * 403 with `x-proxy-error`, JSON for plain HTTP and `text/plain` for CONNECT/MITM; every
 * other answer (400 `missing host`, 502 `upstream failure`, 503 `proxy disabled`, …) is
 * `text/plain`.
 */
import { ANSWERS, isBlockAnswer, reasonView, type AnswerName, type AnswerView } from "../answers.ts";
import type { BlockReason, DenySource } from "../reasons.ts";

/** Reason phrases of the statuses the proxy writes itself (RFC 9110 §15). */
const PHRASES: Record<number, string> = {
  100: "Continue",
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Reason phrase for `status` ("" when unknown, which RFC 9112 §4 allows). */
export function reasonPhrase(status: number): string {
  return PHRASES[status] ?? "";
}

const encoder = new TextEncoder();

/** Options of every answer. */
export interface AnswerOptions {
  /** Add `connection: close` (the connection is closed after the answer). */
  close: boolean;
}

/** Details shown in a block answer. */
export interface BlockDetails extends AnswerOptions {
  source: DenySource;
  /** Normalised host (or `unix-socket`). */
  host: string;
  port: number;
  method: string | null;
  /** Recorded protocol name (`http`, `http-connect`, `https`, `unix-socket`, …). */
  protocol: string;
  /** Agent-friendly explanation (JSON bodies only): `NetworkContext.explain`. */
  hint: string;
  /** `application/json` body (plain HTTP) or the reason text as `text/plain` (CONNECT, MITM). */
  json: boolean;
}

/**
 * A named answer of the table (or a parser's own 400/431 view) as full HTTP/1.1 bytes,
 * `text/plain`.
 */
export function answerBytes(answer: AnswerName | AnswerView, opts: AnswerOptions): Uint8Array {
  const view = typeof answer === "string" ? ANSWERS[answer] : answer;
  return responseBytes(view, "text/plain", view.text, opts.close);
}

/**
 * Full HTTP/1.1 response bytes for a policy deny. A reason whose view is not a block
 * (`proxy_disabled` → 503) renders as that plain answer. JSON bodies start with
 * `{"status":"blocked","host":…,"reason":…` (the reference's shape), then `decision` and
 * `source` (§3), then (beyond) `port`, `method`, `protocol`, `message` and `hint`.
 */
export function blockBytes(reason: BlockReason, d: BlockDetails): Uint8Array {
  const view = reasonView(reason);
  if (!isBlockAnswer(view) || !d.json) return responseBytes(view, "text/plain", view.text, d.close);
  const body = JSON.stringify({
    status: "blocked",
    host: d.host,
    reason,
    decision: "deny",
    source: d.source,
    port: d.port,
    method: d.method,
    protocol: d.protocol,
    message: view.text,
    hint: d.hint,
  });
  return responseBytes(view, "application/json", body, d.close);
}

function responseBytes(view: AnswerView, contentType: string, body: string, close: boolean): Uint8Array {
  const bodyBytes = encoder.encode(body);
  let head = `HTTP/1.1 ${view.status} ${reasonPhrase(view.status)}\r\ncontent-type: ${contentType}\r\n`;
  if (view.proxyError !== undefined) head += `x-proxy-error: ${view.proxyError}\r\n`;
  head += `content-length: ${bodyBytes.byteLength}\r\n`;
  if (close) head += "connection: close\r\n";
  head += "\r\n";
  const headBytes = encoder.encode(head);
  const out = new Uint8Array(headBytes.byteLength + bodyBytes.byteLength);
  out.set(headBytes, 0);
  out.set(bodyBytes, headBytes.byteLength);
  return out;
}
