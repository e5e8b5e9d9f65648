/**
 * The secrets of the hooks of one config, by generation (SPEC-network §10 "read at start and
 * at every reload").
 *
 * `load(hooks)` reads every `secret_file` again (rotation without restart; one read per path)
 * and takes each `secret_env_var` once per process (the variable is gone from the environment
 * after the first read, so later generations share that one locked page). A failed read throws
 * and leaves the current generation in force (the reload keeps the last good config).
 *
 * A superseded generation is zeroed and unmapped only when its last lease is released: a
 * request that took its secret fields before a reload may still be writing its head, and a
 * view of an unmapped page would crash the process.
 */
import { loadLibc, type Libc } from "../../hardening/libc.ts";
import type { HookSpec } from "./spec.ts";
import { readSecret, type LockedSecret } from "./secret.ts";

/** One injected header: `<name>: <prefix><secret bytes>`. */
export interface SecretField {
  readonly name: string;
  readonly prefix: string;
  /** View onto locked memory; valid while a lease on its generation is held. */
  readonly value: Uint8Array;
}

/** The secrets of one loaded config. */
export interface HookSecrets {
  /** Injected fields of hook `index` (config order); empty when it injects nothing. */
  fields(index: number): readonly SecretField[];
  /** Take a lease: the fields stay valid until the returned function is called (idempotent). */
  lease(): () => void;
  /** Number of secrets this generation holds (for logs; never values). */
  readonly count: number;
}

/** Loads generations; owns the environment-variable secrets. */
export interface SecretStore {
  /**
   * Read the secrets of `hooks` into a new generation.
   * @throws SecretReadError (nothing read by this call is kept)
   */
  load(hooks: readonly HookSpec[]): HookSecrets;
  /** Make `next` the current generation; the previous one is freed once its leases end. */
  install(next: HookSecrets): void;
  /** Free everything (process stop). */
  dispose(): void;
}

interface Generation extends HookSecrets {
  retire(): void;
  /** Free the file secrets now, whatever the leases (a load that failed; process stop). */
  destroy(): void;
}

/**
 * Create a store. `libc` null = the no-libc fallback of secret.ts; undefined = `loadLibc()`,
 * loaded on the first secret read (configs without injections never load it).
 */
export function createSecretStore(libcOption?: Libc | null): SecretStore {
  let libcLoaded = libcOption !== undefined;
  let libcValue: Libc | null = libcOption ?? null;
  const getLibc = (): Libc | null => {
    if (!libcLoaded) {
      libcValue = loadLibc();
      libcLoaded = true;
    }
    return libcValue;
  };
  const env = new Map<string, LockedSecret>();
  let current: Generation | null = null;

  const load = (hooks: readonly HookSpec[]): Generation => {
    const files = new Map<string, LockedSecret>();
    const perHook: SecretField[][] = [];
    const envUsed = new Set<string>();
    try {
      hooks.forEach((hook, h) => {
        perHook.push(
          hook.actions.injectRequestHeaders.map((inj, i) => {
            const what = `network_proxy.mitm.hooks[${h}].actions.inject_request_headers[${i}]`;
            const src = inj.source;
            let secret: LockedSecret | undefined;
            if (src.kind === "file") {
              secret = files.get(src.path);
              if (!secret) files.set(src.path, (secret = readSecret(getLibc(), src, what)));
            } else {
              secret = env.get(src.name);
              if (!secret) env.set(src.name, (secret = readSecret(getLibc(), src, what)));
              envUsed.add(src.name);
            }
            return { name: inj.name, prefix: inj.prefix, value: secret.value };
          }),
        );
      });
    } catch (e) {
      for (const f of files.values()) f.dispose();
      // An env secret read by this failed load is kept: the variable is already gone.
      throw e;
    }
    let leases = 0;
    let retired = false;
    let freed = false;
    const free = () => {
      if (freed) return;
      freed = true;
      for (const f of files.values()) f.dispose();
    };
    return {
      count: files.size + envUsed.size,
      fields: (index) => perHook[index] ?? [],
      lease() {
        leases++;
        let done = false;
        return () => {
          if (done) return;
          done = true;
          if (--leases === 0 && retired) free();
        };
      },
      retire() {
        retired = true;
        if (leases === 0) free();
      },
      destroy: free,
    };
  };

  return {
    load,
    install(next) {
      const prev = current;
      current = next as Generation;
      if (prev && prev !== current) prev.retire();
    },
    dispose() {
      current?.destroy();
      current = null;
      for (const s of env.values()) s.dispose();
      env.clear();
    },
  };
}
