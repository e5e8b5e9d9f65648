/**
 * The actions of the hook that applies to a request (SPEC-network §10): remove every
 * `strip_request_headers` field and every client field named like an injected header (the
 * client can't add its own value next to ours), then add `<name>: <prefix><secret>`.
 *
 * The secret fields are handed to the HTTP/1.1 client as `secretHeaders`: their bytes go from
 * the locked page into the request-head buffer, which is zeroed once the socket took it (also
 * when part of it was queued for backpressure). Response bytes are never touched.
 */
import type { SecretField } from "./secret-store.ts";
import type { HookSpec } from "./spec.ts";

/** The forwarded fields and the secret fields to add. */
export interface HookedHeaders {
  headers: Array<[string, string]>;
  secretHeaders: readonly SecretField[];
}

/**
 * Apply `hook`'s actions to `headers` (end-to-end fields, any name case). `secrets` are the
 * hook's injected fields from the current secret generation (`HookSecrets.fields`).
 */
export function applyHookActions(
  headers: ReadonlyArray<readonly [string, string]>,
  hook: HookSpec,
  secrets: readonly SecretField[],
): HookedHeaders {
  const { stripRequestHeaders } = hook.actions;
  if (stripRequestHeaders.length === 0 && secrets.length === 0) return { headers: headers.map(([k, v]) => [k, v]), secretHeaders: secrets };
  const drop = new Set(stripRequestHeaders);
  for (const s of secrets) drop.add(s.name.toLowerCase());
  const out: Array<[string, string]> = [];
  for (const [k, v] of headers) if (!drop.has(k.toLowerCase())) out.push([k, v]);
  return { headers: out, secretHeaders: secrets };
}
