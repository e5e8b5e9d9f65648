/**
 * Logging to stderr only (SPEC-network §9, SPEC §1.1: nothing on stdout). Text lines by
 * default, JSON lines with `format: "json"`. Callers never pass secrets or query strings.
 */
export type LogLevel = "error" | "warn" | "info" | "debug";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Parse a `--log-level` value; throws on anything else. */
export function parseLogLevel(s: string): LogLevel {
  const v = s.toLowerCase();
  if (v in RANK) return v as LogLevel;
  throw new Error(`invalid log level: ${s} (expected error, warn, info or debug)`);
}

/**
 * Create a logger writing one line per call to `sink` (default: stderr).
 * Text: `<msg> key=value ...`; JSON: `{"level":…,"msg":…,…fields}`.
 */
export function createLogger(
  opts: { format?: LogFormat; level?: LogLevel; sink?: (line: string) => void } = {},
): Logger {
  const format = opts.format ?? "text";
  const max = RANK[opts.level ?? "info"];
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] > max) return;
    if (format === "json") {
      sink(JSON.stringify({ level, msg, ...fields }));
      return;
    }
    let line = msg;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        line += ` ${k}=${v}`;
      }
    }
    sink(level === "info" ? line : `${level.toUpperCase()}: ${line}`);
  };
  return {
    error: (m, f) => emit("error", m, f),
    warn: (m, f) => emit("warn", m, f),
    info: (m, f) => emit("info", m, f),
    debug: (m, f) => emit("debug", m, f),
  };
}
