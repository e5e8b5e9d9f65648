/**
 * Every message of workload identity mode (SPEC §1.8), in one closed table. Start-up prints
 * them as `Error: <message>` and exits 1; while serving, renewal failures are logged without
 * the secret or any response body.
 */

/** The reasons a workload identity step can fail. */
export type OidcFailure =
  | "non-default-upstream"
  | "empty-identity-provider-id"
  | "empty-service-account-id"
  | "empty-audience"
  | "empty-request-url"
  | "request-url-unparsable"
  | "request-url-not-https"
  | "credential-too-large"
  | "invalid-credential"
  | "github-rejected"
  | "github-failed"
  | "github-oversized"
  | "github-invalid"
  | "invalid-subject-token"
  | "openai-rejected"
  | "openai-failed"
  | "openai-oversized"
  | "openai-invalid"
  | "openai-token-type"
  | "openai-expired"
  | "openai-lifetime"
  | "renewal-unavailable";

const MESSAGES: Record<OidcFailure, string> = {
  "non-default-upstream": "workload identity requires the default OpenAI Responses endpoint",
  "empty-identity-provider-id": "workload identity requires a nonempty --identity-provider-id",
  "empty-service-account-id": "workload identity requires a nonempty --service-account-id",
  "empty-audience": "workload identity requires a nonempty --oidc-audience",
  "empty-request-url": "workload identity requires a nonempty --github-oidc-request-url",
  "request-url-unparsable": "invalid GitHub OIDC request URL",
  "request-url-not-https": "GitHub OIDC request URL must be HTTPS without user info or fragment",
  "credential-too-large": "GitHub OIDC request credential too large",
  "invalid-credential": "invalid workload identity bearer credential",
  "github-rejected": "GitHub OIDC token request rejected (HTTP {status})",
  "github-failed": "GitHub OIDC token request failed",
  "github-oversized": "GitHub OIDC returned an oversized token response",
  "github-invalid": "GitHub OIDC returned an invalid token response",
  "invalid-subject-token": "workload identity source returned an invalid subject token",
  "openai-rejected": "OpenAI workload identity token request rejected (HTTP {status})",
  "openai-failed": "OpenAI workload identity token exchange failed",
  "openai-oversized": "OpenAI workload identity returned an oversized token response",
  "openai-invalid": "OpenAI workload identity returned an invalid token response",
  "openai-token-type": "OpenAI returned an unsupported workload identity token type",
  "openai-expired": "OpenAI returned an expired workload identity token",
  "openai-lifetime": "OpenAI returned an invalid token lifetime",
  "renewal-unavailable": "workload identity renewal temporarily unavailable; retry later",
};

/** `name` is one of the {@link OidcFailure} reasons (for a reason that crossed a process boundary). */
export function isOidcFailure(name: string): name is OidcFailure {
  return Object.hasOwn(MESSAGES, name);
}

/**
 * A workload identity failure: `reason` for code, `message` the exact SPEC §1.8 text (a
 * rejected call names only the HTTP status, never the body). Never carries secret bytes.
 */
export class OidcError extends Error {
  constructor(
    readonly reason: OidcFailure,
    /** The HTTP status of a rejected call (`github-rejected`, `openai-rejected`). */
    readonly status?: number,
  ) {
    super(MESSAGES[reason].replace("{status}", String(status ?? 0)));
    this.name = "OidcError";
  }
}
