/**
 * Hop-by-hop header removal for the forward proxy (RFC 9110 §7.6.1, SPEC-network §4):
 * `Connection` and every name it lists, `Keep-Alive`, `Proxy-Connection`,
 * `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding` (the body is re-framed) and
 * `Upgrade` are dropped in both directions. `Host` and `X-Forwarded-For` are kept.
 */

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Copy of `headers` without hop-by-hop fields, the names listed in `Connection`, and
 * `alsoDrop` (lower-case names). Order and name spelling are kept.
 */
export function stripHopByHop(
  headers: ReadonlyArray<readonly [string, string]>,
  alsoDrop?: ReadonlySet<string>,
): Array<[string, string]> {
  let listed: Set<string> | null = null;
  for (const [k, v] of headers) {
    if (k.length === 10 && k.toLowerCase() === "connection") {
      listed ??= new Set();
      for (const t of v.split(",")) {
        const n = t.trim().toLowerCase();
        if (n) listed.add(n);
      }
    }
  }
  const out: Array<[string, string]> = [];
  for (const [k, v] of headers) {
    const lower = k.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower) || alsoDrop?.has(lower)) continue;
    out.push([k, v]);
  }
  return out;
}

/** Whether any field `name` (lower-case) is present. */
export function hasHeader(headers: ReadonlyArray<readonly [string, string]>, name: string): boolean {
  for (const [k] of headers) if (k.length === name.length && k.toLowerCase() === name) return true;
  return false;
}

/** Whether the `Expect` field asks for `100-continue` (RFC 9110 §10.1.1). */
export function expectsContinue(headers: ReadonlyArray<readonly [string, string]>): boolean {
  for (const [k, v] of headers) {
    if (k.length === 6 && k.toLowerCase() === "expect" && v.trim().toLowerCase() === "100-continue") return true;
  }
  return false;
}
