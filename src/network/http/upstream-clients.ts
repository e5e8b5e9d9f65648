/**
 * The HTTP/1.1 clients the forward proxy sends allowed requests with (src/http1/client.ts).
 * Two, built on first use: one that never uses a proxy (the default: going through
 * `HTTP(S)_PROXY` could loop back into this proxy), and one that honours the proxy
 * environment, used only while `allow_upstream_proxy` is true (SPEC-network §2).
 */
import { createHttp1Client } from "../../http1/client.ts";
import type { Http1DirectClient } from "../../http1/types.ts";
import type { RuntimeConfig } from "../types.ts";

/**
 * Idle upstream connections kept per origin. A proxy multiplexes many clients onto few
 * origins: with the client's default (16) every request beyond 16 concurrent ones would
 * dial and close a connection (measured: ~15% of CPU at 32 concurrent clients).
 */
const MAX_IDLE_PER_ORIGIN = 256;

/** The clients of one listener (or one handed-off connection). */
export interface UpstreamClients {
  /** The client to use under `cfg`. */
  get(cfg: RuntimeConfig): Http1DirectClient;
  /** Close pooled connections of every client built so far. */
  close(): void;
}

/**
 * Create the pair. `factory` builds a client for a proxy environment (tests inject one).
 */
export function createUpstreamClients(
  factory: (proxyEnv: Record<string, string | undefined> | null) => Http1DirectClient = (proxyEnv) =>
    createHttp1Client({ proxyEnv, maxIdlePerOrigin: MAX_IDLE_PER_ORIGIN }),
): UpstreamClients {
  let direct: Http1DirectClient | null = null;
  let viaEnv: Http1DirectClient | null = null;
  return {
    get(cfg) {
      if (cfg.allowUpstreamProxy) return (viaEnv ??= factory(process.env));
      return (direct ??= factory(null));
    },
    close() {
      direct?.close();
      viaEnv?.close();
    },
  };
}
