import { afterAll, describe, expect, test } from "bun:test";
import type { Socket, SocketHandler } from "bun";
import { createDialer, toDialError } from "../../../src/network/dialer.ts";
import { DialError } from "../../../src/network/dial-error.ts";

/** An echo server on an ephemeral loopback port. */
const echo = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(s, d) {
      s.write(d);
    },
  },
});

/** A port that was just listening and is now closed: connecting is refused. */
async function closedPort(): Promise<number> {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

afterAll(() => {
  echo.stop(true);
});

/** Handlers that collect received bytes and resolve when `want` bytes arrived / on close. */
function collector(want: number) {
  const got = Promise.withResolvers<string>();
  const closed = Promise.withResolvers<void>();
  let buf = "";
  const events: string[] = [];
  const handlers: SocketHandler<{ tag: string }> = {
    open: () => void events.push("open"),
    data(_s, d) {
      buf += new TextDecoder().decode(d);
      if (buf.length >= want) got.resolve(buf);
    },
    close: () => {
      events.push("close");
      closed.resolve();
    },
  };
  return { handlers, got: got.promise, closed: closed.promise, events };
}

describe("createDialer", () => {
  test("allowHalfOpen: the peer's FIN reaches `end` and the socket still sends; without it, a FIN closes", async () => {
    const got: string[] = [];
    const serverClosed = Promise.withResolvers<void>();
    // Sends "bye" and FIN at once, then records what still arrives.
    const finFirst = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      allowHalfOpen: true,
      socket: {
        open(s) {
          s.write("bye");
          s.shutdown();
        },
        data: (_s, d) => void got.push(new TextDecoder().decode(d)),
        close: () => serverClosed.resolve(),
      },
    });
    try {
      const ended = Promise.withResolvers<Socket<{ tag: string }>>();
      const closed = Promise.withResolvers<void>();
      const handlers: SocketHandler<{ tag: string }> = {
        data() {},
        end: (s) => ended.resolve(s),
        close: () => closed.resolve(),
      };
      await createDialer().connect(["127.0.0.1"], finFirst.port, handlers, { tag: "h" }, { allowHalfOpen: true });
      const s = await ended.promise;
      s.write("after your FIN");
      s.shutdown();
      await Promise.all([serverClosed.promise, closed.promise]);
      expect(got.join("")).toBe("after your FIN");

      const plainClosed = Promise.withResolvers<void>();
      const events: string[] = [];
      await createDialer().connect(
        ["127.0.0.1"],
        finFirst.port,
        { data() {}, end: () => void events.push("end"), close: () => (events.push("close"), plainClosed.resolve()) },
        { tag: "p" },
      );
      await plainClosed.promise;
      expect(events.at(-1)).toBe("close");
    } finally {
      finFirst.stop(true);
    }
  });

  test("connects to a listening port, forwards events and keeps the caller's data", async () => {
    const c = collector(5);
    const socket: Socket<{ tag: string }> = await createDialer().connect(["127.0.0.1"], echo.port, c.handlers, {
      tag: "t1",
    });
    expect(socket.data).toEqual({ tag: "t1" });
    socket.write("hello");
    expect(await c.got).toBe("hello");
    socket.end();
    await c.closed;
    expect(c.events).toEqual(["open", "close"]);
  });

  test("a closed port is `refused`", async () => {
    const port = await closedPort();
    const c = collector(1);
    const err = await createDialer()
      .connect(["127.0.0.1"], port, c.handlers, { tag: "x" })
      .then(
        () => null,
        (e) => e,
      );
    expect(err).toBeInstanceOf(DialError);
    expect((err as DialError).code).toBe("refused");
    expect((err as DialError).message).toBe(`connect to 127.0.0.1:${port} failed: ECONNREFUSED`);
    expect(c.events).toEqual([]);
  });

  test("tries the pinned addresses in order until one accepts", async () => {
    const c = collector(2);
    // ::1 may be absent in a container; either way the second (listening) address must win.
    const socket = await createDialer().connect(["::1", "127.0.0.1"], echo.port, c.handlers, { tag: "y" });
    socket.write("ok");
    expect(await c.got).toBe("ok");
    socket.end();
    await c.closed;
  });

  test("never resolves names and rejects an empty list", async () => {
    const c = collector(1);
    const dialer = createDialer();
    const named = await dialer.connect(["localhost"], echo.port, c.handlers, { tag: "z" }).catch((e) => e);
    expect(named).toEqual(new DialError("other", "refusing to dial a name instead of a checked address: localhost"));
    const none = await dialer.connect([], echo.port, c.handlers, { tag: "z" }).catch((e) => e);
    expect(none).toEqual(new DialError("other", "no addresses to connect to"));
    expect(c.events).toEqual([]);
  });

  test("a port out of range is `other`, without a dangling timer", async () => {
    const c = collector(1);
    const err = await createDialer({ timeoutMs: 50 })
      .connect(["127.0.0.1"], 70000, c.handlers, { tag: "p" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(DialError);
    expect((err as DialError).code).toBe("other");
  });

  test("errno codes map to dial error codes", () => {
    const codes = ["ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "ETIMEDOUT", "EINVAL"].map(
      (code) => toDialError(Object.assign(new Error("x"), { code }), "h:1").code,
    );
    expect(codes).toEqual(["refused", "network_unreachable", "host_unreachable", "timeout", "other"]);
  });

  // A listener with backlog 0 that never accepts: once its accept queue is full the kernel
  // drops further SYNs, so a loopback connect hangs (no traffic leaves the machine).
  test.skipIf(!Bun.which("python3"))("a connect that never completes is `timeout`", async () => {
    const script =
      "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\n" +
      "print(s.getsockname()[1],flush=True)\nsys.stdin.read()";
    const py = Bun.spawn(["python3", "-c", script], { stdin: "pipe", stdout: "pipe" });
    const fillers: Socket<undefined>[] = [];
    try {
      const first = await py.stdout.getReader().read();
      const port = Number(new TextDecoder().decode(first.value).trim());
      const dialer = createDialer({ timeoutMs: 200 });
      let err: unknown = null;
      // Bounded: the queue holds one or two pending connections depending on the kernel.
      for (let i = 0; i < 4 && err === null; i++) {
        const c = collector(1);
        try {
          fillers.push((await dialer.connect(["127.0.0.1"], port, c.handlers, { tag: "f" })) as never);
        } catch (e) {
          err = e;
          expect(c.events).toEqual([]);
        }
      }
      expect(err).toEqual(new DialError("timeout", `connect to 127.0.0.1:${port} timed out after 200 ms`));
    } finally {
      for (const f of fillers) f.terminate();
      py.stdin.end();
      py.kill();
      await py.exited;
    }
  });
});
