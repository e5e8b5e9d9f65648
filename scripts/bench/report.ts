/**
 * Rendering of `npm run bench` results as Markdown (pasted as is into the README): one table
 * per scenario with medians, spread (min–max over the rounds), p99 and CPU per unit, then the
 * ratios ours ÷ peer (ratio of the medians, and the median and spread of the per-round
 * ratios), then the memory table and the target checks.
 */
import type { ScenarioResult, Stat } from "./rounds.ts";

/** A figure with a precision that suits its size. */
export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

function spread(s: Stat | null): string {
  return s ? `${fmt(s.min)}–${fmt(s.max)}` : "–";
}

/** The Markdown of one scenario. */
export function renderScenario(r: ScenarioResult): string {
  const lines: string[] = [];
  const better = r.higherIsBetter ? "higher is better" : "lower is better";
  lines.push(`### ${r.title}`, "", `${r.unit}, ${better}; medians of ${r.rounds} rounds (order rotating), spread min–max`, "");
  const hasP99 = r.results.some((x) => x.p99ms);
  const hasCpu = r.results.some((x) => x.cpu);
  const head = ["contender", r.unit, "spread", ...(hasP99 ? ["p99 ms"] : []), ...(hasCpu ? [`CPU ${r.cpuUnit ?? ""}`.trim()] : []), "errors"];
  lines.push(`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`);
  for (const x of r.results) {
    const errs = x.errors + (x.failedRounds ? ` (${x.failedRounds} rounds failed)` : "");
    const row = [x.name, fmt(x.value.median), spread(x.value), ...(hasP99 ? [fmt(x.p99ms?.median)] : []), ...(hasCpu ? [fmt(x.cpu?.median)] : []), errs];
    lines.push(`| ${row.join(" | ")} |`);
  }
  for (const u of r.unavailable) {
    const row = [u.name, "unavailable", u.reason, ...(hasP99 ? [""] : []), ...(hasCpu ? [""] : []), ""];
    lines.push(`| ${row.join(" | ")} |`);
  }
  if (r.ratios.length) {
    lines.push("");
    for (const q of r.ratios) {
      const parts = [`**${fmt(q.ofMedians)}×**`];
      if (q.perRound) parts.push(`per round ${fmt(q.perRound.median)}× (${spread(q.perRound)})`);
      if (q.p99 !== null) parts.push(`p99 ${fmt(q.p99)}×`);
      if (q.cpu !== null) parts.push(`CPU ${fmt(q.cpu)}×`);
      lines.push(`- ${q.ours} ÷ ${q.peer}: ${parts.join(", ")}`);
    }
  }
  return lines.join("\n");
}

/** One row of the memory table: a contender's idle memory (medians of the starts) and peak. */
export interface MemoryRow {
  name: string;
  idle: { rss: number; anon: number; file: number; private: number } | null;
  /**
   * VmHWM right after the scenario that loads the instance with `--connections` connections
   * (responses: responses-rps; network: forward-rps; MITM: mitm-keepalive), MiB.
   */
  loadPeak: number | null;
  /** VmHWM of the long-running instance after every scenario, MiB (summed over its processes). */
  peak: number | null;
}

export function renderMemory(rows: MemoryRow[]): string {
  const lines = [
    "### memory (MiB): idle = 1 s after start, medians of the starts; peak = VmHWM",
    "",
    "peak under load: after responses-rps (responses proxy, nginx), forward-rps (network), mitm-keepalive (MITM); " +
      "peak after all: after every scenario (1 GiB tunnels included)",
    "",
    "| process | idle RSS | idle anonymous | idle file-backed | idle private | peak under load | peak after all |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const idle = [r.idle?.rss, r.idle?.anon, r.idle?.file, r.idle?.private].map(fmt).join(" | ");
    lines.push(`| ${r.name} | ${idle} | ${fmt(r.loadPeak)} | ${fmt(r.peak)} |`);
  }
  return lines.join("\n");
}

/** A target of issue 15 and whether this run met it. */
export interface TargetCheck {
  target: string;
  met: boolean | null;
  detail: string;
}

export function renderTargets(checks: TargetCheck[]): string {
  const lines = ["### targets", "", "| target | this run | met |", "| --- | --- | --- |"];
  for (const c of checks) lines.push(`| ${c.target} | ${c.detail} | ${c.met === null ? "not measured" : c.met ? "yes" : "**no**"} |`);
  return lines.join("\n");
}
