/**
 * The proxy's side of the token-exchange child (SPEC §1.8 "beyond"; wire format in
 * child-protocol.ts). Each `obtain()` starts a short-lived child (this same executable, role
 * chosen by an environment variable), hands it the request token over a pipe written with
 * raw `write(2)` from the locked page, and reads the access token with raw `read(2)` from
 * another pipe straight into a fresh locked page: no JS string, no Bun-managed buffer. The
 * token responses, Bun's socket receive buffers and every other transient copy live and die
 * in the child's address space.
 *
 * Bounds: each step gets its call's bound (30 s) plus a grace for the child to start; a child
 * over it is killed (SIGKILL) and the step fails as a transport failure (`GitHub OIDC token
 * request failed` before the child reported the GitHub step done, `OpenAI workload identity
 * token exchange failed` after). A child that exits without a result fails the same way.
 *
 * Linux only (pipe2); elsewhere the exchange runs in process (see start.ts).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Libc, LockedPages } from "../../hardening/libc.ts";
import { AUTH_PREFIX } from "../key-reader.ts";
import { allocSecretPages } from "../locked-key.ts";
import { TOKEN_CALL_TIMEOUT_MS } from "./capped-body.ts";
import {
  encodeJob,
  EXCHANGE_CHILD_ENV,
  FRAME_ERROR,
  FRAME_GITHUB_DONE,
  FRAME_TOKEN,
  parseErrorFrame,
  parseTokenFrameHead,
  TOKEN_FRAME_HEAD,
  type ChildJob,
} from "./child-protocol.ts";
import { OidcError } from "./errors.ts";
import { isBearerCredential, MAX_BEARER_CREDENTIAL } from "./request-token.ts";
import type { IssuedToken } from "./token-exchange.ts";

/** Time a child may take to start before its first call's bound begins, ms. */
export const CHILD_START_GRACE_MS = 10_000;
/** How often the pipes are serviced while a child runs, ms. */
const PUMP_INTERVAL_MS = 5;

/** Options of {@link createChildExchanger}. */
export interface ChildExchangerOptions extends ChildJob {
  libc: Libc;
  /** `Bearer <request token>` in locked memory. */
  requestAuthorization: Uint8Array;
  /** The child's command (default {@link childCommand}). */
  command?: string[];
  /** The child's environment without the role variable (default {@link childEnvironment} of `process.env`). */
  env?: Record<string, string | undefined>;
  /** Time the child may take to start (default {@link CHILD_START_GRACE_MS}; tests). */
  startGraceMs?: number;
}

/** A source of access tokens from children; `stop()` kills a child still running. */
export interface ChildExchanger {
  /** @throws OidcError with the §1.8 message of the failing step */
  obtain(): Promise<IssuedToken>;
  stop(): void;
}

/**
 * This executable: the compiled binary itself, or Bun running this checkout's entry
 * (`bun src/responses/main.ts`, tests). `/proc/self/exe` is the running binary even if the
 * file was replaced since (an upgrade while serving); without /proc, `process.execPath`.
 */
export function childCommand(): string[] {
  const self = existsSync("/proc/self/exe") ? "/proc/self/exe" : process.execPath;
  return Bun.isStandaloneExecutable ? [self] : [self, join(import.meta.dir, "..", "main.ts")];
}

/**
 * The variables the exchange reads (proxy choice, extra CAs, the C resolver's), copied from
 * `env`; nothing else reaches the child, so a secret left in the proxy's environment (an API
 * key, `ACTIONS_ID_TOKEN_REQUEST_TOKEN` without `env -u`) is not copied into each child's.
 */
