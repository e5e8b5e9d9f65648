/**
 * Policy decision throughput (SPEC-network §3): a 1,000-pattern allowlist mixing exact names,
 * `*.x`, `**.x` and mid-label globs, plus a 50-entry denylist; hosts mix hits (exact, deep
 * subdomains, apex, glob) and misses, in varied case with ports and trailing dots so the
 * normalisation path runs too. The resolver is stubbed to a public IP (no DNS traffic).
 *
 * Usage: bun scripts/bench-policy.ts [seconds=2]
 * Prints `policy decisions/s: N` on stdout (bounded: at most `seconds` and 20 M decisions).
 */
import { defaultConfig } from "../src/network/config.ts";
import { compilePolicy, evaluatePolicy, type PolicyState, type Resolver } from "../src/network/policy.ts";
import type { PolicyRequest, RuntimeConfig } from "../src/network/types.ts";

const seconds = Number(process.argv[2] ?? "2");
const MAX_DECISIONS = 20_000_000;

const allowed: string[] = [];
for (let i = 0; i < 400; i++) allowed.push(`host${i}.exact-${i % 37}.example`);
for (let i = 0; i < 300; i++) allowed.push(`*.sub${i}.example.com`);
for (let i = 0; i < 200; i++) allowed.push(`**.apex${i}.example.org`);
for (let i = 0; i < 100; i++) allowed.push(`region${i}-*.v${i % 7}.glob.example.net`);
const denied: string[] = [];
for (let i = 0; i < 50; i++) denied.push(i % 2 === 0 ? `bad${i}.example.com` : `*.evil${i}.example.org`);

const base = defaultConfig("/tmp");
const cfg: RuntimeConfig = { ...base, policy: { ...base.policy, allowedDomains: allowed, deniedDomains: denied } };
const policy = compilePolicy(cfg);

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

const answers = ["93.184.216.34"];
const resolver: Resolver = () => Promise.resolve(answers);
const state: PolicyState = { enabled: true, mode: "limited", mitmEnabled: false };

// Sanity: the table really mixes outcomes.
const tally = new Map<string, number>();
for (const r of requests) {
  const v = await evaluatePolicy(policy, state, r, resolver);
  const k = v.action === "deny" ? v.reason : v.action;
  tally.set(k, (tally.get(k) ?? 0) + 1);
}

console.error(`outcomes per ${requests.length} hosts: ${JSON.stringify(Object.fromEntries(tally))}`);

let n = 0;
const start = performance.now();
const deadline = start + seconds * 1000;
while (n < MAX_DECISIONS) {
  for (let i = 0; i < requests.length; i++) await evaluatePolicy(policy, state, requests[i], resolver);
  n += requests.length;
  if (performance.now() >= deadline) break;
}
const elapsed = (performance.now() - start) / 1000;
console.log(`policy decisions/s: ${Math.round(n / elapsed)}`);
