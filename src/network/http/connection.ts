/**
 * The one HTTP/1.1 request loop (SPEC-network §4, §6): for a client connection of the HTTP
 * proxy listener, a SOCKS5 connection handed off after peeking, and the decrypted side of a
 * MITM tunnel alike. It parses request heads (the strict request-head parser), routes each
 * request (CONNECT → connect.ts on the plain listener, 405 elsewhere; `x-unix-socket` →
 * unix-socket.ts on the plain listener; else → forward.ts), streams request bodies through a
 * BodyPump (the request-side body decoder), and keeps pipelined bytes for the next request.
 * Every request on a kept-alive connection is judged on its own. What differs between the
 * front ends is data (`HttpFrontEnd`), not code.
 *
 * Reading is paused while the stream of a request body is full, and while a request is in
 * flight and more than 64 KiB of pipelined bytes wait. Writes to the client go through a
 * WriteQueue; producers await `drained()` when it holds bytes.
 */
import type { Socket } from "bun";
import { headerValue, parseRequestHead, type BodyFraming, type RequestHead } from "../../http1/server-request-head.ts";
import { WriteQueue } from "../../net/write-queue.ts";
import { ANSWERS, reasonView, type AnswerName, type AnswerView } from "../answers.ts";
import { recordedProtocol } from "../reasons.ts";
import type { ConnState, NetworkContext, PolicyRequest, Verdict } from "../types.ts";
import { noteVerdict, startAccess, writeAccess, type AccessNote } from "../access.ts";
import type { AccessOutcome } from "../../access-log.ts";
import {
  PLAIN_FRONT_END,
  type ConnIO,
  type DenyVerdict,
  type HttpConnectionHandler,
  type HttpConnectionOptions,
  type HttpFrontEnd,
  type HttpSession,
  type HttpTransport,
  type Outcome,
} from "./conn-io.ts";
import { answerBytes, blockBytes } from "./answer-bytes.ts";
import { BodyPump } from "./body-stream.ts";
import { handleConnect } from "./connect.ts";
import { forwardRequest } from "./forward.ts";
import { Inbox } from "./inbox.ts";
import { handleUnixSocket } from "./unix-socket.ts";
import { createUpstreamClients, type UpstreamClients } from "./upstream-clients.ts";

const MAX_PIPELINED = 64 * 1024;
/** SPEC-network §12: a head must be complete 30 s after its first byte; 120 s idle closes. */
const HEAD_TIMEOUT_MS = 30_000;
const IDLE_TIMEOUT_MS = 120_000;
const PAUSE_BODY = 1;
const PAUSE_INBOX = 2;

/**
 * A ConnHandler for one accepted socket (HTTP listener, SOCKS5 hand-off). Install it as
 * `socket.data.handler`; bytes already read (e.g. peeked by SOCKS5) can be passed with
 * `handler.data(socket, bytes)`.
 */
export function createHttpConnectionHandler(ctx: NetworkContext, opts: HttpConnectionOptions = {}): HttpConnectionHandler {
  const c = new HttpConnection(ctx, opts);
  return {
    attach: (s) => c.bindSocket(s),
    data(s, chunk) {
      c.bindSocket(s);
      c.onData(chunk);
    },
    drain(s) {
      c.bindSocket(s);
      c.onDrain();
    },
    end(s) {
      c.bindSocket(s);
      c.onEnd();
    },
    close(s) {
      c.bindSocket(s);
      c.onClose();
    },
  };
}

/**
 * The loop over a transport that is not an accepted socket (the decrypted side of a MITM
 * tunnel): `client` is the downstream `ip:port` (or null). The head deadline starts now.
 */
export function createHttpSession(
  ctx: NetworkContext,
  opts: HttpConnectionOptions,
  transport: HttpTransport,
  client: string | null,
): HttpSession {
  const c = new HttpConnection(ctx, opts);
  c.bindTransport(transport, null, client);
  return { data: (chunk) => c.onData(chunk), drain: () => c.onDrain(), close: () => c.onClose() };
}

