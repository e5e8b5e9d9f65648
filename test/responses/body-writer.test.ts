/**
 * Response serialisation of the responses listener (src/responses/body-writer.ts): latin1
 * heads (byte-exact obs-text), and pipeBody's batching (one write per upstream read; head,
 * pieces and the last chunk together when they came together) and backpressure.
 */
import { describe, expect, test } from "bun:test";
import type { BodyConsumer, BodySource } from "../../src/http1/types.ts";
import { encodeResponseHead, pipeBody, type BodySink, type PipeOutcome } from "../../src/responses/body-writer.ts";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

/** A BodySource driven by the test: `consumer` is what pipeBody attached. */
function source() {
  const s = { consumer: null as BodyConsumer | null, paused: 0, resumed: 0, cancelled: 0 };
  const src: BodySource = {
    attach: (c) => void (s.consumer = c),
    pause: () => void s.paused++,
    resume: () => void s.resumed++,
    cancel: () => void s.cancelled++,
  };
  return { s, src };
}

/** A sink recording writes; `backlog` is set by the test. */
function sink() {
  const writes: string[] = [];
  let drained = Promise.withResolvers<void>();
  const k = {
    writes,
    backlog: 0,
    closed: false,
    drain() {
      k.backlog = 0;
      const d = drained;
      drained = Promise.withResolvers<void>();
      d.resolve();
    },
  };
  const bodySink: BodySink = {
    write: (b) => void writes.push(text(b)),
    get backlog() {
      return k.backlog;
    },
    drained: () => drained.promise,
    get closed() {
      return k.closed;
    },
  };
  return { k, bodySink };
}

describe("encodeResponseHead", () => {
  test("framing fields of the app dropped, ours added; values written as latin1 bytes", () => {
    const head = encodeResponseHead(200, [["X-Latin", "caf\u00e9"], ["Content-Length", "9"], ["connection", "x"]], { kind: "chunked" }, true);
    expect(Array.from(head.subarray(26, 30))).toEqual([0x63, 0x61, 0x66, 0xe9]);
    expect(text(head)).toBe("HTTP/1.1 200 OK\r\nX-Latin: caf\u00e9\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
  });
});

describe("pipeBody", () => {
  test("head room (known length): pieces and ranges copied behind the head, one write; overflow written after it", () => {
    const { s, src } = source();
    const { k, bodySink } = sink();
    const outcomes: PipeOutcome[] = [];
    const head = new Uint8Array(2 + 5);
    head.set(new TextEncoder().encode("H|"));
    pipeBody(bodySink, head, src, false, (o) => outcomes.push(o), 2);
    s.consumer!.range!(new TextEncoder().encode("xxabyy"), 2, 4);
    s.consumer!.data(new TextEncoder().encode("cde"));
    s.consumer!.flush();
    s.consumer!.range!(new TextEncoder().encode("more"), 0, 4);
    s.consumer!.end();
    expect(k.writes).toEqual(["H|abcde", "more"]);
    expect(outcomes).toEqual(["complete"]);
  });

  test("head, the pieces of one read and the last chunk go out in one write", () => {
    const { s, src } = source();
    const { k, bodySink } = sink();
    const outcomes: PipeOutcome[] = [];
    pipeBody(bodySink, new TextEncoder().encode("H\r\n\r\n"), src, true, (o) => outcomes.push(o));
    s.consumer!.data(new TextEncoder().encode("ab"));
    s.consumer!.data(new TextEncoder().encode("cde"));
    s.consumer!.end();
    expect(k.writes).toEqual(["H\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"]);
    expect(outcomes).toEqual(["complete"]);
  });

  test("one write per upstream read (flush), close-delimited framing without chunk sizes", () => {
    const { s, src } = source();
    const { k, bodySink } = sink();
    pipeBody(bodySink, new TextEncoder().encode("H|"), src, false, () => {});
    s.consumer!.data(new TextEncoder().encode("event 1|"));
    s.consumer!.flush();
    s.consumer!.data(new TextEncoder().encode("event 2|"));
    s.consumer!.flush();
    s.consumer!.end();
    expect(k.writes).toEqual(["H|event 1|", "event 2|"]);
  });

  test("a client backlog pauses the upstream until drained; then it resumes", async () => {
    const { s, src } = source();
    const { k, bodySink } = sink();
    pipeBody(bodySink, new TextEncoder().encode("H|"), src, false, () => {});
    k.backlog = 10;
    s.consumer!.data(new TextEncoder().encode("x"));
    s.consumer!.flush();
    expect([s.paused, s.resumed]).toEqual([1, 0]);
    k.drain();
    await Promise.resolve();
    await Promise.resolve();
    expect([s.paused, s.resumed]).toEqual([1, 1]);
  });

  test("an upstream error writes what was read, then reports it; a closed client reports client-closed", () => {
    const a = source();
    const sa = sink();
    const outcomes: PipeOutcome[] = [];
    pipeBody(sa.bodySink, new TextEncoder().encode("H|"), a.src, true, (o) => outcomes.push(o));
    a.s.consumer!.data(new TextEncoder().encode("x"));
    a.s.consumer!.error(new Error("upstream cut"));
    expect(sa.k.writes).toEqual(["H|1\r\nx\r\n"]);
    const b = source();
    const sb = sink();
    pipeBody(sb.bodySink, new TextEncoder().encode("H|"), b.src, true, (o) => outcomes.push(o));
    sb.k.closed = true;
    b.s.consumer!.error(new Error("aborted"));
    expect(sb.k.writes).toEqual([]);
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o))).toEqual(["upstream cut", "client-closed"]);
  });
});
