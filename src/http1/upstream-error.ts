/**
 * The HTTP/1.1 client's one error class (types.ts stays types only): a failure before a
 * response head arrived, with the kind a caller maps to its answer (the network proxy: 502
 * `upstream failure`; the responses proxy: 502).
 */

/** Failure before a response head arrived. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: "dns" | "connect" | "tls" | "proxy" | "protocol" | "aborted" | "closed",
    message: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}
