/**
 * Domain patterns that can never match (issue 13): a pattern is compared with a host name,
 * so a scheme (`https://example.com`), a path (`example.com/api`), userinfo
 * (`user@example.com`) or whitespace inside (`example .com`) makes it dead — and a dead
 * allowlist entry silently blocks, a dead denylist entry silently allows. Each is a config
 * error that says what to write instead. A `:port` is not judged here: it is part of the
 * pattern grammar (§3.2).
 */

/** `scheme://` at the start (RFC 3986 §3.1 scheme syntax). */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * The problem with the shape of `pattern` (already trimmed), or null. The message names
 * the pattern and the host form to write, e.g.
 * `domain pattern "https://api.example.com/v1" has a scheme and a path; patterns match host names: write "api.example.com"`.
 */
export function patternShapeProblem(pattern: string): string | null {
  let rest = pattern;
  const parts: string[] = [];
  const scheme = SCHEME.exec(rest);
  if (scheme) {
    parts.push("a scheme");
    rest = rest.slice(scheme[0].length);
  }
  const at = rest.lastIndexOf("@");
  const slash = rest.indexOf("/");
  if (at >= 0 && (slash < 0 || at < slash)) {
    parts.push("userinfo");
    rest = rest.slice(at + 1);
  }
  const pathStart = rest.indexOf("/");
  if (pathStart >= 0) {
    parts.push("a path");
    rest = rest.slice(0, pathStart);
  }
  if (/\s/.test(rest)) {
    parts.push("whitespace inside");
    rest = rest.replace(/\s+/g, "");
  }
  if (parts.length === 0) return null;
  const what = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
  const fix = rest === "" ? "" : `: write ${JSON.stringify(rest)}`;
  return `domain pattern ${JSON.stringify(pattern)} has ${what}; patterns match host names only${fix}`;
}
