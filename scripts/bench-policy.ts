/**
 * Policy decision throughput (SPEC-network §3): a 1,000-pattern allowlist mixing exact names,
 * `*.x`, `**.x` and mid-label globs, plus a 50-entry denylist; hosts mix hits (exact, deep
 * subdomains, apex, glob) and misses, in varied case with ports and trailing dots so the
 * normalisation path runs too. The resolver is stubbed to a public IP (no DNS traffic).
 *
 * The same request table runs twice in one process, side by side: with no MITM hooks, and
 * with 100 hooks (SPEC-network §10: host patterns among the allowed names, methods, path
 * prefixes, a query and a header rule); with hooks, one request in eight is a decrypted
 * request (`https`) to a hooked host whose path, query and headers are matched.
 *
 * Usage: bun scripts/bench-policy.ts [seconds=2]
 * Prints `policy decisions/s: N` (no hooks), `policy decisions/s with 100 hooks: N` and their
 * ratio on stdout: medians of 5 alternating rounds, each table bounded to `seconds` and 20 M
 * decisions in all.
 */
import { defaultConfig } from "../src/network/config.ts";
import { compilePolicy, evaluatePolicy, type PolicyState, type Resolver } from "../src/network/policy.ts";
import type { PolicyRequest, RuntimeConfig } from "../src/network/types.ts";
import type { HookSpec } from "../src/network/hooks/spec.ts";
import type { CompiledPolicy } from "../src/network/policy.ts";
import { median } from "./bench/tools.ts";

const seconds = Number(process.argv[2] ?? "2");
const MAX_DECISIONS = 20_000_000;

const allowed: string[] = [];
for (let i = 0; i < 400; i++) allowed.push(`host${i}.exact-${i % 37}.example`);
for (let i = 0; i < 300; i++) allowed.push(`*.sub${i}.example.com`);
for (let i = 0; i < 200; i++) allowed.push(`**.apex${i}.example.org`);
for (let i = 0; i < 100; i++) allowed.push(`region${i}-*.v${i % 7}.glob.example.net`);
const denied: string[] = [];
for (let i = 0; i < 50; i++) denied.push(i % 2 === 0 ? `bad${i}.example.com` : `*.evil${i}.example.org`);

const HOOKS = 100;
const ROUNDS = 5;
const hooks: HookSpec[] = [];
for (let i = 0; i < HOOKS; i++) {
  hooks.push({
    name: `hook${i}`,
    host: i % 2 === 0 ? `host${i}.exact-${i % 37}.example:443` : `**.apex${i}.example.org`,
    match: {
      methods: ["GET", "POST"],
      pathPrefixes: [`/repos/org${i}/`, `/orgs/org${i}/`],
      query: i % 4 === 0 ? [["per_page", [{ kind: "literal", value: "100" }, { kind: "pattern", glob: "[0-9]" }]]] : [],
      headers: i % 4 === 1 ? [["x-api-version", [{ kind: "literal", value: "2022-11-28" }]]] : [],
    },
    actions: { stripRequestHeaders: ["cookie"], injectRequestHeaders: [] },
  });
}

const base = defaultConfig("/tmp");
const cfg: RuntimeConfig = { ...base, policy: { ...base.policy, allowedDomains: allowed, deniedDomains: denied } };
const policy = compilePolicy(cfg);
const hookedPolicy = compilePolicy({ ...cfg, mitm: { ...cfg.mitm, enabled: true, hooks } });

