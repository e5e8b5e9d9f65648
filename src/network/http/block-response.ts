/**
 * Bytes of the proxy's own HTTP answers (SPEC-network §4): policy blocks (403 with
 * `x-proxy-error`, JSON for plain HTTP, text for CONNECT/MITM) and the short `text/plain`
 * answers (400 `missing host`, 502 `upstream failure`, 503 `proxy disabled`, …).
 * Status, header value and text of a block come from `reasons.ts` only (`reasonView`).
 */
import { reasonView, type BlockReason } from "../reasons.ts";

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

/** Details shown in a block answer. */
export interface BlockDetails {
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
  /** Add `connection: close` (the connection is closed after the answer). */
  close?: boolean;
}

/**
 * Full HTTP/1.1 response bytes for a policy block. JSON bodies start with
 * `{"status":"blocked","host":…,"reason":…` (the reference's shape) then add `port`, `method`,
 * `protocol`, `message` and `hint` (beyond).
 */
export function blockResponseBytes(reason: BlockReason, d: BlockDetails): Uint8Array {
  const view = reasonView(reason);
  const extra: [string, string][] = [["x-proxy-error", view.proxyError]];
  if (!d.json) return responseBytes(view.status, "text/plain", view.text, extra, d.close ?? false);
  const body = JSON.stringify({
    status: "blocked",
    host: d.host,
    reason,
    port: d.port,
    method: d.method,
    protocol: d.protocol,
    message: view.text,
    hint: d.hint,
  });
  return responseBytes(view.status, "application/json", body, extra, d.close ?? false);
}

/** A `text/plain` answer such as 400 `missing host` or 502 `upstream failure`. */
export function textResponseBytes(status: number, text: string, close = true): Uint8Array {
  return responseBytes(status, "text/plain", text, [], close);
}

function responseBytes(
  status: number,
  contentType: string,
  body: string,
  extra: [string, string][],
  close: boolean,
): Uint8Array {
  const bodyBytes = encoder.encode(body);
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ncontent-type: ${contentType}\r\n`;
  for (const [k, v] of extra) head += `${k}: ${v}\r\n`;
  head += `content-length: ${bodyBytes.byteLength}\r\n`;
  if (close) head += "connection: close\r\n";
  head += "\r\n";
  const headBytes = encoder.encode(head);
  const out = new Uint8Array(headBytes.byteLength + bodyBytes.byteLength);
  out.set(headBytes, 0);
  out.set(bodyBytes, headBytes.byteLength);
  return out;
}
