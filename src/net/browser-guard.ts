/**
 * Is this request from a web browser? Both products refuse browsers (SPEC §1.4 and
 * SPEC-network §7, beyond): a web page the user opens can send a CORS "simple request"
 * (`text/plain` POST, `<img src>` GET) to a loopback port without any preflight, and after DNS
 * rebinding (`Host: evil.example:<port>`) it can even read the answer. The non-browser clients
 * these listeners serve (the Codex CLI, the OpenAI SDKs, curl, scripts) send none of the
 * signals checked here.
 */

/**
 * The three header values a browser gives itself away with (null when the field is absent).
 * `secFetchSite` is the Fetch Metadata header every current browser sends (W3C Fetch
 * Metadata); `none` means the user typed the URL, which is no attack.
 */
export interface BrowserSignals {
  origin: string | null;
  secFetchSite: string | null;
  host: string | null;
}

/**
 * True when the request must be refused as coming from a browser: it carries `Origin`, or a
 * `Sec-Fetch-Site` other than `none`, or (when `checkHost`) a `Host` whose name is not a
 * loopback name (`localhost`, `127.x.x.x`, `[::1]`; any port). A request without `Host`
 * (HTTP/1.0) passes the Host rule.
 */
export function isBrowserRequest(h: BrowserSignals, checkHost = true): boolean {
  if (h.origin !== null) return true;
  if (h.secFetchSite !== null && h.secFetchSite.trim().toLowerCase() !== "none") return true;
  return checkHost && h.host !== null && !isLoopbackHostHeader(h.host);
}

const DOTTED_LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const PORT = /^\d{1,5}$/;

/**
 * Is `host` (a Host field value: `name`, `name:port`, `[v6]`, `[v6]:port`) a loopback name
 * or literal? Names compare case-insensitively (RFC 9110 §4.2.3); a port must be digits.
 */
export function isLoopbackHostHeader(host: string): boolean {
  const value = host.trim().toLowerCase();
  let name: string;
  let port = "";
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    if (end < 0) return false;
    name = value.slice(1, end);
    const rest = value.slice(end + 1);
    if (rest !== "") {
      if (rest[0] !== ":") return false;
      port = rest.slice(1);
    }
    return name === "::1" && (port === "" || PORT.test(port));
  }
  const colon = value.indexOf(":");
  if (colon >= 0) {
    name = value.slice(0, colon);
    port = value.slice(colon + 1);
    if (!PORT.test(port)) return false;
  } else name = value;
  return name === "localhost" || DOTTED_LOOPBACK.test(name);
}