const hosts: string[] = [];
for (let i = 0; i < 1000; i++) {
  switch (i % 8) {
    case 0:
      hosts.push(`host${i % 400}.exact-${i % 400 % 37}.example`); // exact hit
      break;
    case 1:
      hosts.push(`API.a.b.sub${i % 300}.Example.com.:443`); // *.x hit, deep, case + port + dot
      break;
    case 2:
      hosts.push(`apex${i % 200}.example.org`); // **.x apex hit
      break;
    case 3:
      hosts.push(`region${i % 100}-eu1.v${i % 100 % 7}.glob.example.net`); // glob hit
      break;
    case 4:
      hosts.push(`sub${i % 300}.example.com`); // *.x apex: miss
      break;
    case 5:
      hosts.push(`unknown-${i}.somewhere.test`); // miss
      break;
    case 6:
      hosts.push(`x.evil${(i % 25) * 2 + 1}.example.org`); // denied
      break;
    default:
      hosts.push(`203.0.113.${i % 250}`); // local literal (TEST-NET-3): not_allowed_local
  }
}
const requests: PolicyRequest[] = hosts.map((host, i) => ({
  protocol: "http",
  host,
  port: 443,
  method: i % 3 === 0 ? "POST" : "GET",
  client: "127.0.0.1:40000",
}));

// With hooks: every eighth request becomes a decrypted request to a hooked host (half match).
const hookedRequests: PolicyRequest[] = requests.map((r, i) =>
  i % 8 === 0
    ? {
        protocol: "https",
        host: `host${i % 100}.exact-${i % 100 % 37}.example`,
        port: 443,
        method: "GET",
        target: i % 16 === 0 ? `/repos/org${i % 100}/x?per_page=100` : `/repos/other/x`,
        headers: [["host", "h"], ["x-api-version", "2022-11-28"], ["accept", "*/*"]],
        client: r.client,
      }
    : r,
);

const answers = ["93.184.216.34"];
const resolver: Resolver = () => Promise.resolve(answers);
const state: PolicyState = { enabled: true, mode: "limited", mitmEnabled: false };
// Same mode as the plain run (only the hooks differ); MITM on, as hooks require.
const hookedState: PolicyState = { enabled: true, mode: "limited", mitmEnabled: true };

async function tallyOf(p: CompiledPolicy, st: PolicyState, reqs: PolicyRequest[]): Promise<string> {
  const tally = new Map<string, number>();
  for (const r of reqs) {
    const v = await evaluatePolicy(p, st, r, resolver);
    const k = v.action === "deny" ? v.reason : v.action === "allow" && v.hook ? "allow+hook" : v.action;
    tally.set(k, (tally.get(k) ?? 0) + 1);
  }
  return JSON.stringify(Object.fromEntries(tally));
}

/** Decisions per second of `reqs` under `p` in one round (`seconds` / 5, at most MAX_DECISIONS / 5). */
async function measure(p: CompiledPolicy, st: PolicyState, reqs: PolicyRequest[]): Promise<number> {
  let n = 0;
  const start = performance.now();
  const deadline = start + (seconds * 1000) / ROUNDS;
  while (n < MAX_DECISIONS / ROUNDS) {
    for (let i = 0; i < reqs.length; i++) await evaluatePolicy(p, st, reqs[i], resolver);
    n += reqs.length;
    if (performance.now() >= deadline) break;
  }
  return Math.round(n / ((performance.now() - start) / 1000));
}

// Sanity: the tables really mix outcomes.
console.error(`outcomes per ${requests.length} hosts: ${await tallyOf(policy, state, requests)}`);
console.error(`with ${HOOKS} hooks: ${await tallyOf(hookedPolicy, hookedState, hookedRequests)}`);

// Alternate short rounds of both so load changes on a shared machine hit them alike; report medians.
const plainRuns: number[] = [];
const hookRuns: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  plainRuns.push(await measure(policy, state, requests));
  hookRuns.push(await measure(hookedPolicy, hookedState, hookedRequests));
}
const plain = median(plainRuns);
const withHooks = median(hookRuns);
console.log(`policy decisions/s: ${plain}`);
console.log(`policy decisions/s with ${HOOKS} hooks: ${withHooks}`);
console.log(`ratio with/without hooks: ${(withHooks / plain).toFixed(2)}`);
