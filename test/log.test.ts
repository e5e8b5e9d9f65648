/**
 * Log lines (SPEC-network §9, issue 13): an RFC 3339 UTC timestamp first on every text line,
 * `event.timestamp` in every JSON line, levels filtered, `enabled()` agreeing with the filter.
 */
import { describe, expect, test } from "bun:test";
import { createLogger, type LogFormat, type LogLevel } from "../src/log.ts";

const T = Date.UTC(2026, 11, 2, 19, 54, 17, 123);

function capture(format: LogFormat, level: LogLevel = "info") {
  const lines: string[] = [];
  const log = createLogger({ format, level, sink: (l) => lines.push(l), now: () => T });
  return { log, lines };
}

describe("timestamps", () => {
  test("text: RFC 3339 UTC with milliseconds first, then the level word (none for info)", () => {
    const { log, lines } = capture("text");
    log.info("HTTP proxy listening on 127.0.0.1:3128");
    log.warn("careful", { "server.port": 80, skipped: undefined });
    log.error("broken", { a: "b" });
    expect(lines).toEqual([
      "2026-12-02T19:54:17.123Z HTTP proxy listening on 127.0.0.1:3128",
      "2026-12-02T19:54:17.123Z WARN: careful server.port=80",
      "2026-12-02T19:54:17.123Z ERROR: broken a=b",
    ]);
  });

  test("json: event.timestamp first, then level, msg and the fields", () => {
    const { log, lines } = capture("json");
    log.info("policy decision", { "event.name": "x", "server.port": 443 });
    expect(lines).toEqual([
      '{"event.timestamp":"2026-12-02T19:54:17.123Z","level":"info","msg":"policy decision","event.name":"x","server.port":443}',
    ]);
  });

  test("the default clock is the wall clock, in UTC", () => {
    const lines: string[] = [];
    const before = Date.now();
    createLogger({ sink: (l) => lines.push(l) }).info("x");
    const after = Date.now();
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) x$/.exec(lines[0]!);
    expect(m).not.toBeNull();
    const t = Date.parse(m![1]!);
    expect(t >= before && t <= after).toBe(true);
  });

  test("now: null leaves the timestamp out", () => {
    const lines: string[] = [];
    createLogger({ sink: (l) => lines.push(l), now: null }).info("x");
    expect(lines).toEqual(["x"]);
  });
});

describe("levels", () => {
  test("warn drops info and debug, and enabled() says so", () => {
    const { log, lines } = capture("text", "warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    expect(lines).toEqual(["2026-12-02T19:54:17.123Z WARN: w"]);
    expect([log.enabled("error"), log.enabled("warn"), log.enabled("info"), log.enabled("debug")]).toEqual([true, true, false, false]);
  });
});
