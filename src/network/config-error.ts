/**
 * `ConfigError`, the one error type of config loading (SPEC-network §1/§2). Its own module so
 * the pattern compiler, the listener-address parser and the config loader can all throw it
 * without import cycles. Re-exported by `config.ts`.
 */

/** One validation problem: a dotted key path (`network_proxy.policy.allowed_domains[2]`) and text. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/**
 * A config that cannot be used. `message` is ready for people: `<file>: <key path>: <problem>`,
 * one line per issue; `issues` holds the same as data. Thrown by `parseConfig`/`loadConfig`,
 * by `compilePatterns` (bare `invalid glob pattern: <p>`) and by `parseListenAddress`
 * (`missing host in network proxy address: <input>`).
 */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: ConfigIssue[] = [],
  ) {
    super(message);
    this.name = "ConfigError";
  }
}
