/**
 * Codex's current network config shapes (SPEC-network §11, beyond the seed), turned into the
 * `[network_proxy]` table of §2 so one schema validates every shape:
 * - a JSON file `{"network":{…}}` (the reference's standalone binary);
 * - `[permissions.<profile>.network]` of a `config.toml`, chosen with `--profile NAME`.
 *
 * The `network` object is flat: the §2 top-level keys (`enabled`, `mode`, `proxy_url`, …),
 * the §2 policy keys (`allowed_domains`, `denied_domains`, `allow_local_binding`,
 * `allow_unix_sockets`), plus `domains = {"<pattern>" = "allow" | "deny"}` (appended to the
 * lists), `unix_sockets = {"<path>" = "allow"}` and `mitm` as a bool (= `mitm.enabled`) or
 * the §2 table. Unknown keys are errors. Problems name the key as the user wrote it
 * (`network.domains."*.example.com"`), never the translated `network_proxy…` path.
 */
import type { ConfigIssue } from "../config-error.ts";

/** Keys copied as they are to the top of the `[network_proxy]` table. */
const TOP_KEYS = new Set([
  "enabled",
  "proxy_url",
  "admin_url",
  "enable_socks5",
  "socks_url",
  "enable_socks5_udp",
  "allow_upstream_proxy",
  "dangerously_allow_non_loopback_proxy",
  "dangerously_allow_non_loopback_admin",
  "mode",
  "admin_token_file",
]);
/** Keys that move into `policy`. */
const POLICY_KEYS = new Set(["allowed_domains", "denied_domains", "allow_local_binding", "allow_unix_sockets"]);

/** A translated table and how to name its problems in the source's terms. */
export interface TranslatedTable {
  /** The `[network_proxy]`-shaped object (validate with `networkProxySchema`). */
  table: Record<string, unknown>;
  /** Problems found while translating (bad `domains` values, unknown keys, wrong types). */
  issues: ConfigIssue[];
  /** Map a rendered `network_proxy…` path of a schema problem to the source's key path. */
  sourcePath(tablePath: string): string;
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** A TOML key path segment: bare when it can be, else a quoted key. */
export function keySegment(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

/**
 * Translate a flat `network` object found at `root` (e.g. `network`,
 * `permissions.dev.network`). Never throws; type problems of the values are left to the
 * schema, and come back through `sourcePath`.
 */
export function translateNetwork(net: Record<string, unknown>, root: string): TranslatedTable {
  const issues: ConfigIssue[] = [];
  const table: Record<string, unknown> = {};
  const policy: Record<string, unknown> = {};
  /** Source path of each list element: `network_proxy.policy.<list>[i]` → where it came from. */
  const listSources: Record<string, string[]> = { allowed_domains: [], denied_domains: [], allow_unix_sockets: [] };
  const lists: Record<string, unknown[]> = { allowed_domains: [], denied_domains: [], allow_unix_sockets: [] };
  let mitmIsBool = false;

  for (const [key, value] of Object.entries(net)) {
    const at = `${root}.${keySegment(key)}`;
    if (TOP_KEYS.has(key)) table[key] = value;
    else if (key === "allow_local_binding") policy[key] = value;
    else if (POLICY_KEYS.has(key)) {
      if (!Array.isArray(value)) {
        policy[key] = value; // the schema reports the type
        continue;
      }
      value.forEach((v, i) => {
        lists[key]!.push(v);
        listSources[key]!.push(`${at}[${i}]`);
      });
    } else if (key === "domains" || key === "unix_sockets") {
      if (!isTable(value)) {
        issues.push({ path: at, message: "expected a table of \"<pattern>\" = \"allow\" | \"deny\"" });
        continue;
      }
      for (const [entry, verdict] of Object.entries(value)) {
        const entryAt = `${at}.${keySegment(entry)}`;
        const allowed = key === "domains" ? ["allow", "deny"] : ["allow"];
        if (typeof verdict !== "string" || !allowed.includes(verdict)) {
          issues.push({ path: entryAt, message: `expected ${allowed.map((a) => JSON.stringify(a)).join(" or ")}, got ${JSON.stringify(verdict)}` });
          continue;
        }
        const list = key === "unix_sockets" ? "allow_unix_sockets" : verdict === "allow" ? "allowed_domains" : "denied_domains";
        lists[list]!.push(entry);
        listSources[list]!.push(entryAt);
      }
    } else if (key === "mitm") {
      if (typeof value === "boolean") {
        table.mitm = { enabled: value };
        mitmIsBool = true;
      } else table.mitm = value;
    } else issues.push({ path: at, message: "unknown key" });
  }
  for (const [list, items] of Object.entries(lists)) if (items.length > 0 || policy[list] === undefined) policy[list] = items;
  table.policy = policy;

  const sourcePath = (p: string): string => {
    const m = /^network_proxy\.policy\.(allowed_domains|denied_domains|allow_unix_sockets)\[(\d+)\](.*)$/.exec(p);
    if (m) return (listSources[m[1]!]![Number(m[2])] ?? `${root}.${m[1]}`) + m[3];
    if (p.startsWith("network_proxy.policy.")) return `${root}.${p.slice("network_proxy.policy.".length)}`;
    if (mitmIsBool && p.startsWith("network_proxy.mitm")) return `${root}.mitm`;
    if (p === "network_proxy") return root;
    return p.startsWith("network_proxy.") ? `${root}.${p.slice("network_proxy.".length)}` : p;
  };
  return { table, issues, sourcePath };
}
