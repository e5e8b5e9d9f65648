/**
 * Workload identity mode's start-up (SPEC §1.8): the flag checks and the stdin read (before
 * binding, in that order), then the first token (before binding: server-info appears only
 * after both calls succeeded), then the token source that renews it while serving.
 */
import type { Libc } from "../../hardening/libc.ts";
import type { Http1DirectClient } from "../../http1/types.ts";
import type { ResponsesProxyArgs } from "../cli.ts";
import type { LockedKey } from "../locked-key.ts";
import { createChildExchanger, type ChildExchanger } from "./child-exchanger.ts";
import { checkOidcFlags, type OidcConfig } from "./config.ts";
import { readRequestToken } from "./request-token.ts";
import { obtainAccessToken, type TokenExchangeDeps } from "./token-exchange.ts";
import { startTokenSource, type TokenSourceHandle } from "./token-source.ts";

/** Checked flags and the request token in locked memory. */
export interface PreparedWorkloadIdentity {
  config: OidcConfig;
  requestToken: LockedKey;
}

/**
 * Run the §1.8 start-up checks, then read the request token from stdin (`readStdin` for tests).
 * @throws OidcError (check or stdin rule) or Error (OS text of a failed read)
 */
export function prepareWorkloadIdentity(
  args: ResponsesProxyArgs,
  libc: Libc | null,
  readStdin: (libc: Libc | null) => LockedKey = readRequestToken,
): PreparedWorkloadIdentity {
  const config = checkOidcFlags({
    upstreamUrl: args.upstreamUrl,
    oidcAudience: args.oidcAudience ?? "",
    identityProviderId: args.identityProviderId ?? "",
    serviceAccountId: args.serviceAccountId ?? "",
    githubOidcRequestUrl: args.githubOidcRequestUrl ?? "",
  });
  return { config, requestToken: readStdin(libc) };
}

/** Options of {@link startWorkloadIdentity}. */
export interface WorkloadIdentityOptions extends PreparedWorkloadIdentity {
  /** For the in-process exchange (no libc, or not Linux). */
  client: Http1DirectClient;
  libc: Libc | null;
  logError: (line: string) => void;
  /** The exchange child's command (tests; default: this executable). */
  childCommand?: string[];
}

/**
 * Where the two calls run: on Linux in a short-lived child per exchange (child-exchanger.ts,
 * so no transient copy of a token response outlives it), elsewhere in this process.
 */
function exchanger(opts: WorkloadIdentityOptions): ChildExchanger {
  if (opts.libc?.platform === "linux") {
    return createChildExchanger({
      libc: opts.libc,
      config: opts.config,
      requestAuthorization: opts.requestToken.value,
      command: opts.childCommand,
    });
  }
  const deps: TokenExchangeDeps = {
    client: opts.client,
    libc: opts.libc,
    config: opts.config,
    requestAuthorization: opts.requestToken.value,
  };
  return { obtain: () => obtainAccessToken(deps), stop() {} };
}

/**
 * Obtain the first access token, then keep it renewed. `stop()` also kills an exchange child
 * still running.
 * @throws OidcError with the message of the step that failed
 */
export async function startWorkloadIdentity(opts: WorkloadIdentityOptions): Promise<TokenSourceHandle> {
  const exchange = exchanger(opts);
  const first = await exchange.obtain();
  const source = startTokenSource({ first, renew: () => exchange.obtain(), logError: opts.logError });
  return {
    unavailable: source.unavailable,
    acquire: (ready) => source.acquire(ready),
    stop() {
      exchange.stop();
      source.stop();
    },
  };
}
