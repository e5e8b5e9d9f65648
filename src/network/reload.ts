/**
 * Config reloading (SPEC-network §8). Three triggers — a change of the config file (a watch
 * on its folder plus an mtime/size/inode check, because editors replace files instead of
 * writing them in place), SIGHUP, and `POST /reload` — all call the one `reload()`.
 *
 * A reload loads and validates the file, then hands the new config to `apply` (which
 * recompiles the policy; the `/mode` override is dropped there). A failure of either step
 * logs the error and keeps the last good config; the error stays visible through
 * `lastError()` (shown by `/health` and `/config`) until a reload succeeds.
 * Reloads never overlap: a trigger during a reload queues exactly one more.
 */
import { statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "../log.ts";
import type { RuntimeConfig } from "./types.ts";
import type { ProxyMetrics } from "./metrics.ts";

/** What changed in the domain lists (configured strings). */
export interface ReloadDiff {
  allowed: { added: string[]; removed: string[] };
  denied: { added: string[]; removed: string[] };
}

/** Outcome of one reload. */
export type ReloadResult = { ok: true; trigger: string; diff: ReloadDiff } | { ok: false; trigger: string; error: string };

/** Options of {@link createReloader}. */
export interface ReloaderOptions {
  /** The config file (watched when `watch` is on). */
  file: string;
  /** Read and validate the file (CLI overrides included). Throws ConfigError. */
  load(): Promise<RuntimeConfig>;
  /** The config in force now (for the diff). */
  current(): RuntimeConfig;
  /** Install a new config. Throws to reject it (the old one stays). */
  apply(cfg: RuntimeConfig): void | Promise<void>;
  log: Logger;
  metrics?: ProxyMetrics;
  /** Watch the file (default true). */
  watch?: boolean;
  /** Re-check the file's stat this often as a fallback to the watch, ms (default 2000; 0 = never). */
  pollMs?: number;
  /** Wait this long after a file event before reloading, so an editor's multi-step save lands first, ms (default 50). */
  settleMs?: number;
  /** Reload on SIGHUP (default false; the server turns it on). */
  sighup?: boolean;
}

/** A running reloader. */
export interface Reloader {
  /** Reload now. `trigger` names the cause in the log (`sighup`, `admin`, `file`). Never throws. */
  reload(trigger?: string): Promise<ReloadResult>;
  /** Message of the last failed reload, or null when the last reload succeeded (or none ran). */
  lastError(): string | null;
  /** Subscribe to every finished reload; returns the unsubscribe function. */
  onReload(fn: (r: ReloadResult) => void): () => void;
  /** Stop watching, polling and listening for SIGHUP. */
  stop(): void;
}

/** Added/removed strings between two lists (order of `next`, duplicates collapsed). */
function listDiff(prev: string[], next: string[]): { added: string[]; removed: string[] } {
  const p = new Set(prev);
  const n = new Set(next);
  return { added: [...n].filter((x) => !p.has(x)), removed: [...p].filter((x) => !n.has(x)) };
}

/** The allow/deny diff between two configs. */
export function diffConfigs(prev: RuntimeConfig, next: RuntimeConfig): ReloadDiff {
  return {
    allowed: listDiff(prev.policy.allowedDomains, next.policy.allowedDomains),
    denied: listDiff(prev.policy.deniedDomains, next.policy.deniedDomains),
  };
}

/** File identity used to tell a real change from a spurious watch event. */
function fileStamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "missing";
  }
}

/** Start a reloader (watch + optional SIGHUP). Call `stop()` when done. */
export function createReloader(opts: ReloaderOptions): Reloader {
  const { log } = opts;
  const listeners = new Set<(r: ReloadResult) => void>();
  let lastError: string | null = null;
  let running: Promise<ReloadResult> | null = null;
  let queued: Promise<ReloadResult> | null = null;
  let stamp = fileStamp(opts.file);
  let stopped = false;

  const runOnce = async (trigger: string): Promise<ReloadResult> => {
    // Taken before reading so a write during the load triggers another reload.
    stamp = fileStamp(opts.file);
    let result: ReloadResult;
    try {
      const next = await opts.load();
      const diff = diffConfigs(opts.current(), next);
      await opts.apply(next);
      result = { ok: true, trigger, diff };
      lastError = null;
      log.info("config reloaded", {
        trigger,
        file: opts.file,
        "allowed.added": diff.allowed.added.length,
        "allowed.removed": diff.allowed.removed.length,
        "denied.added": diff.denied.added.length,
        "denied.removed": diff.denied.removed.length,
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      result = { ok: false, trigger, error: message };
      lastError = message;
      log.error(`config reload failed; keeping the last good config: ${message}`, { trigger, file: opts.file });
    }
    opts.metrics?.reload(result.ok);
    for (const fn of listeners) {
      try {
        fn(result);
      } catch {
        // A listener's fault is not the reload's.
      }
    }
    return result;
  };

  const reload = (trigger = "admin"): Promise<ReloadResult> => {
    if (!running) {
      running = runOnce(trigger).finally(() => {
        running = null;
      });
      return running;
    }
    // One reload at a time; triggers arriving meanwhile share one follow-up run.
    if (!queued) {
      queued = running.then(() => {
        queued = null;
        return reload(trigger);
      });
    }
    return queued;
  };

  let settleTimer: ReturnType<typeof setTimeout> | null = null;
  const checkFile = () => {
    if (stopped) return;
    if (fileStamp(opts.file) === stamp) return;
    void reload("file");
  };
  const onFileEvent = () => {
    if (stopped) return;
    if (settleTimer) clearTimeout(settleTimer);
    settleTimer = setTimeout(() => {
      settleTimer = null;
      checkFile();
    }, opts.settleMs ?? 50);
  };

  let watcher: FSWatcher | null = null;
  let poll: ReturnType<typeof setInterval> | null = null;
  if (opts.watch ?? true) {
    const name = basename(opts.file);
    try {
      // Watch the folder, not the file: an editor's save replaces the inode, which ends a file watch.
      watcher = watch(dirname(opts.file), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name) onFileEvent();
      });
      watcher.on("error", (err) => log.debug("config watch error", { error: err.message }));
    } catch (err) {
      log.debug("config folder not watchable; relying on the mtime check", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
    const pollMs = opts.pollMs ?? 2000;
    if (pollMs > 0) {
      poll = setInterval(checkFile, pollMs);
      poll.unref?.();
    }
  }

  const onHup = () => void reload("sighup");
  if (opts.sighup) process.on("SIGHUP", onHup);

  return {
    reload,
    lastError: () => lastError,
    onReload(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    stop() {
      stopped = true;
      watcher?.close();
      if (poll) clearInterval(poll);
      if (settleTimer) clearTimeout(settleTimer);
      if (opts.sighup) process.off("SIGHUP", onHup);
      listeners.clear();
    },
  };
}
