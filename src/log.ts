/**
 * Logging to stderr only (SPEC-network §9, SPEC §1.1: nothing on stdout). Text lines by
 * default, JSON lines with `format: "json"`. Callers never pass secrets or query strings.
 *
 * Every line carries the time it was written, in UTC, as RFC 3339 with milliseconds
 * (`2026-12-02T19:54:17.123Z`): first on a text line, `event.timestamp` (the OpenTelemetry
 * log attribute name) first in a JSON object. Operators correlate these lines with other
 * services' logs, so local time or a relative clock would not do.
 */
import { writeSync } from "node:fs";

export type LogLevel = "error" | "warn" | "info" | "debug";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** Whether a line at `level` would be written (lets a hot path skip building its fields). */
  enabled(level: LogLevel): boolean;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Parse a `--log-level` value; throws on anything else. */
export function parseLogLevel(s: string): LogLevel {
  const v = s.toLowerCase();
  if (v in RANK) return v as LogLevel;
  throw new Error(`invalid log level: ${s} (expected error, warn, info or debug)`);
}

/**
 * A sink writing to stderr in batches: lines written during one turn of the event loop leave
 * in one write (setImmediate), or at once past 64 KiB. One write per line to a pipe cost
 * ~30 µs per line (measured with journald-like pipes; an access line per request doubled the
 * responses proxy's CPU per request). Lines still pending when the process exits are written
 * synchronously from the `exit` event, so `process.exit()` after a log call loses nothing.
 */
export function batchedStderr(write: (text: string) => void = (t) => void process.stderr.write(t)): (line: string) => void {
  let pending = "";
  const flush = () => {
    if (pending === "") return;
    const text = pending;
    pending = "";
    process.off("exit", flushSync);
    write(text);
  };
  const flushSync = () => {
    if (pending === "") return;
    const text = pending;
    pending = "";
    try {
      writeSync(2, text);
    } catch {
      // stderr closed: nothing left to tell.
    }
  };
  return (line) => {
    if (pending === "") {
      setImmediate(flush);
      process.once("exit", flushSync);
    }
    pending += line + "\n";
    if (pending.length > 65536) flush();
  };
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  format?: LogFormat;
  /** Lines below this level are dropped (default `info`). */
  level?: LogLevel;
  /** Where each line goes, without its newline (default: stderr). */
  sink?: (line: string) => void;
  /**
   * The clock, milliseconds since the Unix epoch (default `Date.now`); `null` leaves the
   * timestamp out (tests that compare whole lines).
   */
  now?: (() => number) | null;
}

/**
 * Create a logger writing one line per call to `sink` (default: stderr).
 * Text: `<RFC 3339 UTC> [LEVEL: ]<msg> key=value ...` (no level word for info);
 * JSON: `{"event.timestamp":…,"level":…,"msg":…,…fields}`.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? "text";
  const max = RANK[opts.level ?? "info"];
  const sink = opts.sink ?? batchedStderr();
  const now = opts.now === undefined ? Date.now : opts.now;
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] > max) return;
    const ts = now === null ? null : new Date(now()).toISOString();
    if (format === "json") {
      sink(JSON.stringify(ts === null ? { level, msg, ...fields } : { "event.timestamp": ts, level, msg, ...fields }));
      return;
    }
    let line = level === "info" ? msg : `${level.toUpperCase()}: ${msg}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        line += ` ${k}=${v}`;
      }
    }
    sink(ts === null ? line : `${ts} ${line}`);
  };
  return {
    error: (m, f) => emit("error", m, f),
    warn: (m, f) => emit("warn", m, f),
    info: (m, f) => emit("info", m, f),
    debug: (m, f) => emit("debug", m, f),
    enabled: (level) => RANK[level] <= max,
  };
}
