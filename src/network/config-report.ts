/**
 * What an operator is told about the config file (issue 13): a table name that is close to
 * `network_proxy` but not it (`[network-proxy]`, `[network_proxi]`), which would otherwise be
 * ignored silently and leave the defaults in force, and the one-line summary of the config in
 * force that `run` logs at startup and `check-config` prints.
 */
import type { LogFields } from "../log.ts";
import type { RuntimeConfig } from "./types.ts";

/** The table this proxy reads. */
export const TABLE = "network_proxy";

/** Levenshtein distance, bounded: returns `max + 1` as soon as the distance exceeds `max`. */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** Whether a table name looks like a misspelling of `network_proxy` (case, `-`/`.`/space for `_`, two edits). */
function nearMiss(name: string): boolean {
  if (name === TABLE) return false;
  const n = name.toLowerCase().replace(/[-.\s]/g, "_");
  return n === TABLE || editDistance(n, TABLE, 2) <= 2 || editDistance(n.replace(/_/g, ""), TABLE.replace(/_/g, ""), 2) <= 1;
}

/**
 * Names of tables in a parsed TOML document that look like misspellings of `[network_proxy]`,
 * as written in TOML (`network-proxy`, `network.proxy` for a dotted `[network.proxy]`).
 * Checks top-level tables and the first level of dotted ones.
 */
export function misspelledTables(doc: Record<string, unknown>): string[] {
  const out: string[] = [];
  const isTable = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
  for (const [k, v] of Object.entries(doc)) {
    if (!isTable(v)) continue;
    if (nearMiss(k)) {
      out.push(k);
      continue;
    }
    for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
      if (isTable(v2) && nearMiss(`${k}.${k2}`)) out.push(`${k}.${k2}`);
    }
  }
  return out;
}

/** Where the config in force came from: a file that was read, or the embedded defaults. */
export type ConfigSource = { kind: "file"; file: string } | { kind: "defaults"; file: string };

/**
 * The summary line: message and fields for the logger.
 * Text: `config: /etc/codex/config.toml mode=limited allowed_domains=3 denied_domains=1 mitm=on`
 * (`config: defaults (no file at <path>)` when nothing was read).
 */
export function configSummary(source: ConfigSource, cfg: RuntimeConfig): { msg: string; fields: LogFields } {
  const msg = source.kind === "file" ? `config: ${source.file}` : `config: defaults (no file at ${source.file})`;
  return {
    msg,
    fields: {
      mode: cfg.mode,
      allowed_domains: cfg.policy.allowedDomains.length,
      denied_domains: cfg.policy.deniedDomains.length,
      mitm: cfg.mitm.enabled ? "on" : "off",
    },
  };
}
