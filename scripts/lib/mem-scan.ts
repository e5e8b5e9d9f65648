/**
 * Scanning a live process's memory for a secret, for scripts/key-copies.ts: every readable
 * region of /proc/<pid>/maps, resident or swapped pages only (from /proc/<pid>/pagemap)
 * unless a full scan is asked for. Needs root for a non-dumpable process.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";

/** One readable mapping of /proc/<pid>/maps. */
export interface Region {
  start: number;
  end: number;
  perms: string;
  name: string;
}

export function readableRegions(pid: number): Region[] {
  const out: Region[] = [];
  for (const line of readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
    const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/);
    if (!m || m[3]![0] !== "r") continue;
    // [vvar]/[vvar_vclock] pages fault on read; [vsyscall] is outside the process's memory.
    if (m[4]!.startsWith("[vvar") || m[4] === "[vsyscall]") continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, name: m[4]! });
  }
  return out;
}

const PAGE = 4096;

/**
 * Runs of pages of `region` that hold data: present in RAM or swapped out, from
 * /proc/<pid>/pagemap (bit 63 present, bit 62 swapped). Pages that were never touched read
 * as zeros and cannot hold a copy; skipping them turns a scan of several GB of reserved
 * JavaScriptCore address space into a scan of the resident set.
 */
function dataRuns(pagemapFd: number, region: Region): Array<[number, number]> {
  const pages = (region.end - region.start) / PAGE;
  const runs: Array<[number, number]> = [];
  const BATCH = 64 * 1024;
  const entries = Buffer.alloc(BATCH * 8);
  let runStart = -1;
  for (let first = 0; first < pages; first += BATCH) {
    const count = Math.min(BATCH, pages - first);
    const n = readSync(pagemapFd, entries, 0, count * 8, ((region.start / PAGE + first) * 8));
    for (let i = 0; i < count; i++) {
      const used = i * 8 < n && (entries.readUInt32LE(i * 8 + 4) & 0xc0000000) !== 0;
      const addr = region.start + (first + i) * PAGE;
      if (used && runStart < 0) runStart = addr;
      if (!used && runStart >= 0) {
        runs.push([runStart, addr]);
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) runs.push([runStart, region.end]);
  return runs;
}

/** Occurrences of `needle` in the process's readable memory, with where they are. */
export function scan(pid: number, needle: Buffer, full = false): Array<{ address: number; region: Region }> {
  const hits: Array<{ address: number; region: Region }> = [];
  const fd = openSync(`/proc/${pid}/mem`, "r");
  const pagemap = openSync(`/proc/${pid}/pagemap`, "r");
  const CHUNK = 4 * 1024 * 1024;
  const buf = Buffer.alloc(CHUNK + needle.length);
  try {
    for (const region of readableRegions(pid)) {
      const runs: Array<[number, number]> = full ? [[region.start, region.end]] : dataRuns(pagemap, region);
      for (const [runStart, runEnd] of runs) {
        // Chunks overlap by needle.length - 1 bytes so a copy across a chunk edge is found.
        for (let pos = runStart; pos < runEnd; ) {
          const want = Math.min(CHUNK + needle.length - 1, runEnd - pos);
          let n: number;
          try {
            n = readSync(fd, buf, 0, want, pos);
          } catch {
            break; // unreadable (e.g. a guard page the kernel refuses): skip the rest of the run
          }
          if (n <= 0) break;
          const view = buf.subarray(0, n);
          for (let i = view.indexOf(needle); i >= 0; i = view.indexOf(needle, i + 1)) hits.push({ address: pos + i, region });
          if (pos + n >= runEnd) break;
          pos += Math.min(CHUNK, n);
        }
      }
    }
  } finally {
    closeSync(fd);
    closeSync(pagemap);
  }
  // Overlapping chunk edges can report a copy twice; dedupe by address.
  return [...new Map(hits.map((h) => [h.address, h])).values()];
}


/** The two encodings JavaScriptCore stores strings in: Latin-1 when it can, UTF-16 otherwise. */
export function needles(secret: string): Array<{ enc: "latin1" | "utf16le"; bytes: Buffer }> {
  return [
    { enc: "latin1", bytes: Buffer.from(secret, "latin1") },
    { enc: "utf16le", bytes: Buffer.from(secret, "utf16le") },
  ];
}

/** Occurrences of `secret` (both encodings) in the memory of `pid`. */
export function countCopies(pid: number, secret: string, full = false): number {
  return needles(secret).reduce((n, x) => n + scan(pid, x.bytes, full).length, 0);
}
