/**
 * A fake forward proxy for tests: CONNECT tunnels to 127.0.0.1:<port> whatever the name (an
 * injected resolver: nothing leaves the host); other requests are answered with their target.
 */
import type { Socket, TCPSocketListener } from "bun";

interface ProxyConn {
  head: string;
  buf: Buffer;
  upstream: Socket<unknown> | null;
}

/** A fake forward proxy. Every name resolves to 127.0.0.1 (injected resolver: nothing leaves the host). */
export function startFakeProxy(opts: { refuseWith?: string } = {}) {
  const heads: string[] = [];
  const listener: TCPSocketListener<ProxyConn> = Bun.listen<ProxyConn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { head: "", buf: Buffer.alloc(0), upstream: null };
      },
      async data(s, d) {
        const st = s.data;
        if (st.upstream) {
          st.upstream.write(d);
          return;
        }
        st.buf = Buffer.concat([st.buf, d]);
        const end = st.buf.indexOf("\r\n\r\n");
        if (end < 0 || st.head !== "") return;
        st.head = st.buf.subarray(0, end + 4).toString("latin1");
        const rest = st.buf.subarray(end + 4);
        heads.push(st.head);
        if (opts.refuseWith) {
          s.write(opts.refuseWith);
          s.end();
          return;
        }
        const [method, target] = st.head.split(" ");
        if (method === "CONNECT") {
          const port = Number(target!.slice(target!.lastIndexOf(":") + 1));
          st.upstream = await Bun.connect({
            hostname: "127.0.0.1",
            port,
            socket: {
              data: (_u, x) => void s.write(x),
              close: () => void s.end(),
            },
          });
          s.write("HTTP/1.1 200 Connection established\r\n\r\n");
          if (rest.length) st.upstream.write(rest);
        } else {
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${target!.length}\r\n\r\n${target}`);
        }
      },
      close(s) {
        s.data.upstream?.end();
      },
      error() {},
    },
  });
  return { port: listener.port, heads, stop: () => listener.stop(true) };
}

