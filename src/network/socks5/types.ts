/**
 * Types shared by the SOCKS5 modules (a leaf: session.ts dispatches to connect.ts and
 * udp.ts, connect.ts hands off to peek.ts, and all of them use these without importing each
 * other back).
 */
import type { Socket } from "bun";
import type { ConnState, NetworkContext } from "../types.ts";

/** Tunables of a SOCKS5 listener (all have production defaults in listener.ts). */
export interface Socks5Options {
  /** Close a connection whose greeting + request is not complete after this long (ms). */
  handshakeTimeoutMs: number;
  /** Limited mode: how long to wait for the client's first bytes after REP 0x00 (ms). */
  peekTimeoutMs: number;
  /** Limited mode: most bytes read while looking for an HTTP request line. */
  peekMaxBytes: number;
}

/**
 * What the command handlers (connect.ts, udp.ts) get from the session: the client socket,
 * its handshake write queue and a way to end the connection after a reply.
 */
export interface SessionIo {
  readonly ctx: NetworkContext;
  readonly socket: Socket<ConnState>;
  /** Client `ip:port`. */
  readonly client: string;
  readonly opts: Socks5Options;
  /** Write through the handshake queue (order-preserving with earlier replies). */
  write(bytes: Uint8Array): void;
  /** Send `replyBytes(rep)` and close once it is flushed (RFC 1928 §6: a failure reply ends the connection). */
  replyAndClose(rep: number): void;
  /** Client bytes that followed the request (pipelined or sent while judging), then forgets them. */
  takeBuffered(): Uint8Array | null;
  /** True once the client has gone away. */
  aborted(): boolean;
  /** Run `fn` when the client connection closes (release UDP sockets etc.). */
  onClose(fn: () => void): void;
  /** Run `fn` once everything queued on the handshake queue reached the socket. */
  whenFlushed(fn: () => void): void;
  /** Whether the session stopped reading the client (the next owner resumes it). */
  readingPaused(): boolean;
  /** Whether the client's FIN was read while the command was worked on (the next owner passes it on). */
  peerEnded(): boolean;
}
