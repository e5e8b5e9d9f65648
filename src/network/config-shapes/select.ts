/**
 * Which table of a parsed config document holds the network policy (SPEC-network §2, §11):
 * - a JSON document: its `network` object (Codex's standalone-binary shape);
 * - a TOML document with `--profile NAME`: `[permissions.NAME.network]` (the profile wins
 *   over a `[network_proxy]` table, which is then ignored with a warning);
 * - otherwise the `[network_proxy]` table of §2.
 */
import type { ConfigIssue } from "../config-error.ts";
import { keySegment, translateNetwork } from "./network-table.ts";

/** The selected table, in `[network_proxy]` shape, and how to report its problems. */
export interface SelectedTable {
  /** Object to validate with `networkProxySchema` (`{}` = all defaults). */
  raw: unknown;
  /** Problems found before validation (in source terms). */
  issues: ConfigIssue[];
  /** Map a schema problem's `network_proxy…` path to the source's key path. */
  sourcePath(tablePath: string): string;
  /** Things the user should know (e.g. an ignored table). */
  warnings: string[];
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

const same = (p: string) => p;

/**
 * Select from `doc`. `json` = the document came from a `.json` file. `profile` = `--profile`.
 * Returns issues (never throws) for a missing profile, a `network` that is not a table, etc.
 */
export function selectNetworkTable(doc: Record<string, unknown>, opts: { json: boolean; profile?: string }): SelectedTable {
  if (opts.json) {
    if (opts.profile !== undefined) {
      return { raw: {}, issues: [{ path: "--profile", message: "profiles are read from a config.toml ([permissions.<name>.network]), not from a JSON config" }], sourcePath: same, warnings: [] };
    }
    return fromNetwork(doc.network, "network", []);
  }
  if (opts.profile !== undefined) {
    const root = `permissions.${keySegment(opts.profile)}.network`;
    const perms = doc.permissions;
    const prof = isTable(perms) ? perms[opts.profile] : undefined;
    if (!isTable(prof) || prof.network === undefined) {
      return { raw: {}, issues: [{ path: root, message: `no [${root}] table for --profile ${opts.profile}` }], sourcePath: same, warnings: [] };
    }
    const warnings = doc.network_proxy !== undefined ? [`[network_proxy] is ignored: --profile ${opts.profile} selects [${root}]`] : [];
    return fromNetwork(prof.network, root, warnings);
  }
  return { raw: doc.network_proxy ?? {}, issues: [], sourcePath: same, warnings: [] };
}

function fromNetwork(net: unknown, root: string, warnings: string[]): SelectedTable {
  if (net === undefined) return { raw: {}, issues: [], sourcePath: same, warnings };
  if (!isTable(net)) return { raw: {}, issues: [{ path: root, message: "expected a table" }], sourcePath: same, warnings };
  const t = translateNetwork(net, root);
  return { raw: t.table, issues: t.issues, sourcePath: t.sourcePath, warnings };
}
