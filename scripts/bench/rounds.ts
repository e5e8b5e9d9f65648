/**
 * The round engine of `npm run bench`: every contender of a scenario runs once per round, the
 * order rotating by one each round (so drift and other load on the machine hit every
 * contender alike), and the result of each contender is the median over the rounds with its
 * spread (min–max). Ratios are taken round by round (ours ÷ peer in the same round) and
 * reported as their median and spread, next to the ratio of the medians.
 */
import { median } from "./tools.ts";

/** One measurement of one contender. `value` is the scenario's main figure. */
export interface Sample {
  value: number;
  /** 99th percentile latency, ms, when the scenario measures one. */
  p99ms?: number;
  /** CPU the contender's processes spent per unit of work (µs per request / per MiB). */
  cpu?: number;
  errors?: number;
}

export interface Contender {
  name: string;
  run(): Promise<Sample>;
}

/** A contender that could not run (missing binary, failed start). */
export interface Unavailable {
  name: string;
  reason: string;
}

export interface ScenarioDef {
  id: string;
  title: string;
  /** Unit of `value`, e.g. "req/s", "MiB/s", "ms". */
  unit: string;
  higherIsBetter: boolean;
  /** Unit of `cpu`, e.g. "µs/req". */
  cpuUnit?: string;
  contenders: Contender[];
  unavailable: Unavailable[];
  /** [ours, peer] names whose ratio is reported. */
  ratios: Array<[string, string]>;
}

/** Median and spread of a list of figures. */
export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface ContenderResult {
  name: string;
  value: Stat;
  p99ms: Stat | null;
  cpu: Stat | null;
  errors: number;
  /** Rounds whose run threw (the figure is missing for that round). */
  failedRounds: number;
  samples: Array<Sample | null>;
}

export interface RatioResult {
  ours: string;
  peer: string;
  /** ours ÷ peer of the medians of `value`. */
  ofMedians: number;
  /** ours ÷ peer round by round: median and spread. */
  perRound: Stat | null;
  /** ours ÷ peer of the p99 medians (< 1: ours lower), when both have one. */
  p99: number | null;
  /** ours ÷ peer of the CPU medians (< 1: ours cheaper), when both have one. */
  cpu: number | null;
}

export interface ScenarioResult {
  id: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  cpuUnit?: string;
  rounds: number;
  results: ContenderResult[];
  unavailable: Unavailable[];
  ratios: RatioResult[];
}

/** Median and spread; null for an empty list. */
export function stat(xs: number[]): Stat | null {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return null;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok) };
}

/** The order of round `r`: the contenders rotated left by `r`. */
export function rotation<T>(xs: T[], r: number): T[] {
  return xs.map((_, i) => xs[(i + r) % xs.length]!);
}

/**
 * Run `def` for `rounds` rounds. `log` gets one line per measurement (progress on stderr).
 * A contender whose run throws gets no figure for that round; it never stops the others.
 */
export async function runScenario(def: ScenarioDef, rounds: number, log: (line: string) => void): Promise<ScenarioResult> {
  const samples = new Map<string, Array<Sample | null>>(def.contenders.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of rotation(def.contenders, r)) {
      let s: Sample | null = null;
      try {
        s = await c.run();
        log(`${def.id} round ${r + 1}/${rounds} ${c.name}: ${s.value.toFixed(2)} ${def.unit}`);
      } catch (e) {
        log(`${def.id} round ${r + 1}/${rounds} ${c.name}: failed: ${e instanceof Error ? e.message : e}`);
      }
      samples.get(c.name)!.push(s);
    }
  }
  const results: ContenderResult[] = def.contenders.map((c) => {
    const xs = samples.get(c.name)!;
    const ok = xs.filter((x): x is Sample => x !== null);
    return {
      name: c.name,
      value: stat(ok.map((x) => x.value)) ?? { median: NaN, min: NaN, max: NaN },
      p99ms: stat(ok.flatMap((x) => (x.p99ms === undefined ? [] : [x.p99ms]))),
      cpu: stat(ok.flatMap((x) => (x.cpu === undefined ? [] : [x.cpu]))),
      errors: ok.reduce((a, x) => a + (x.errors ?? 0), 0),
      failedRounds: xs.length - ok.length,
      samples: xs,
    };
  });
  const byName = new Map(results.map((r) => [r.name, r]));
  const ratios: RatioResult[] = [];
  for (const [ours, peer] of def.ratios) {
    const a = byName.get(ours);
    const b = byName.get(peer);
    if (!a || !b) continue;
    const perRound: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const x = a.samples[r];
      const y = b.samples[r];
      if (x && y && y.value > 0) perRound.push(x.value / y.value);
    }
    ratios.push({
      ours,
      peer,
      ofMedians: a.value.median / b.value.median,
      perRound: stat(perRound),
      p99: a.p99ms && b.p99ms ? a.p99ms.median / b.p99ms.median : null,
      cpu: a.cpu && b.cpu ? a.cpu.median / b.cpu.median : null,
    });
  }
  return {
    id: def.id,
    title: def.title,
    unit: def.unit,
    higherIsBetter: def.higherIsBetter,
    cpuUnit: def.cpuUnit,
    rounds,
    results,
    unavailable: def.unavailable,
    ratios,
  };
}
