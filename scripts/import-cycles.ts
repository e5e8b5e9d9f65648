/**
 * Import cycles among a folder's `.ts` files (relative imports and re-exports, type-only ones
 * included: a cycle of types still means a folder cannot be read bottom-up). The TypeScript
 * twin of ../shared/tools/import_cycles.py, kept in the repository so CI needs nothing beside
 * the clone; `test/import-cycles.test.ts` runs it on `src/` so any cycle fails the suite.
 *
 *   bun scripts/import-cycles.ts [SRC_DIR]   (default ./src)
 *
 * Prints `cycle: a <-> b <-> …` per strongly connected component, then `N cycles`; exits 1
 * when there is any.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const IMPORT = /(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gs;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** The import graph of `src`: absolute file → files it imports (relative specifiers only). */
export function importGraph(src: string): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of tsFiles(resolve(src))) {
    const deps = new Set<string>();
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const t = resolve(dirname(file), m[1]!);
      for (const cand of [t, `${t}.ts`, join(t, "index.ts")]) {
        if (existsSync(cand) && statSync(cand).isFile()) {
          deps.add(cand);
          break;
        }
      }
    }
    graph.set(file, deps);
  }
  return graph;
}

/**
 * Strongly connected components with more than one file (or a file importing itself), each
 * as sorted paths relative to `src`'s parent, components sorted by their first path
 * (Tarjan's algorithm, iterative).
 */
export function findImportCycles(src: string): string[][] {
  const graph = importGraph(src);
  const base = dirname(resolve(src));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  for (const root of graph.keys()) {
    if (index.has(root)) continue;
    // Explicit DFS stack of [node, iterator over its deps].
    const work: Array<[string, Iterator<string>]> = [];
    const enter = (v: string) => {
      index.set(v, counter);
      low.set(v, counter);
      counter++;
      stack.push(v);
      onStack.add(v);
      work.push([v, (graph.get(v) ?? new Set<string>()).values()]);
    };
    enter(root);
    while (work.length > 0) {
      const [v, it] = work[work.length - 1]!;
      const next = it.next();
      if (!next.done) {
        const w = next.value;
        if (!index.has(w)) enter(w);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]![0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const comp: string[] = [];
        for (;;) {
          const w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
          if (w === v) break;
        }
        if (comp.length > 1 || graph.get(v)?.has(v)) cycles.push(comp.map((f) => relative(base, f)).sort());
      }
    }
  }
  return cycles.sort((x, y) => (x[0]! < y[0]! ? -1 : x[0]! > y[0]! ? 1 : 0));
}

if (import.meta.main) {
  const cycles = findImportCycles(process.argv[2] ?? "src");
  for (const c of cycles) console.log(`cycle: ${c.join(" <-> ")}`);
  console.log(`${cycles.length} cycles`);
  process.exit(cycles.length > 0 ? 1 : 0);
}
