/**
 * Pure helpers for the HTTP/1.1 exchange inside a MITM tunnel: which authority and path a
 * decrypted request names, hop-by-hop field removal (RFC 9110 §7.6.1), and response heads and
 * chunks with the framing we choose towards the client (RFC 9112 §6, §7.1).
 */
import { reasonPhrase } from "../http/block-response.ts";
import { stripHopByHop } from "../http/headers.ts";
import type { RequestHead } from "../http/head-parser.ts";
import { normalizeHost } from "../host.ts";

const DROP_LENGTH: ReadonlySet<string> = new Set(["content-length"]);

/**
 * Copy `headers` without hop-by-hop fields and the fields `Connection` names (the HTTP
 * listener's one rule, `stripHopByHop`), and without `content-length` when `dropLength`
 * (responses we re-frame). Names keep their case.
 */
export function endToEndHeaders(headers: Array<[string, string]>, dropLength = false): Array<[string, string]> {
  return stripHopByHop(headers, dropLength ? DROP_LENGTH : undefined);
}

/** A host and optional port parsed from a Host field or an absolute-form authority. */
export interface Authority {
  /** Normalised as the policy does (SPEC-network §3.1); "" when unusable. */
  host: string;
  port: number | null;
}

/**
 * Parse `host[:port]` / `[v6][:port]` (RFC 9110 §7.2, RFC 3986 §3.2.2).
 * @returns null when the port is present but not a number in 1–65535, or the host is empty.
 */
export function parseAuthority(value: string): Authority | null {
  const v = value.trim();
  let hostPart = v;
  let portPart: string | null = null;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    if (end < 0) return null;
    hostPart = v.slice(0, end + 1);
    const rest = v.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return null;
      portPart = rest.slice(1);
    }
  } else {
    const colon = v.lastIndexOf(":");
    if (colon >= 0) {
      if (v.indexOf(":") !== colon) return null; // bare IPv6 is not valid in an authority
      hostPart = v.slice(0, colon);
      portPart = v.slice(colon + 1);
    }
  }
  let port: number | null = null;
  if (portPart !== null && portPart !== "") {
    if (!/^[0-9]{1,5}$/.test(portPart)) return null;
    port = Number(portPart);
    if (port < 1 || port > 65535) return null;
  }
  const host = normalizeHost(hostPart);
  return host === "" ? null : { host, port };
}

/** True when `a` names the tunnel's target (same normalised host; port, when given, equal). */
export function authorityMatches(a: Authority, target: { host: string; port: number }): boolean {
  return a.host === normalizeHost(target.host) && (a.port === null || a.port === target.port);
}

/** How the response body travels to the client. */
export type ClientFraming = "none" | "length" | "chunked" | "close";

/**
 * Choose the client-side framing of a response (RFC 9112 §6.3): no body for HEAD, 1xx, 204
 * and 304; the upstream's Content-Length when it sent exactly one; otherwise chunked for
 * HTTP/1.1 clients and close-delimited for HTTP/1.0 clients.
 */
export function chooseFraming(
  method: string,
  status: number,
  headers: Array<[string, string]>,
  clientVersion: "HTTP/1.0" | "HTTP/1.1",
): ClientFraming {
  if (method === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304) return "none";
  let lengths = 0;
  let chunked = false;
  for (const [k, v] of headers) {
    const n = k.toLowerCase();
    if (n === "content-length") lengths++;
    else if (n === "transfer-encoding" && v.trim() !== "") chunked = true;
  }
  if (lengths === 1 && !chunked) return "length";
  return clientVersion === "HTTP/1.1" ? "chunked" : "close";
}

/**
 * Response-head bytes: status line, end-to-end fields (Content-Length kept only for
 * `length`/`none` framing), our framing field and the connection field.
 */
export function responseHeadBytes(
  status: number,
  reason: string,
  headers: Array<[string, string]>,
  framing: ClientFraming,
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

const ABSOLUTE_FORM = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/;

/** A body follows the head (`content-length: 0` is no body: nothing to read, nothing to block). */
export function carriesBody(head: RequestHead): boolean {
  return head.framing.kind === "chunked" || (head.framing.kind === "length" && head.framing.length > 0);
}

/**
 * The path+query to forward (origin-form as sent, or the part after the authority of an
 * absolute-form target). `"mismatch"` when an absolute-form authority names another host;
 * null for asterisk-form or a target we cannot forward.
 */
export function requestPath(head: RequestHead, target: { host: string; port: number }): string | "mismatch" | null {
  const t = head.target;
  if (t.startsWith("/")) return t;
  const m = ABSOLUTE_FORM.exec(t);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  if ((scheme !== "https" && scheme !== "http") || m[2]!.includes("@")) return null;
  const a: Authority | null = parseAuthority(m[2]!);
  if (!a || !authorityMatches(a, target)) return "mismatch";
  const rest = m[3]!;
  return rest.startsWith("/") ? rest : `/${rest}`;
}
