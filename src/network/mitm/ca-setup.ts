/**
 * The CA a proxy run uses (SPEC-network §6, §11): in `file` mode the CA on disk (loaded, or
 * created when missing); in `ephemeral` mode a fresh in-memory CA whose certificate replaces
 * the file. Either way the trust bundle `ca-bundle.pem` is rewritten beside it, so it is
 * current at every start and whenever the engine is rebuilt for a changed CA.
 */
import type { Logger } from "../../log.ts";
import type { RuntimeConfig } from "../types.ts";
import { loadOrCreateCa, MitmCaError, type Ca } from "./ca.ts";
import { createEphemeralCa } from "./ephemeral-ca.ts";
import { writeTrustBundle } from "../clients/ca-bundle.ts";

/**
 * Load/create (file mode) or mint (ephemeral mode) the CA of `mitm`, then write the bundle.
 * @throws MitmCaError (CA problems, or a bundle that cannot be written)
 */
export async function prepareCa(
  mitm: RuntimeConfig["mitm"],
  log: Logger,
  env: Record<string, string | undefined> = process.env,
): Promise<Ca> {
  const ca =
    mitm.caMode === "ephemeral"
      ? await createEphemeralCa(mitm.caCertPath)
      : await loadOrCreateCa(mitm.caCertPath, mitm.caKeyPath, { create: true });
  if (mitm.caMode === "ephemeral") log.info(`ephemeral MITM CA certificate ${ca.certPath} (key in memory only)`);
  else if (ca.created) log.info(`created MITM CA certificate ${ca.certPath}`);
  try {
    const bundle = await writeTrustBundle(ca.certPath, ca.certPem, env);
    log.debug("trust bundle written", { path: bundle.path, roots: bundle.roots });
  } catch (e) {
    throw new MitmCaError(`cannot write trust bundle beside ${ca.certPath}: ${(e as Error).message}`);
  }
  return ca;
}
