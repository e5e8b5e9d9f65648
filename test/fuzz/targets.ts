/**
 * Fuzz targets (issue 8): fast-check properties for the parsers that read hostile bytes — the
 * request-head parser, the chunked request-body decoder, the response-head scanner, the
 * SOCKS5 handshake, the TLS ClientHello/SNI reader — and the config loader. Each asserts that
 * no exception escapes (other than the one documented error type), that results stay within
 * the input and the bounds, that feeding the same bytes in pieces gives the same answer, and
 * a parse → serialize → parse round trip where a serializer exists.
 *
 * Used by test/fuzz/fuzz.test.ts (a short bounded run in CI) and scripts/fuzz.ts (long runs).
 */
import fc from "fast-check";
import { createRequestBodyDecoder } from "../../src/http1/server-request-body.ts";
import { CHUNKED_END, encodeChunk } from "../../src/http1/chunked-encoder.ts";
import { parseRequestHeadRaw, type HeadLimits, type RawHeadParseResult } from "../../src/http1/server-request-head.ts";
import { findHeadEnd, HeadAccumulator, scanResponseHead } from "../../src/http1/client-response-head.ts";
import { UpstreamError } from "../../src/http1/upstream-error.ts";
import { parseGreeting, parseRequest, parseUdpHeader } from "../../src/network/socks5/handshake.ts";
import { parseClientHello } from "../../src/network/tls-sni.ts";
import { parseConfig } from "../../src/network/config.ts";
import { ConfigError } from "../../src/network/config-error.ts";

const enc = new TextEncoder();
const LIMITS: HeadLimits = { maxHeadBytes: 4096, maxFields: 20, maxLeadingEmptyLines: 2 };

/** Bytes that are either random, or a valid sample with a few random mutations (flips, inserts, cuts). */
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const mutation = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("flip", "insert", "delete", "cut"));
  const withMutations = fc.tuple(valid, fc.array(mutation, { maxLength: 4 })).map(([bytes, muts]) => {
    let b = Array.from(bytes);
    for (const [at, byte, kind] of muts) {
      if (b.length === 0) break;
      const i = at % b.length;
      if (kind === "flip") b[i] = byte;
      else if (kind === "insert") b.splice(i, 0, byte);
      else if (kind === "delete") b.splice(i, 1);
      else b = b.slice(0, i);
    }
    return Uint8Array.from(b);
  });
  return fc.oneof(withMutations, fc.uint8Array({ maxLength: 512 }), valid);
}