class HttpConnection implements ConnIO {
  socket: Socket<ConnState> | null = null;
  private transport: HttpTransport | null = null;
  client: string | null = null;
  readonly frontEnd: HttpFrontEnd;
  responseStarted = false;
  body: BodyPump | null = null;
  readonly clients: UpstreamClients;
  private readonly ownsClients: boolean;
  private out!: WriteQueue;
  private readonly inbox = new Inbox();
  private scanFrom = 0;
  private busy = false;
  private closed = false;
  private handedOff = false;
  /** A final answer was written; the connection closes once it is flushed. */
  private ending = false;
  /** The client sent FIN: answer the complete requests already received, then close. */
  private peerEnded = false;
  private pauseBits = 0;
  private waiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  readonly signal = this.abort.signal;
  /** The access line of the current request (null once written or taken by a tunnel). */
  private access: AccessNote | null = null;
  /** Bytes handed to the write queue since the connection opened. */
  private outCount = 0;
  /** `outCount` and the head's length when the current request started. */
  private reqOutStart = 0;
  private reqHeadBytes = 0;
  private headTimer: ReturnType<typeof setTimeout> | null = null;
  /** What the running timer bounds: waiting for a request (idle) or a head being received. */
  private timerKind: "idle" | "head" = "idle";
  /** Requests whose head was read on this connection (CONNECT is honoured only as the first). */
  private requests = 0;

  constructor(
    readonly ctx: NetworkContext,
    readonly opts: HttpConnectionOptions,
  ) {
    this.ownsClients = !opts.clients;
    this.clients = opts.clients ?? createUpstreamClients();
    this.frontEnd = opts.frontEnd ?? PLAIN_FRONT_END;
  }

  /** Bind to an accepted socket before any byte arrives (starts the head deadline); later calls do nothing. */
  bindSocket(s: Socket<ConnState>): void {
    if (this.transport !== null) return;
    this.bindTransport(s, s, s.data?.client ?? `${s.remoteAddress}:${s.remotePort}`);
  }

  bindTransport(t: HttpTransport, socket: Socket<ConnState> | null, client: string | null): void {
    this.transport = t;
    this.socket = socket;
    this.client = client;
    this.out = new WriteQueue(t);
    this.armHeadTimer();
  }

  private end(): void {
    this.transport!.end();
  }

  /**
   * Start waiting for a request head (SPEC-network §12): the idle bound while nothing of it
   * arrived yet (keep-alive), the head bound once bytes of it are waiting (slowloris).
   */
  private armHeadTimer(): void {
    this.armTimer(this.inbox.size > 0 ? "head" : "idle");
  }

