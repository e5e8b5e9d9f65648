/**
 * The blocked-request summary `exec` prints after the command (SPEC-network §11): one line
 * per (host, port, reason) with its count and the policy's hint, in order of first block:
 * `blocked: 127.0.0.1:8080 method_not_allowed ×2 (hint: …)`.
 *
 * The tally sits behind the `/blocked` ring buffer (a recorder that forwards every entry), so
 * it sees every block whatever drains `/blocked`, and it is bounded: at most
 * `MAX_GROUPS` distinct groups are kept, the rest counted as "more".
 */
import type { BlockedEntry, PolicyRequest } from "../types.ts";
import type { BlockReason, PolicyProtocol, RecordedProtocol } from "../reasons.ts";
import { createRecorder, type BlockRecorder } from "../recorder.ts";
import { formatListenAddress } from "../listen-addr.ts";

/** Distinct (host, port, reason) groups kept for the summary. */
export const MAX_GROUPS = 100;

const POLICY_PROTOCOL: Record<RecordedProtocol, PolicyProtocol> = {
  http: "http",
  "http-connect": "https_connect",
  https: "https",
  socks5: "socks5_tcp",
  "socks5-udp": "socks5_udp",
  "unix-socket": "unix_socket",
};

interface Group {
  first: BlockedEntry;
  count: number;
}

/** A recorder that feeds the `/blocked` ring buffer and keeps the tally. */
export interface BlockTally {
  readonly recorder: BlockRecorder;
  /**
   * The summary lines (each ending in `\n`; empty string when nothing was blocked).
   * `explain` gives the hint for a block (NetworkContext.explain); its do-not-retry tail is
   * dropped, the reader here is a person.
   */
  render(explain: (reason: BlockReason, req: PolicyRequest, host: string) => string): string;
}

/** Create a tally around a fresh `/blocked` ring buffer (or `inner`). */
export function createBlockTally(inner: BlockRecorder = createRecorder()): BlockTally {
  const groups = new Map<string, Group>();
  let overflow = 0;
  const recorder: BlockRecorder = {
    push(entry) {
      inner.push(entry);
      const key = `${entry.host}\0${entry.port}\0${entry.reason}`;
      const g = groups.get(key);
      if (g) g.count++;
      else if (groups.size < MAX_GROUPS) groups.set(key, { first: entry, count: 1 });
      else overflow++;
    },
    drain: () => inner.drain(),
    get size() {
      return inner.size;
    },
  };
  return {
    recorder,
    render(explain) {
      let out = "";
      for (const { first: e, count } of groups.values()) {
        const req: PolicyRequest = { protocol: POLICY_PROTOCOL[e.protocol as RecordedProtocol] ?? "http", host: e.host, port: e.port, method: e.method, client: e.client };
        const hint = explain(e.reason, req, e.host);
        const cut = hint.lastIndexOf("; ");
        const where = e.protocol === "unix-socket" ? e.host : formatListenAddress({ host: e.host, port: e.port });
        out += `blocked: ${where} ${e.reason} ×${count}${hint ? ` (hint: ${cut > 0 ? hint.slice(0, cut) : hint})` : ""}\n`;
      }
      if (overflow > 0) out += `blocked: ${overflow} more in other groups\n`;
      return out;
    },
  };
}