/** Split points of `n` bytes into pieces (sorted, unique, inside). */
const splits = fc.array(fc.nat(), { maxLength: 6 });
function pieces(bytes: Uint8Array, at: number[]): Uint8Array[] {
  const cuts = [...new Set(at.map((a) => (bytes.length === 0 ? 0 : a % bytes.length)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of cuts) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}

// ---- request heads ---------------------------------------------------------------------
const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
const fieldValue = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/);
const validHead = fc
  .record({
    method: token,
    target: fc.stringMatching(/^\/[\x21-\x7e]{0,40}$/),
    version: fc.constantFrom("HTTP/1.1", "HTTP/1.0"),
    fields: fc.array(fc.tuple(token, fieldValue), { maxLength: 8 }),
    body: fc.constantFrom("", "content-length: 3\r\n", "transfer-encoding: chunked\r\n"),
  })
  .map((h) => ({ ...h, fields: h.fields.filter(([n]) => !/^(content-length|transfer-encoding|host|connection)$/i.test(n)) }));
const serializeHead = (h: { method: string; target: string; version: string; fields: Array<[string, string]> }, extra = "") =>
  enc.encode(`${h.method} ${h.target} ${h.version}\r\n${h.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}${extra}\r\n`);

function checkHeadResult(r: RawHeadParseResult, len: number): void {
  if (r.kind === "ok") {
    if (r.headLength > len || r.headLength > LIMITS.maxHeadBytes! || r.head.fields.length > LIMITS.maxFields! * 4) throw new Error("head out of bounds");
  } else if (r.kind === "incomplete") {
    if (r.resumeAt > len) throw new Error("resumeAt past the input");
  } else if (![400, 431, 501, 505].includes(r.status)) throw new Error(`unexpected status ${r.status}`);
}

/** Parse as a listener does: grow the buffer piece by piece, resuming where the last call stopped. */
function parseInPieces(parts: Uint8Array[]): RawHeadParseResult {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let len = 0;
  let scanFrom = 0;
  let r: RawHeadParseResult = { kind: "incomplete", resumeAt: 0 };
  for (const p of parts) {
    all.set(p, len);
    len += p.length;
    r = parseRequestHeadRaw(all.subarray(0, len), LIMITS, scanFrom);
    checkHeadResult(r, len);
    if (r.kind !== "incomplete") return r;
    scanFrom = r.resumeAt;
  }
  return r;
}

const summary = (r: RawHeadParseResult) =>
  r.kind === "ok"
    ? { kind: r.kind, method: r.head.method, target: r.head.target, version: r.head.version, n: r.headLength, framing: r.head.framing }
    : r.kind === "error"
      ? { kind: r.kind, status: r.status }
      : { kind: r.kind };

const requestHead = fc.property(mutated(validHead.map((h) => serializeHead(h, h.body))), splits, (bytes, at) => {
  const whole = parseRequestHeadRaw(bytes, LIMITS, 0);
  checkHeadResult(whole, bytes.length);
  const inPieces = parseInPieces(pieces(bytes, at));
  // An error may be found earlier in a prefix (e.g. a bare LF), but never a different success.
  if (whole.kind === "ok" || inPieces.kind === "ok") {
    if (JSON.stringify(summary(whole)) !== JSON.stringify(summary(inPieces))) throw new Error("pieces disagree with the whole");
  }
});

const requestHeadRoundTrip = fc.property(validHead, (h) => {
  const r = parseRequestHeadRaw(serializeHead(h), LIMITS, 0);
  if (r.kind !== "ok") throw new Error(`valid head refused: ${JSON.stringify(r)}`);
  const fields: Array<[string, string]> = [];
  const f = r.head.fields;
  const dec = (s: number, e: number) => Buffer.from(r.head.bytes.subarray(s, e)).toString("latin1");
  for (let i = 0; i < f.length; i += 4) fields.push([dec(f[i]!, f[i + 1]!), dec(f[i + 2]!, f[i + 3]!)]);
  const again = serializeHead({ method: r.head.method, target: r.head.target, version: r.head.version, fields });
  if (Buffer.compare(Buffer.from(again), Buffer.from(serializeHead(h))) !== 0) throw new Error("round trip changed the head");
});

// ---- chunked request bodies ------------------------------------------------------------
const CHUNK_LIMITS = { maxSizeDigits: 8, maxLineBytes: 256, maxTrailerBytes: 1024 };

function decodeChunked(parts: Uint8Array[]): { ok: boolean; done: boolean; body: number[]; consumed: number } {
  const d = createRequestBodyDecoder({ kind: "chunked" }, CHUNK_LIMITS);
  const body: number[] = [];
  let consumed = 0;
  for (const p of parts) {
    const r = d.feed(p, (piece) => body.push(...piece));
    if (!r.ok) return { ok: false, done: false, body, consumed };
    if (r.consumed > p.length) throw new Error("consumed more than given");
    consumed += r.consumed;
    if (r.done) return { ok: true, done: true, body, consumed };
  }
  return { ok: true, done: false, body, consumed };
}

const chunkedBody = fc
  .record({ data: fc.uint8Array({ maxLength: 2048 }), chunking: splits, trailer: fc.constantFrom("", "x-t: 1\r\n"), after: fc.uint8Array({ maxLength: 8 }) })
  .map(({ data, chunking, trailer, after }) => {
    const parts = pieces(data, chunking).filter((p) => p.length > 0).map((p) => encodeChunk(p));
    const end = trailer ? enc.encode(`0\r\n${trailer}\r\n`) : CHUNKED_END;
    const total = parts.reduce((n, p) => n + p.length, 0) + end.length;
    const wire = new Uint8Array(total + after.length);
    let o = 0;
    for (const p of [...parts, end, after]) {
      wire.set(p, o);
      o += p.length;
    }
    return { data, wire, bodyLength: total };
  });

const chunkedRoundTrip = fc.property(chunkedBody, splits, ({ data, wire, bodyLength }, at) => {
  const r = decodeChunked(pieces(wire, at));
  if (!r.ok || !r.done) throw new Error("a valid chunked body was refused");
  if (r.consumed !== bodyLength) throw new Error(`consumed ${r.consumed}, body framing is ${bodyLength}`);
  if (Buffer.compare(Buffer.from(r.body), Buffer.from(data)) !== 0) throw new Error("decoded bytes differ");
});

const chunkedHostile = fc.property(mutated(chunkedBody.map((b) => b.wire)), splits, (wire, at) => {
  const whole = decodeChunked([wire]);
  const split = decodeChunked(pieces(wire, at));
  if (whole.done && split.ok && split.done && split.body.length !== whole.body.length) throw new Error("pieces disagree");
  if (whole.body.length > wire.length) throw new Error("decoded more than given");
});

// ---- response heads (client side) ------------------------------------------------------
const validResponseHead = fc
  .record({
    minor: fc.constantFrom("0", "1"),
    status: fc.integer({ min: 100, max: 599 }),
    reason: fc.stringMatching(/^[A-Za-z ]{0,12}$/),
    fields: fc.array(fc.tuple(token, fieldValue), { maxLength: 6 }),
    framing: fc.constantFrom("", "content-length: 5\r\n", "transfer-encoding: chunked\r\n"),
  })
  .map((h) => enc.encode(`HTTP/1.${h.minor} ${h.status} ${h.reason}\r\n${h.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("")}${h.framing}\r\n`));

const responseHead = fc.property(mutated(validResponseHead), splits, (bytes, at) => {
  const end = findHeadEnd(bytes, 0);
  if (end > bytes.length) throw new Error("head end past the input");
  if (end >= 0) {
    try {
      const h = scanResponseHead(bytes, end);
      if (h.status < 100 || h.status > 999) throw new Error(`status ${h.status}`);
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
    }
  }
  const acc = new HeadAccumulator();
  try {
    for (const p of pieces(bytes, at)) {
      const got = acc.push(p);
      if (got) {
        if (got.end !== end) throw new Error(`accumulator end ${got.end}, whole ${end}`);
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
  }
});

// ---- SOCKS5 ----------------------------------------------------------------------------
const socksAddress = fc.oneof(
  fc.tuple(fc.constant(1), fc.uint8Array({ minLength: 4, maxLength: 4 })),
  fc.tuple(fc.constant(3), fc.stringMatching(/^[a-z0-9.-]{1,60}$/).map((s) => enc.encode(s))),
  fc.tuple(fc.constant(4), fc.uint8Array({ minLength: 16, maxLength: 16 })),
);
const validSocksRequest = fc.tuple(fc.integer({ min: 1, max: 3 }), socksAddress, fc.integer({ min: 0, max: 65535 })).map(([cmd, [atyp, addr], port]) => {
  const len = atyp === 3 ? [addr.length] : [];
  return { bytes: Uint8Array.from([5, cmd, 0, atyp, ...len, ...addr, port >> 8, port & 255]), atyp, addr, port };
});

const socks5 = fc.property(mutated(validSocksRequest.map((r) => r.bytes)), (bytes) => {
  for (const parse of [parseGreeting, parseRequest]) {
    const whole = parse(bytes);
    if (whole.kind === "ok" && whole.length > bytes.length) throw new Error("length past the input");
    // Incremental: every prefix of an accepted message is incomplete or the same answer.
    if (whole.kind === "ok") {
      for (let n = 0; n < whole.length; n++) if (parse(bytes.subarray(0, n)).kind === "error") throw new Error("prefix of an accepted message refused");
    }
  }
  const udp = parseUdpHeader(bytes);
  if (udp.kind === "ok" && udp.headerLength > bytes.length) throw new Error("UDP header past the datagram");
});

const socks5RoundTrip = fc.property(validSocksRequest, ({ bytes, atyp, addr, port }) => {
  const r = parseRequest(bytes);
  if (r.kind !== "ok" || r.length !== bytes.length || r.address.port !== port || r.address.atyp !== atyp) throw new Error(`refused ${JSON.stringify(r)}`);
  if (atyp === 1 && r.address.host !== addr.join(".")) throw new Error("IPv4 host differs");
  if (atyp === 3 && r.address.host !== new TextDecoder().decode(addr)) throw new Error("domain differs");
});

// ---- TLS ClientHello -------------------------------------------------------------------
/** A minimal TLS 1.2-style ClientHello record carrying `sni` (RFC 8446 §4.1.2, RFC 6066 §3). */
function clientHello(sni: string | null, recordSplit: number): Uint8Array {
  const u16 = (n: number) => [n >> 8, n & 255];
  const exts: number[] = [];
  if (sni !== null) {
    const name = Array.from(enc.encode(sni));
    const list = [0, ...u16(name.length), ...name];
    exts.push(...u16(0), ...u16(list.length + 2), ...u16(list.length), ...list);
  }
  const body = [3, 3, ...new Array(32).fill(7), 0, ...u16(2), 0x13, 0x01, 1, 0, ...u16(exts.length), ...exts];
  const hs = [1, 0, ...u16(body.length), ...body];
  // Optionally split the handshake message over two records.
  const cut = recordSplit % (hs.length + 1);
  const rec = (b: number[]) => (b.length ? [0x16, 3, 1, ...u16(b.length), ...b] : []);
  return Uint8Array.from([...rec(hs.slice(0, cut)), ...rec(hs.slice(cut))]);
}
const hostname = fc.stringMatching(/^[A-Za-z0-9-]{1,20}(\.[A-Za-z0-9-]{1,20}){0,3}$/);

const tlsSni = fc.property(mutated(fc.tuple(fc.option(hostname), fc.nat()).map(([h, s]) => clientHello(h, s))), splits, (bytes, at) => {
  const whole = parseClientHello(bytes);
  if (whole.kind === "client_hello" && whole.length > bytes.length) throw new Error("length past the input");
  let prefix = 0;
  for (const p of pieces(bytes, at)) {
    prefix += p.length;
    const r = parseClientHello(bytes.subarray(0, prefix));
    if (r.kind === "client_hello" && JSON.stringify(r) !== JSON.stringify(whole)) throw new Error("a prefix gave another ClientHello");
  }
});

const tlsSniRoundTrip = fc.property(fc.option(hostname), fc.nat(), (h, split) => {
  const r = parseClientHello(clientHello(h, split));
  if (r.kind !== "client_hello" || r.sni !== (h === null ? null : h.toLowerCase())) throw new Error(`${h}: ${JSON.stringify(r)}`);
});

// ---- config ----------------------------------------------------------------------------
const tomlValue = fc.oneof(
  fc.boolean().map(String),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Number.isInteger(d) ? `${d}.0` : String(d))),
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.array(fc.string({ maxLength: 10 }).map((s) => JSON.stringify(s)), { maxLength: 3 }).map((a) => `[${a.join(", ")}]`),
);
const configKey = fc.constantFrom(
  "enabled", "proxy_url", "admin_url", "enable_socks5", "socks_url", "mode", "max_connections", "admin_token_file",
  "policy.allowed_domains", "policy.denied_domains", "policy.allow_local_binding", "policy.allow_unix_sockets",
  "mitm.enabled", "mitm.max_body_bytes", "mitm.ca_cert_path", "unknown_key",
);
const configText = fc.oneof(
  fc.array(fc.tuple(configKey, tomlValue), { maxLength: 6 }).map((kv) => `[network_proxy]\n${kv.map(([k, v]) => `${k} = ${v}`).join("\n")}\n`),
  fc.string({ maxLength: 200 }),
);

const configLoader = fc.property(configText, (text) => {
  try {
    const cfg = parseConfig(text, "/etc/codex/config.toml");
    if (!Number.isInteger(cfg.maxConnections) || cfg.maxConnections < 1) throw new Error("max_connections accepted out of range");
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (e.message.length > 10_000) throw new Error("unbounded error text");
  }
});

/** Every target, by name. */
export const FUZZ_TARGETS: Record<string, fc.IPropertyWithHooks<never>> = {
  "request head": requestHead as fc.IPropertyWithHooks<never>,
  "request head round trip": requestHeadRoundTrip as fc.IPropertyWithHooks<never>,
  "chunked body round trip": chunkedRoundTrip as fc.IPropertyWithHooks<never>,
  "chunked body, hostile": chunkedHostile as fc.IPropertyWithHooks<never>,
  "response head": responseHead as fc.IPropertyWithHooks<never>,
  "socks5 handshake": socks5 as fc.IPropertyWithHooks<never>,
  "socks5 round trip": socks5RoundTrip as fc.IPropertyWithHooks<never>,
  "tls clienthello": tlsSni as fc.IPropertyWithHooks<never>,
  "tls sni round trip": tlsSniRoundTrip as fc.IPropertyWithHooks<never>,
  "config loader": configLoader as fc.IPropertyWithHooks<never>,
};