  private armTimer(kind: "idle" | "head"): void {
    this.clearHeadTimer();
    this.timerKind = kind;
    const ms = kind === "head" ? (this.opts.headTimeoutMs ?? HEAD_TIMEOUT_MS) : (this.opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
    this.headTimer = setTimeout(() => this.headTimeout(), ms);
    this.headTimer.unref?.();
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== null) clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  private headTimeout(): void {
    this.headTimer = null;
    if (this.closed || this.busy || this.handedOff || this.ending) return;
    if (this.inbox.size > 0) {
      this.ctx.log.info("request head timed out", { client: this.client });
      // Like a bad head: an access line with what arrived (no method, no target).
      this.reqHeadBytes = this.inbox.size;
      this.inbox.clear();
      this.access = startAccess(this.client, null, recordedProtocol(this.frontEnd.protocol));
      this.access.status = ANSWERS.request_timeout.status;
      this.reqOutStart = this.outCount;
      this.body = null;
      this.finishWith(answerBytes("request_timeout", { close: true }));
      this.finishAccess();
    } else {
      this.end();
    }
  }

  // transport events
  onData(chunk: Uint8Array): void {
    if (this.closed || this.handedOff || this.ending) return;
    if (this.body && !this.body.finished) {
      const r = this.body.push(chunk);
      if (!r.ok) {
        this.protocolError(r.message);
        return;
      }
      if (r.consumed < chunk.byteLength) this.inbox.append(chunk.subarray(r.consumed));
    } else {
      // The first byte of a head ends the idle wait and starts the head bound.
      if (!this.busy && this.timerKind === "idle" && this.headTimer !== null && chunk.byteLength > 0) this.armTimer("head");
      this.inbox.append(chunk);
    }
    if (!this.busy) this.next();
    else if (this.inbox.size > MAX_PIPELINED) this.pause(PAUSE_INBOX);
  }

  onDrain(): void {
    if (this.out.drain()) this.wake();
  }

  /** The peer finished sending (TCP FIN; plain sockets only). */
  onEnd(): void {
    if (this.closed || this.peerEnded) return;
    this.peerEnded = true;
    if (this.handedOff || this.ending) return;
    if (this.body && !this.body.finished) {
      // The body can never complete: the request is abandoned.
      this.body.fail(new Error("client ended before the request body"));
      this.endAfterFlush();
      return;
    }
    if (!this.busy) this.next();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearHeadTimer();
    this.abort.abort();
    this.body?.fail(new Error("client closed the connection"));
    this.out.discard();
    this.wake();
    if (this.ownsClients) this.clients.close();
  }

  // ConnIO
  write(bytes: Uint8Array): void {
    if (this.closed) return;
    this.outCount += bytes.byteLength;
    this.out.write(bytes);
  }

  async evaluate(req: PolicyRequest, opts?: { provisional?: boolean }): Promise<Verdict> {
    const verdict = await this.ctx.evaluate(req, opts);
    if (this.access !== null) noteVerdict(this.access, req, verdict);
    return verdict;
  }

  noteStatus(status: number): void {
    if (this.access !== null) this.access.status = status;
  }

  noteOutcome(outcome: AccessOutcome): void {
    if (this.access !== null) this.access.outcome = outcome;
  }

  takeAccess(): AccessNote | null {
    const note = this.access;
    this.access = null;
    return note;
  }

  drained(): Promise<void> {
    if (this.closed || this.out.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  queued(): number {
    return this.closed ? 0 : this.out.size;
  }

  openBody(framing: BodyFraming): BodyPump {
    const pump = new BodyPump(
      framing,
      () => this.pause(PAUSE_BODY),
      () => this.resume(PAUSE_BODY),
    );
    this.body = pump;
    if (this.inbox.size > 0 && !pump.finished) {
      const buffered = this.inbox.take();
      const r = pump.push(buffered);
      if (!r.ok) this.protocolError(r.message);
      else if (r.consumed < buffered.byteLength) this.inbox.append(buffered.subarray(r.consumed));
    }
    if (this.closed) pump.fail(new Error("client closed the connection"));
    return pump;
  }

  takeBuffered(): Uint8Array {
    return this.inbox.take();
  }

  block(verdict: DenyVerdict, req: PolicyRequest, opts: { close: boolean; json?: boolean }): void {
    const json = opts.json ?? this.frontEnd.json;
    this.responseStarted = true;
    this.noteStatus(reasonView(verdict.reason).status);
    this.write(
      blockBytes(verdict.reason, {
        source: verdict.source,
        host: verdict.host,
        port: req.port,
        method: req.method,
        protocol: recordedProtocol(req.protocol),
        hint: json ? this.ctx.explain(verdict.reason, req, verdict.host) : "",
        json,
        close: opts.close,
      }),
    );
  }

  answer(name: AnswerName, opts: { close: boolean }): void {
    this.responseStarted = true;
    this.noteStatus(ANSWERS[name].status);
    this.write(answerBytes(name, opts));
  }

  // internals
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  private pause(bit: number): void {
    if (this.pauseBits === 0 && !this.closed) this.transport!.pause();
    this.pauseBits |= bit;
  }

  private resume(bit: number): void {
    if (!(this.pauseBits & bit)) return;
    this.pauseBits &= ~bit;
    if (this.pauseBits === 0 && !this.closed && !this.handedOff) this.transport!.resume();
  }

  /** Parse the next head from the inbox and start handling it. */
  private next(): void {
    if (this.busy || this.closed || this.handedOff || this.ending) return;
    if (this.inbox.size === 0) {
      if (this.peerEnded) this.endAfterFlush();
      return;
    }
    const r = parseRequestHead(this.inbox.view(), undefined, this.scanFrom);
    if (r.kind === "incomplete") {
      this.scanFrom = r.resumeAt;
      if (this.peerEnded) this.endAfterFlush(); // the head can never complete
      return;
    }
    this.scanFrom = 0;
    if (r.kind === "error") {
      this.ctx.log.info("bad request head", { client: this.client, status: r.status, problem: r.message });
      this.reqHeadBytes = this.inbox.size;
      this.inbox.clear();
      const view: AnswerView = { status: r.status, text: r.message };
      this.access = startAccess(this.client, null, recordedProtocol(this.frontEnd.protocol));
      this.access.status = r.status;
      this.reqOutStart = this.outCount;
      this.body = null;
      this.finishWith(answerBytes(view, { close: true }));
      this.finishAccess();
      return;
    }
    this.inbox.consume(r.headLength);
    this.access = startAccess(this.client, r.head.method, recordedProtocol(this.frontEnd.protocol), r.headLength);
    const pinned = this.frontEnd.target;
    if (pinned !== null) {
      this.access.host = pinned.host;
      this.access.port = pinned.port;
    }
    this.reqOutStart = this.outCount;
    this.reqHeadBytes = r.headLength;
    this.clearHeadTimer();
    this.requests++;
    this.busy = true;
    this.responseStarted = false;
    this.body = null;
    void this.run(r.head);
  }

  private async run(head: RequestHead): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.dispatch(head);
    } catch (err) {
      this.ctx.log.error("http proxy request failed", {
        client: this.client,
        error: err instanceof Error ? err.message : String(err),
      });
      if (!this.responseStarted) this.answer("internal_error", { close: true });
      outcome = "close";
    }
    this.busy = false;
    if (outcome !== "handed-off") {
      if (this.closed) this.noteOutcome("client_closed");
      this.finishAccess();
    }
    if (outcome === "handed-off") {
      this.handedOff = true;
      this.clearHeadTimer();
      return;
    }
    if (this.closed) return;
    if (outcome === "close" || !head.keepAlive || (this.body !== null && !this.body.finished)) {
      await this.drained();
      this.end();
      this.closed = true;
      return;
    }
    this.body = null;
    this.resume(PAUSE_BODY);
    this.resume(PAUSE_INBOX);
    this.armHeadTimer();
    this.next();
  }

  private async dispatch(head: RequestHead): Promise<Outcome> {
    // Only the first hop of the HTTP listener may open a tunnel: inside a pinned connection
    // (SOCKS5 hand-off, MITM) CONNECT would carry a write channel past the policy (SPEC-network §4).
    if (head.method === "CONNECT") {
      // ...and only as the first request of its connection: after a GET on a kept-alive
      // connection it would open a second, unjudged channel (SPEC-network §4).
      if (this.socket !== null && this.frontEnd.target === null && this.requests === 1) return handleConnect(this, head);
      this.answer("connect_inside_mitm", { close: true });
      return "close";
    }
    if (this.frontEnd.target === null) {
      const unix = headerValue(head.headers, "x-unix-socket");
      if (unix !== undefined) return handleUnixSocket(this, head, unix);
    }
    return forwardRequest(this, head);
  }

  /**
   * The current request is done: its bytes go to the metrics and its access line is written
   * (once; a tunnel that took the note writes its own when it closes).
   */
  private finishAccess(): void {
    const up = this.reqHeadBytes + (this.body?.received ?? 0);
    const down = this.outCount - this.reqOutStart;
    this.ctx.metrics.bytes(up, down);
    const note = this.takeAccess();
    if (note !== null) writeAccess(this.ctx, note, up, down);
  }

  /** A framing error in a request body: the connection cannot be resynchronised. */
  private protocolError(message: string): void {
    this.ctx.log.info("bad request body", { client: this.client, problem: message });
    if (!this.responseStarted) {
      this.responseStarted = true;
      this.noteStatus(ANSWERS.invalid_request_body.status);
      this.finishWith(answerBytes("invalid_request_body", { close: true }));
    } else {
      this.end();
    }
  }

  /** Close once queued bytes are flushed. */
  private endAfterFlush(): void {
    this.ending = true;
    void this.drained().then(() => {
      if (!this.closed) this.end();
    });
  }

  /** Write `bytes`, then close once they are flushed. */
  private finishWith(bytes: Uint8Array): void {
    this.ending = true;
    this.write(bytes);
    this.inbox.clear();
    this.pause(PAUSE_INBOX);
    void this.drained().then(() => {
      if (!this.closed) this.end();
    });
  }
}
