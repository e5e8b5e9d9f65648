/**
 * The push path of the client (requestDirect → BodySource/BodyConsumer, types.ts) and the
 * light Cancellation: pieces that arrive before a consumer attaches, flush per socket read,
 * end/error, cancel, pause/resume, abort before the head.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Cancellation } from "../../src/http1/cancellation.ts";
import { createHttp1Client } from "../../src/http1/client.ts";
import type { BodyConsumer, DirectResponse } from "../../src/http1/types.ts";
import { startRawServer } from "../helpers/http1.ts";

const flow: boolean[] = [];
const client = createHttp1Client({ proxyEnv: null }, { onFlow: (p) => flow.push(p) });
afterAll(() => client.close());
const url = (port: number) => new URL(`http://127.0.0.1:${port}/x`);
const get = (port: number, signal?: Cancellation) =>
  client.requestDirect({ url: url(port), method: "GET", headers: [["host", `127.0.0.1:${port}`]], ...(signal ? { signal } : {}) });

/** A consumer recording calls as text: `d:<piece>`, `f`, `end`, `err:<message>`. */
function recorder() {
  const log: string[] = [];
  const done = Promise.withResolvers<void>();
  const consumer: BodyConsumer = {
    data: (p) => void log.push(`d:${Buffer.from(p).toString("latin1")}`),
    flush: () => void log.push("f"),
    end: () => {
      log.push("end");
      done.resolve();
    },
    error: (e) => {
      log.push(`err:${e.message}`);
      done.resolve();
    },
  };
  return { log, consumer, done: done.promise };
}

describe("requestDirect", () => {
  test("head, body and end in one read: pieces and end are delivered at attach, no flush before end", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      // obs-text (0xE9) in a field value: decoded byte per code unit (latin1).
      c.write(Buffer.from("HTTP/1.1 200 OK\r\nX-Latin: caf\xe9\r\ncontent-length: 5\r\n\r\nhello", "latin1"));
    });
    const res: DirectResponse = await get(server.port);
    expect([res.status, res.headers]).toEqual([200, [["x-latin", "caf\u00e9"], ["content-length", "5"]]]);
    const r = recorder();
    res.body.attach(r.consumer);
    await r.done;
    expect(r.log).toEqual(["d:hello", "end"]);
  });

  test("a body arriving in several reads: data then flush per read, then end", async () => {
    const second = Promise.withResolvers<void>();
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n");
      await second.promise;
      c.write("2\r\nde\r\n0\r\n\r\n");
    });
    const res = await get(server.port);
    const r = recorder();
    const consumer: BodyConsumer = {
      ...r.consumer,
      flush: () => {
        r.log.push("f");
        second.resolve();
      },
    };
    res.body.attach(consumer);
    await r.done;
    expect(r.log).toEqual(["d:abc", "f", "d:de", "end"]);
  });

  test("an upstream that closes mid-body: error() after the pieces", async () => {
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
      c.socket.end();
    });
    const res = await get(server.port);
    const r = recorder();
    res.body.attach(r.consumer);
    await r.done;
    expect(r.log[0]).toBe("d:abc");
    expect(r.log.at(-1)).toBe("err:upstream closed the connection before the response body was complete");
  });

  test("cancel() closes the connection and calls nothing more; attach twice throws", async () => {
    const closed = Promise.withResolvers<void>();
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc");
      await c.closed.promise;
      closed.resolve();
    });
    const res = await get(server.port);
    const r = recorder();
    res.body.attach(r.consumer);
    expect(() => res.body.attach(r.consumer)).toThrow(TypeError);
    res.body.cancel();
    await closed.promise;
    expect(r.log.includes("end") || r.log.some((l) => l.startsWith("err:"))).toBe(false);
  });

  test("pause() stops reading the connection, resume() reads on", async () => {
    const resumed = Promise.withResolvers<void>();
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      c.write("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nabc");
      await resumed.promise;
      c.write("def");
    });
    const res = await get(server.port);
    const r = recorder();
    flow.length = 0;
    res.body.attach(r.consumer);
    res.body.pause();
    expect(flow).toEqual([true]);
    res.body.resume();
    expect(flow).toEqual([true, false]);
    resumed.resolve();
    await r.done;
    expect(r.log.filter((l) => l.startsWith("d:")).join("")).toBe("d:abcd:def");
  });

  test("a Cancellation aborted before the head rejects with kind aborted and closes the connection", async () => {
    const seen = Promise.withResolvers<void>();
    const closed = Promise.withResolvers<void>();
    using server = startRawServer(async (c) => {
      await c.waitForText("\r\n\r\n");
      seen.resolve();
      await c.closed.promise;
      closed.resolve();
    });
    const cancel = new Cancellation();
    const p = get(server.port, cancel);
    await seen.promise;
    cancel.abort();
    await expect(p).rejects.toMatchObject({ name: "UpstreamError", kind: "aborted" });
    await closed.promise;
  });
});

describe("Cancellation", () => {
  test("listeners run once, in order; removed ones and late ones never run; a throwing one does not stop the rest", () => {
    const c = new Cancellation();
    const calls: string[] = [];
    const a = () => calls.push("a");
    const b = () => calls.push("b");
    c.addEventListener("abort", () => {
      calls.push("thrower");
      throw new Error("x");
    });
    c.addEventListener("abort", a);
    c.addEventListener("abort", b);
    c.removeEventListener("abort", a);
    expect(c.aborted).toBe(false);
    c.abort();
    c.abort();
    c.addEventListener("abort", () => calls.push("late"));
    expect(c.aborted).toBe(true);
    expect(calls).toEqual(["thrower", "b"]);
  });
});
