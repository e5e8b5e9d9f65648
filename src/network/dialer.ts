/**
 * Outbound TCP dialing to addresses the policy already checked (SPEC-network §3.4): tries the
 * pinned addresses in order, never resolves a name, sets TCP_NODELAY, and maps connect
 * failures to `DialErrorCode` (which transports turn into SOCKS REP 0x03–0x06/0x01 or 502).
 */
import { isIP } from "node:net";
import type { Socket, SocketHandler } from "bun";
import { DialError, type DialErrorCode } from "./dial-error.ts";
import type { DialOptions, Dialer } from "./types.ts";

/** errno code → dial error code (RFC 1928 §6 reply meanings). */
const ERRNO: Record<string, DialErrorCode> = {
  ECONNREFUSED: "refused",
  ENETUNREACH: "network_unreachable",
  ENETDOWN: "network_unreachable",
  EHOSTUNREACH: "host_unreachable",
  EHOSTDOWN: "host_unreachable",
  ETIMEDOUT: "timeout",
};

/** Map an error thrown by `Bun.connect` (it carries `code`, e.g. `ECONNREFUSED`) to a `DialError`. */
export function toDialError(e: unknown, target: string): DialError {
  if (e instanceof DialError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const errno = typeof code === "string" ? code : "error";
  return new DialError(ERRNO[errno] ?? "other", `connect to ${target} failed: ${errno}`);
}

function formatTarget(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * One connect attempt with a timeout. Events reach `handlers` only for a socket the caller
 * got: a socket that opens after the timeout fired is terminated silently, and a failed
 * attempt's `connectError` is swallowed (the promise rejection carries it).
 */
function attempt<T>(
  address: string,
  port: number,
  handlers: SocketHandler<T>,
  data: T,
  timeoutMs: number,
  allowHalfOpen: boolean,
): Promise<Socket<T>> {
  const target = formatTarget(address, port);
  const { promise, resolve, reject } = Promise.withResolvers<Socket<T>>();
  let state: "pending" | "open" | "abandoned" = "pending";
  const live = () => state !== "abandoned";
  // Forwarding wrappers cost one call per event; they are what lets a timed-out attempt be
  // dropped without the caller ever seeing its `open`/`close`.
  const wrapped: SocketHandler<T> = {
    binaryType: handlers.binaryType,
    open(s) {
      if (!live()) {
        s.terminate();
        return;
      }
      state = "open";
      s.setNoDelay(true);
      return handlers.open?.(s);
    },
    data: (s, d) => (live() ? handlers.data?.(s, d) : undefined),
    drain: (s) => (live() ? handlers.drain?.(s) : undefined),
    end: (s) => (live() ? handlers.end?.(s) : undefined),
    error: (s, e) => (live() ? handlers.error?.(s, e) : undefined),
    timeout: (s) => (live() ? handlers.timeout?.(s) : undefined),
    close: (s, e) => (state === "open" ? handlers.close?.(s, e) : undefined),
    connectError: () => {
      // Reported through the rejected promise below.
    },
  };
  const timer = setTimeout(() => {
    if (state !== "pending") return;
    state = "abandoned";
    reject(new DialError("timeout", `connect to ${target} timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  let connecting: Promise<Socket<T>>;
  try {
    connecting = Bun.connect<T>({ hostname: address, port, socket: wrapped, data, allowHalfOpen });
  } catch (e) {
    // Invalid options (a port out of range) throw synchronously.
    clearTimeout(timer);
    state = "abandoned";
    return Promise.reject(toDialError(e, target));
  }
  connecting.then(
    (socket) => {
      clearTimeout(timer);
      if (state === "abandoned") socket.terminate();
      else resolve(socket);
    },
    (e) => {
      clearTimeout(timer);
      if (state !== "abandoned") reject(toDialError(e, target));
    },
  );
  return promise;
}

/**
 * Create the dialer of `types.ts`: `connect(addresses, port, handlers, data)` tries each IP
 * address in order (each attempt bounded by `timeoutMs`, default 10 000 ms) and resolves with
 * the first connected socket (TCP_NODELAY on). Rejects with the last attempt's `DialError`
 * (`refused`, `network_unreachable`, `host_unreachable`, `timeout`, `other`); an empty list or
 * a non-IP entry is `other` (the dialer never resolves names, §3.4). `dialOpts.allowHalfOpen`
 * keeps a socket writable after the peer's FIN (tunnels pass the FIN on as a half-close).
 */
export function createDialer(opts: { timeoutMs?: number } = {}): Dialer {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return {
    async connect<T>(
      addresses: string[],
      port: number,
      handlers: SocketHandler<T>,
      data: T,
      dialOpts: DialOptions = {},
    ): Promise<Socket<T>> {
      if (addresses.length === 0) throw new DialError("other", "no addresses to connect to");
      let last: DialError | null = null;
      for (const address of addresses) {
        if (isIP(address) === 0) {
          last = new DialError("other", `refusing to dial a name instead of a checked address: ${address}`);
          continue;
        }
        try {
          return await attempt(address, port, handlers, data, timeoutMs, dialOpts.allowHalfOpen ?? false);
        } catch (e) {
          last = toDialError(e, formatTarget(address, port));
        }
      }
      throw last ?? new DialError("other", "connect failed");
    },
  };
}
