/**
 * Keep-alive pool (RFC 9112 §9.3 persistence): idle connections per key (origin + dial
 * addresses + TLS name + proxy), most recently used first. An idle connection that the
 * server closes, or that receives unsolicited bytes, is dropped at once. Idle sockets are
 * unref'd so a pooled connection never keeps the process alive.
 */
import type { ConnectionSink, Http1Connection } from "./connection.ts";

export class ConnectionPool {
  private readonly idle = new Map<string, Http1Connection[]>();
  private readonly idleSinks = new WeakMap<Http1Connection, ConnectionSink>();
  private closed = false;

  /** @param maxIdlePerKey idle connections kept per key; older ones are closed */
  constructor(private readonly maxIdlePerKey: number) {}

  /** Take the most recently released live connection for `key`, or null. */
  acquire(key: string): Http1Connection | null {
    const list = this.idle.get(key);
    if (!list) return null;
    while (list.length > 0) {
      const conn = list.pop()!;
      if (conn.closed) continue;
      conn.sink = null;
      conn.socket?.ref();
      if (list.length === 0) this.idle.delete(key);
      return conn;
    }
    this.idle.delete(key);
    return null;
  }

  /** Put a connection whose exchange completed cleanly back into the pool. */
  release(conn: Http1Connection): void {
    if (this.closed || conn.closed || this.maxIdlePerKey <= 0) {
      conn.end();
      return;
    }
    let list = this.idle.get(conn.key);
    if (!list) {
      list = [];
      this.idle.set(conn.key, list);
    }
    list.push(conn);
    conn.sink = this.idleSinks.get(conn) ?? this.newIdleSink(conn);
    conn.socket?.unref();
    while (list.length > this.maxIdlePerKey) list.shift()!.end();
  }

  /** The idle sink of a connection, made once: a connection goes in and out of the pool per request. */
  private newIdleSink(conn: Http1Connection): ConnectionSink {
    const remove = () => {
      const list = this.idle.get(conn.key);
      if (!list) return;
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.idle.delete(conn.key);
    };
    const sink: ConnectionSink = {
      onData: () => {
        // A server may not send anything unasked on an idle connection (RFC 9112 §9.3).
        remove();
        conn.destroy();
      },
      onDrained: () => {},
      onClose: remove,
    };
    this.idleSinks.set(conn, sink);
    return sink;
  }

  /** Idle connections currently held (all keys). */
  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Close every idle connection; later releases close instead of pooling. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.end();
    this.idle.clear();
  }
}
