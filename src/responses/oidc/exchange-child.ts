/**
 * The token-exchange child's side (SPEC §1.8 "beyond"; wire format in child-protocol.ts): read
 * the request token from stdin (raw `read(2)`, §1.8 rules), run both calls with the usual code
 * on our HTTP/1.1 client, write the access token to stdout with raw `write(2)` from its locked
 * page, and exit. Every transient copy of the two token responses (Bun's socket receive
 * buffers included, which no code of ours can zero) ends with this process.
 */
import type { Libc } from "../../hardening/libc.ts";
import { createHttp1Client } from "../../http1/client.ts";
import { decodeJob, errorFrame, FRAME_GITHUB_DONE, tokenFrameHead, type ChildJob } from "./child-protocol.ts";
import { OidcError } from "./errors.ts";
import { readRequestToken } from "./request-token.ts";
import { exchangeSubjectToken, fetchSubjectToken, type TokenExchangeDeps } from "./token-exchange.ts";

/** Write all of `bytes` to `fd` with `write(2)` (EAGAIN waits with poll, EINTR retries). @throws Error on another error */
export function writeAll(libc: Pick<Libc, "write" | "waitWritable" | "EAGAIN">, fd: number, bytes: Uint8Array): void {
  let at = 0;
  for (let attempts = 0; at < bytes.byteLength; attempts++) {
    if (attempts > 1_000_000) throw new Error("write made no progress");
    const n = libc.write(fd, bytes.subarray(at));
    if (typeof n === "number") {
      at += n;
      continue;
    }
    if (n.errno === 4) continue;
    if (n.errno !== libc.EAGAIN) throw new Error(n.message);
    const err = libc.waitWritable(fd);
    if (err) throw new Error(err.message);
  }
}

/**
 * Run the child role: `jobText` is the value of the role variable. Returns the exit code
 * (0 once a `T` or `E` frame is written; 1 when nothing could be reported, which the parent
 * reads as a transport failure of the current step). Never throws.
 */
export async function runExchangeChild(libc: Libc, jobText: string): Promise<number> {
  const out = 1;
  const report = (e: unknown): number => {
    if (!(e instanceof OidcError)) return 1;
    try {
      writeAll(libc, out, errorFrame(e));
      return 0;
    } catch {
      return 1;
    }
  };
  let job: ChildJob;
  let requestToken;
  try {
    job = decodeJob(jobText);
    requestToken = readRequestToken(libc);
  } catch (e) {
    return report(e);
  }
  const proxyEnv: Record<string, string | undefined> = {};
  for (const name of ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"]) proxyEnv[name] = process.env[name];
  const client = createHttp1Client({ proxyEnv });
  const deps: TokenExchangeDeps = {
    client,
    libc,
    config: job.config,
    requestAuthorization: requestToken.value,
    tokenUrl: job.tokenUrl,
    timeoutMs: job.timeoutMs,
  };
  try {
    const subject = await fetchSubjectToken(deps);
    requestToken.dispose();
    let token;
    try {
      writeAll(libc, out, new Uint8Array([FRAME_GITHUB_DONE]));
      token = await exchangeSubjectToken(deps, subject.view, subject.length);
    } finally {
      subject.page.free();
    }
    try {
      writeAll(libc, out, tokenFrameHead(token.receivedAtMs, token.expiresAtMs, token.authorization.byteLength));
      writeAll(libc, out, token.authorization);
    } finally {
      token.free();
    }
    return 0;
  } catch (e) {
    return report(e);
  } finally {
    requestToken.dispose();
    client.close();
  }
}
