/**
 * The contract between the forwarder and a source of changing credentials (workload identity,
 * SPEC §1.8). A leaf module: the forwarder depends on it, the token source implements it.
 */

/** A request's hold on one credential; the credential's memory is not released while a lease is out. */
export interface CredentialLease {
  /** `{name: "authorization", value: "Bearer <token>"}` for the HTTP client's `secretHeader`. */
  readonly header: { name: string; value: Uint8Array };
  /** The request is done with the credential (response head or failure). Idempotent. */
  release(): void;
  /** The upstream answered 401 to this credential: drop it (if still current) and renew. */
  unauthorized(): void;
}

/** What the forwarder asks for a credential per request. */
export interface CredentialSource {
  /**
   * Calls `ready` exactly once: synchronously with a valid credential, later after a renewal
   * the request waited for, or with null when none is available (the forwarder then answers an
   * empty 502 and logs `forwarding error: <unavailable>`).
   */
  acquire(ready: (lease: CredentialLease | null) => void): void;
  /** The log text for a refused request (no secret). */
  readonly unavailable: string;
}
