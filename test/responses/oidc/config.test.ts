import { expect, test } from "bun:test";
import { checkOidcFlags, githubTokenUrl, type OidcFlags } from "../../../src/responses/oidc/config.ts";

const OK: OidcFlags = {
  upstreamUrl: "https://api.openai.com/v1/responses",
  oidcAudience: "aud",
  identityProviderId: "idp_1",
  serviceAccountId: "sa_1",
  githubOidcRequestUrl: "https://token.actions.githubusercontent.com/x?a=1",
};

const message = (flags: Partial<OidcFlags>) => {
  try {
    checkOidcFlags({ ...OK, ...flags });
    return "ok";
  } catch (e) {
    return (e as Error).message;
  }
};

test.each([
  [{}, "ok"],
  [{ upstreamUrl: "https://api.openai.com/v1/responses/" }, "workload identity requires the default OpenAI Responses endpoint"],
  [{ upstreamUrl: "http://127.0.0.1:1/v1/responses", identityProviderId: "" }, "workload identity requires the default OpenAI Responses endpoint"],
  [{ identityProviderId: " \t", serviceAccountId: "" }, "workload identity requires a nonempty --identity-provider-id"],
  [{ identityProviderId: "\u3000" }, "workload identity requires a nonempty --identity-provider-id"],
  [{ serviceAccountId: "", oidcAudience: "" }, "workload identity requires a nonempty --service-account-id"],
  [{ oidcAudience: "\n", githubOidcRequestUrl: "" }, "workload identity requires a nonempty --oidc-audience"],
  [{ githubOidcRequestUrl: "  " }, "workload identity requires a nonempty --github-oidc-request-url"],
  [{ githubOidcRequestUrl: "not a url" }, "invalid GitHub OIDC request URL"],
  [{ githubOidcRequestUrl: "http://h/x" }, "GitHub OIDC request URL must be HTTPS without user info or fragment"],
  [{ githubOidcRequestUrl: "https://u@h/x" }, "GitHub OIDC request URL must be HTTPS without user info or fragment"],
  [{ githubOidcRequestUrl: "https://:p@h/x" }, "GitHub OIDC request URL must be HTTPS without user info or fragment"],
  [{ githubOidcRequestUrl: "https://h/x#f" }, "GitHub OIDC request URL must be HTTPS without user info or fragment"],
  [{ githubOidcRequestUrl: "https://h/x#" }, "GitHub OIDC request URL must be HTTPS without user info or fragment"],
  [{ githubOidcRequestUrl: "https://127.0.0.1:8443/anything" }, "ok"],
])("start-up checks in SPEC §1.8 order: %j → %s", (flags, expected) => {
  expect(message(flags)).toBe(expected);
});

test("values are kept untrimmed", () => {
  const c = checkOidcFlags({ ...OK, oidcAudience: " aud ", identityProviderId: " i", serviceAccountId: "s " });
  expect([c.audience, c.identityProviderId, c.serviceAccountId]).toEqual([" aud ", " i", "s "]);
});

test.each([
  ["https://h/t", "a", "https://h/t?audience=a"],
  ["https://h/t?api-version=2.0", "api://Azure X", "https://h/t?api-version=2.0&audience=api%3A%2F%2FAzure+X"],
  ["https://h/t?audience=old&x=1&audience=o2&y=a%20b", "new", "https://h/t?x=1&y=a+b&audience=new"],
  ["https://h/t?", "a&b=c", "https://h/t?audience=a%26b%3Dc"],
])("GitHub token URL for %s with audience %j is %s", (url, audience, expected) => {
  expect(githubTokenUrl(new URL(url), audience).href).toBe(expected);
});
