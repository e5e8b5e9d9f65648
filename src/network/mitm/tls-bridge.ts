/**
 * Server-side TLS over an accepted socket whose first client bytes were already read.
 *
 * Bun's `socket.upgradeTLS` starts TLS on bytes still to come; it has no way to feed it bytes
 * we already consumed (the ClientHello SOCKS5 peeked at). For that case node:tls runs over a
 * Duplex we drive: raw socket bytes are pushed in (the already-read ones first), TLS records
 * it writes go out through a WriteQueue whose flush completes the Duplex write (so TLS waits
 * for the kernel). Slower than upgradeTLS, so it is used only when `buffered` bytes exist.
 */
import type { Socket } from "bun";
import { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { WriteQueue } from "../../net/write-queue.ts";
import type { ConnState } from "../types.ts";
import type { HttpTransport } from "../http/conn-io.ts";

/** What the bridge reports to its owner (the decrypted side). */
export interface TlsBridgeEvents {
  /** The TLS handshake with the client completed. */
  secure?(): void;
  data(chunk: Uint8Array): void;
  drain(): void;
  close(): void;
  error(err: Error): void;
  /** The TLS handshake completed. */
  secure?(): void;
}

/**
 * Start TLS (server role, `key`/`cert` PEM) on `socket`, replaying `buffered` first. Takes
 * over `socket.data.handler`. Returns the transport for the decrypted side.
 */
export function bridgeTls(
  socket: Socket<ConnState>,
  tlsOpts: { key: string; cert: string },
  buffered: Uint8Array,
  events: TlsBridgeEvents,
): HttpTransport {
  let pendingWrite: ((err?: Error | null) => void) | null = null;
  let rawClosed = false;
  const queue = new WriteQueue(socket);
  const duplex = new Duplex({
    read() {
      if (!rawClosed) socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (!queue.write(chunk)) return cb(new Error("socket closed"));
      if (queue.size === 0) cb();
      else pendingWrite = cb; // completed from the socket's drain
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      if (!rawClosed) socket.end();
      cb(err);
    },
  });
  socket.data.handler = {
    data(_s, chunk) {
      // No copy: a Buffer view over Bun's fresh chunk.
      if (!duplex.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) socket.pause();
    },
    drain() {
      if (queue.drain() && pendingWrite) {
        const cb = pendingWrite;
        pendingWrite = null;
        cb();
      }
    },
    close() {
      rawClosed = true;
      queue.discard();
      pendingWrite?.(new Error("socket closed"));
      pendingWrite = null;
      duplex.push(null);
      duplex.destroy();
    },
  };
  const tls = new TLSSocket(duplex, { isServer: true, key: tlsOpts.key, cert: tlsOpts.cert });
  tls.on("secure", () => events.secure?.());
  tls.on("data", (b: Buffer) => events.data(b));
  tls.on("drain", () => events.drain());
  tls.on("close", () => events.close());
  tls.on("secure", () => events.secure?.());
  tls.on("error", (e: Error) => events.error(e));
  duplex.push(Buffer.from(buffered.buffer, buffered.byteOffset, buffered.byteLength));
  return {
    write(data) {
      if (tls.destroyed || !tls.writable) return -1;
      // node:tls buffers without limit; report "nothing taken" while it asks for a drain so
      // the caller's WriteQueue holds the bytes and waits for our `drain` event instead.
      if (tls.writableNeedDrain) return 0;
      tls.write(data);
      return data.byteLength;
    },
    end: () => tls.end(),
    pause: () => tls.pause(),
    resume: () => tls.resume(),
  };
}
