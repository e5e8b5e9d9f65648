/**
 * The targets of issue 15, checked against one run of `npm run bench` (same-run medians).
 * A target whose scenario or peer did not run is "not measured" (met: null).
 */
import type { MemoryRow, TargetCheck } from "./report.ts";
import { fmt } from "./report.ts";
import type { ContenderResult, ScenarioResult } from "./rounds.ts";

function find(results: ScenarioResult[], id: string, name: string): ContenderResult | null {
  return results.find((r) => r.id === id)?.results.find((x) => x.name === name && Number.isFinite(x.value.median)) ?? null;
}

/** ours ≥ factor × peer on the main figure, and (with `p99`) ours' p99 ≤ the peer's. */
function atLeast(results: ScenarioResult[], id: string, ours: string, peer: string, factor: number, p99: boolean): { met: boolean | null; detail: string } {
  const a = find(results, id, ours);
  const b = find(results, id, peer);
  if (!a || !b) return { met: null, detail: "not run" };
  const ratio = a.value.median / b.value.median;
  let met = ratio >= factor;
  let detail = `${fmt(ratio)}× ${peer}`;
  if (p99 && a.p99ms && b.p99ms) {
    met &&= a.p99ms.median <= b.p99ms.median;
    detail += `, p99 ${fmt(a.p99ms.median)} vs ${fmt(b.p99ms.median)} ms`;
  }
  return { met, detail };
}

export function checkTargets(results: ScenarioResult[], memory: MemoryRow[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const add = (target: string, r: { met: boolean | null; detail: string }) => checks.push({ target, ...r });
  add("CONNECT fresh connections/s ≥ squid, p99 no worse", atLeast(results, "connect-fresh", "ours", "squid", 1, true));
  add("SOCKS5 fresh connections/s ≥ microsocks, p99 no worse", atLeast(results, "socks5-fresh", "ours", "microsocks", 1, true));
  add("CONNECT throughput ≥ 0.9× socat", atLeast(results, "tunnel-throughput", "ours CONNECT", "socat", 0.9, false));
  add("SOCKS5 throughput ≥ 0.9× socat", atLeast(results, "tunnel-throughput", "ours SOCKS5", "socat", 0.9, false));
  const rps = atLeast(results, "responses-rps", "ours", "nginx (workers auto)", 1, true);
  const a = find(results, "responses-rps", "ours");
  const b = find(results, "responses-rps", "nginx (workers auto)");
  if (rps.met !== null && a?.cpu && b?.cpu) {
    rps.met &&= a.cpu.median <= b.cpu.median;
    rps.detail += `, CPU ${fmt(a.cpu.median)} vs ${fmt(b.cpu.median)} µs/req`;
  }
  add("responses ≥ 1.0× nginx (workers auto) req/s, p99 ≤, CPU/request ≤", rps);
  const ka = find(results, "mitm-keepalive", "ours");
  const kaPeer = find(results, "mitm-keepalive", "mitmproxy");
  if (ka && kaPeer) {
    const per = results.find((r) => r.id === "mitm-keepalive")!.ratios.find((q) => q.ours === "ours" && q.peer === "mitmproxy");
    const worst = per?.perRound?.min ?? ka.value.median / kaPeer.value.median;
    add("MITM keep-alive ≥ 10× mitmproxy in every round", { met: worst >= 10, detail: `${fmt(ka.value.median / kaPeer.value.median)}× (lowest round ${fmt(worst)}×)` });
  } else add("MITM keep-alive ≥ 10× mitmproxy in every round", { met: null, detail: "not run" });
  for (const name of ["ours responses", "ours network", "ours network (MITM)"]) {
    const s = find(results, "start", name);
    add(`start to listening ≤ 50 ms (${name})`, s ? { met: s.value.median <= 50, detail: `${fmt(s.value.median)} ms` } : { met: null, detail: "not run" });
  }
  for (const row of memory.filter((m) => m.name.startsWith("ours"))) {
    const peak = row.loadPeak;
    add(
      `peak RSS under the ${row.name.includes("MITM") ? "MITM keep-alive" : "64-connection"} load ≤ 64 MiB (${row.name})`,
      peak === null ? { met: null, detail: "not run" } : { met: peak <= 64, detail: `${fmt(peak)} MiB (after every scenario: ${fmt(row.peak)} MiB)` },
    );
    add(
      `idle anonymous memory ≤ 8 MiB (${row.name})`,
      row.idle === null ? { met: null, detail: "not run" } : { met: row.idle.anon <= 8, detail: `${fmt(row.idle.anon)} MiB anonymous, ${fmt(row.idle.file)} MiB file-backed` },
    );
  }
  return checks;
}
