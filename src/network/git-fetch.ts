/**
 * Git's smart-HTTP fetch is a read (beyond, SPEC-network §11 "exec"): `git clone`/`fetch`/
 * `pull` over https negotiate with `POST <repo>/git-upload-pack` and
 * `Content-Type: application/x-git-upload-pack-request` (gitprotocol-http(5), protocol v0
 * and v2 alike). `git-upload-pack` only sends objects; it never changes the repository, so
 * limited (read-only) mode lets exactly this request through while `git push`
 * (`git-receive-pack`) stays `method_not_allowed`. Without it no git remote can be cloned in
 * limited mode: the only GET-only variant, the "dumb" protocol, is not served by GitHub,
 * GitLab and most hosts.
 *
 * The body reaches only a host the policy allowed, like a GET's path and query already do.
 */

const UPLOAD_PACK_SUFFIX = "/git-upload-pack";
const UPLOAD_PACK_REQUEST = "application/x-git-upload-pack-request";
const METHOD_OVERRIDES = new Set(["x-http-method-override", "x-http-method", "x-method-override"]);

/**
 * True when the request is a git smart-HTTP fetch: method `POST`, request path (before `?`)
 * ending in `/git-upload-pack`, and a `Content-Type` whose media type is
 * `application/x-git-upload-pack-request` (case-insensitive, parameters ignored), exactly one
 * Content-Type field and no method-override header.
 * `headers` are `[name, value]` pairs as received.
 */
export function isGitFetch(method: string, path: string, headers: ReadonlyArray<readonly [string, string]>): boolean {
  if (method !== "POST") return false;
  const q = path.indexOf("?");
  if (!(q < 0 ? path : path.slice(0, q)).endsWith(UPLOAD_PACK_SUFFIX)) return false;
  let type: string | null = null;
  for (const [k, v] of headers) {
    const name = k.toLowerCase();
    if (METHOD_OVERRIDES.has(name)) return false; // asks the origin for another method
    if (name !== "content-type") continue;
    if (type !== null) return false; // two Content-Type fields: ambiguous, not a fetch
    type = v;
  }
  return type !== null && type.split(";")[0]!.trim().toLowerCase() === UPLOAD_PACK_REQUEST;
}
