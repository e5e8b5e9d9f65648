/**
 * Start-up checks of workload identity mode (SPEC §1.8), in the reference's order, all run
 * before stdin is read, and the GitHub token URL built from the request URL.
 */
import { DEFAULT_UPSTREAM_URL } from "../cli.ts";
import { OidcError } from "./errors.ts";

/** The four values of the §1.8 flags, as given (never trimmed: they are sent as typed). */
export interface OidcFlags {
  upstreamUrl: string;
  oidcAudience: string;
  identityProviderId: string;
  serviceAccountId: string;
  githubOidcRequestUrl: string;
}

/** Checked configuration: the values as given plus the parsed request URL. */
export interface OidcConfig {
  audience: string;
  identityProviderId: string;
  serviceAccountId: string;
  /** `--github-oidc-request-url`, parsed (https, no user info, no fragment). */
  requestUrl: URL;
}

/** Empty after trimming Unicode White_Space, as Rust's `str::trim` does. */
function blank(value: string): boolean {
  return /^\p{White_Space}*$/u.test(value);
}

/**
 * Check the flags in the SPEC §1.8 order: default upstream, then nonempty identity provider
 * id, service account id, audience, request URL, then the request URL's shape.
 * @throws OidcError with the first failing step's message
 */
export function checkOidcFlags(flags: OidcFlags): OidcConfig {
  if (flags.upstreamUrl !== DEFAULT_UPSTREAM_URL) throw new OidcError("non-default-upstream");
  if (blank(flags.identityProviderId)) throw new OidcError("empty-identity-provider-id");
  if (blank(flags.serviceAccountId)) throw new OidcError("empty-service-account-id");
  if (blank(flags.oidcAudience)) throw new OidcError("empty-audience");
  if (blank(flags.githubOidcRequestUrl)) throw new OidcError("empty-request-url");
  let url: URL;
  try {
    url = new URL(flags.githubOidcRequestUrl);
  } catch {
    throw new OidcError("request-url-unparsable");
  }
  // WHATWG keeps an empty fragment in href ("https://h/#") while `hash` is "" for it: the
  // serialisation is the only place '#' can appear, so it catches both.
  if (url.protocol !== "https:" || url.username !== "" || url.password !== "" || url.href.includes("#")) {
    throw new OidcError("request-url-not-https");
  }
  return {
    audience: flags.oidcAudience,
    identityProviderId: flags.identityProviderId,
    serviceAccountId: flags.serviceAccountId,
    requestUrl: url,
  };
}

/**
 * The URL of the GitHub call: every `audience` pair of the query removed, the others kept in
 * order and re-serialised form-urlencoded, `audience=<A>` appended last (reference behaviour).
 */
export function githubTokenUrl(requestUrl: URL, audience: string): URL {
  const url = new URL(requestUrl.href);
  const params = new URLSearchParams(url.search);
  params.delete("audience");
  params.append("audience", audience);
  url.search = params.toString();
  return url;
}
