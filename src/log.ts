/**
 * Logging to stderr only (SPEC-network §9, SPEC §1.1: nothing on stdout). Text lines by
 * default, JSON lines with `format: "json"`. Callers never pass secrets or query strings.
 *
 * Every line carries the time it was written, in UTC, as RFC 3339 with milliseconds
 * (`2026-12-02T19:54:17.123Z`): first on a text line, `event.timestamp` (the OpenTelemetry
 * log attribute name) first in a JSON object. Operators correlate these lines with other
 * services' logs, so local time or a relative clock would not do.
 */
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
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + "\n"));
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