export function childEnvironment(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of CHILD_VARIABLES) {
    const v = env[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

const CHILD_VARIABLES = [
  "PATH",
  "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
  "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR",
  "RES_OPTIONS", "LOCALDOMAIN", "HOSTALIASES",
] as const;

/** Reads the child's frames with `read(2)`: header bytes into plain buffers, the token into locked pages. */
class FrameReader {
  private dst: Uint8Array = new Uint8Array(1);
  private filled = 0;
  private state: "tag" | "token-head" | "token" | "error-length" | "error-body" | "done" | "bad" = "tag";
  private head = new Uint8Array(TOKEN_FRAME_HEAD);
  private page: LockedPages | null = null;
  private times = { receivedAtMs: 0, expiresAtMs: 0 };
  githubDone = false;
  eof = false;
  token: IssuedToken | null = null;
  error: OidcError | null = null;

  constructor(
    private readonly libc: Libc,
    private readonly fd: number,
    private readonly onGithubDone: () => void,
  ) {}

  /** Read what is available; bounded by the frame sizes. */
  pump(): void {
    for (let i = 0; i < 64 && !this.eof && this.state !== "bad"; i++) {
      const want = this.state === "done" ? new Uint8Array(1) : this.dst.subarray(this.filled);
      const n = this.libc.read(this.fd, want);
      if (typeof n !== "number") {
        if (n.errno === 4) continue;
        if (n.errno !== this.libc.EAGAIN) this.state = "bad";
        return;
      }
      if (n === 0) {
        this.eof = true;
        return;
      }
      if (this.state === "done") {
        this.state = "bad"; // bytes after the last frame
        return;
      }
      this.filled += n;
      if (this.filled === this.dst.byteLength) this.complete();
    }
  }

  private expect(dst: Uint8Array, state: FrameReader["state"]): void {
    this.dst = dst;
    this.filled = 0;
    this.state = state;
  }

  private complete(): void {
    switch (this.state) {
      case "tag": {
        const tag = this.dst[0];
        if (tag === FRAME_GITHUB_DONE && !this.githubDone) {
          this.githubDone = true;
          this.onGithubDone();
          this.expect(new Uint8Array(1), "tag");
        } else if (tag === FRAME_TOKEN) {
          this.head[0] = tag;
          this.expect(this.head.subarray(1), "token-head");
        } else if (tag === FRAME_ERROR) this.expect(new Uint8Array(1), "error-length");
        else this.state = "bad";
        return;
      }
      case "token-head": {
        const { receivedAtMs, expiresAtMs, length } = parseTokenFrameHead(this.head);
        const prefix = AUTH_PREFIX.byteLength;
        if (!Number.isFinite(receivedAtMs) || !Number.isFinite(expiresAtMs) || length <= prefix || length > prefix + MAX_BEARER_CREDENTIAL) {
          this.state = "bad";
          return;
        }
        this.times = { receivedAtMs, expiresAtMs };
        this.page = allocSecretPages(this.libc, length);
        this.expect(this.page.view.subarray(0, length), "token");
        return;
      }
      case "token": {
        const page = this.page!;
        const value = this.dst;
        const prefixOk = AUTH_PREFIX.every((b, i) => value[i] === b);
        if (!prefixOk || !isBearerCredential(value, AUTH_PREFIX.byteLength, value.byteLength)) {
          this.state = "bad";
          return;
        }
        this.page = null;
        this.token = { authorization: value, ...this.times, free: () => page.free() };
        this.state = "done";
        return;
      }
      case "error-length":
        this.expect(new Uint8Array(this.dst[0]! + 2), "error-body");
        return;
      case "error-body": {
        this.error = parseErrorFrame(this.dst.subarray(0, -2), this.dst.subarray(-2));
        this.state = this.error ? "done" : "bad";
        return;
      }
    }
  }

  /** The outcome once the child is gone: its token or error, else null (free anything half-read). */
  finish(): { token: IssuedToken } | { error: OidcError } | null {
    this.pump();
    this.page?.free();
    this.page = null;
    if (this.state === "done" && this.eof) {
      if (this.token) return { token: this.token };
      if (this.error) return { error: this.error };
    }
    this.token?.free();
    this.token = null;
    return null;
  }
}

/** Start exchanging in children with `opts`. */
export function createChildExchanger(opts: ChildExchangerOptions): ChildExchanger {
  const { libc } = opts;
  const timeoutMs = opts.timeoutMs ?? TOKEN_CALL_TIMEOUT_MS;
  const running = new Set<{ kill(signal?: number | NodeJS.Signals): void }>();
  let stopped = false;

  async function obtain(): Promise<IssuedToken> {
    if (stopped) throw new OidcError("github-failed");
    const input = libc.pipe();
    if (!Array.isArray(input)) throw new OidcError("github-failed");
    const output = libc.pipe();
    if (!Array.isArray(output)) {
      libc.close(input[0]);
      libc.close(input[1]);
      throw new OidcError("github-failed");
    }
    // The request token (without "Bearer ") and "\n", written from the locked page.
    const token = opts.requestAuthorization.subarray(AUTH_PREFIX.byteLength);
    let written = 0;
    let inputOpen = true;
    const pumpInput = () => {
      while (inputOpen) {
        const rest = written < token.byteLength ? token.subarray(written) : NEWLINE;
        const n = libc.write(input[1], rest);
        if (typeof n !== "number") {
          if (n.errno === 4) continue;
          if (n.errno === libc.EAGAIN) return;
          closeInput(); // the child went away: it will report (or be read as) a failure
          return;
        }
        if (written < token.byteLength) written += n;
        else if (n === 1) closeInput();
      }
    };
    const closeInput = () => {
      if (!inputOpen) return;
      inputOpen = false;
      libc.close(input[1]);
    };
    pumpInput();

    let proc;
    try {
      proc = Bun.spawn(opts.command ?? childCommand(), {
        stdin: input[0],
        stdout: output[1],
        stderr: "ignore",
        env: { ...(opts.env ?? childEnvironment(process.env)), [EXCHANGE_CHILD_ENV]: encodeJob(opts) },
      });
    } catch {
      closeInput();
      libc.close(output[0]);
      throw new OidcError("github-failed");
    } finally {
      libc.close(input[0]);
      libc.close(output[1]);
    }
    const child = proc;
    running.add(child);

    let deadline = Date.now() + (opts.startGraceMs ?? CHILD_START_GRACE_MS) + timeoutMs;
    const reader = new FrameReader(libc, output[0], () => {
      deadline = Date.now() + timeoutMs + 1_000;
    });
    let killed = false;
    const pump = () => {
      pumpInput();
      reader.pump();
      if (!killed && Date.now() > deadline) {
        killed = true;
        child.kill("SIGKILL");
      }
    };
    const ticker = setInterval(pump, PUMP_INTERVAL_MS);
    try {
      await child.exited;
    } finally {
      clearInterval(ticker);
      running.delete(child);
      closeInput();
    }
    const outcome = reader.finish();
    libc.close(output[0]);
    if (outcome && "token" in outcome && !killed) return outcome.token;
    if (outcome && "token" in outcome) outcome.token.free();
    if (outcome && "error" in outcome && !killed) throw outcome.error;
    throw new OidcError(reader.githubDone ? "openai-failed" : "github-failed");
  }

  return {
    obtain,
    stop() {
      stopped = true;
      for (const child of running) child.kill("SIGKILL");
    },
  };
}

const NEWLINE = new Uint8Array([0x0a]);
