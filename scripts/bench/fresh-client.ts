/**
 * Fresh-connection load generator, run as its own process by scripts/bench.ts so its CPU is
 * not the harness's: `--concurrency` loops, each opening one new TCP connection at a time for
 * `--seconds`: (HTTP CONNECT → `200`, or SOCKS5 greeting → method 0x00 → CONNECT request →
 * REP 0x00, or nothing for `direct`), then `GET /small` with `Connection: close` to the
 * origin, reading until the origin closes. Per connection it records the time from connect()
 * to the tunnel being up (200 / REP, "established") and to the origin's close ("total").
 *
 * Usage: bun scripts/bench/fresh-client.ts --mode connect|socks5|direct --port P
 *   --origin-port O [--concurrency 16] [--seconds 5]
 * Prints one JSON line: {"count","seconds","rate","errors","p50ms","p99ms","establishedP50ms",
 * "establishedP99ms"}. Every connection is bounded by a 10 s timeout; loopback only.
 */
import type { Socket } from "bun";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "connect" },
    port: { type: "string" },
    "origin-port": { type: "string" },
    concurrency: { type: "string", default: "16" },
    seconds: { type: "string", default: "5" },
  },
});
const mode = values.mode as "connect" | "socks5" | "direct";
if (!["connect", "socks5", "direct"].includes(mode)) throw new Error(`bad --mode ${values.mode}`);
const originPort = Number(values["origin-port"]);
const port = mode === "direct" ? originPort : Number(values.port);
const concurrency = Math.min(256, Math.max(1, Number(values.concurrency)));
const seconds = Math.min(120, Math.max(1, Number(values.seconds)));

const enc = new TextEncoder();
const CONNECT = enc.encode(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\n\r\n`);
const GREETING = Uint8Array.of(5, 1, 0);
const SOCKS_REQUEST = Uint8Array.of(5, 1, 0, 1, 127, 0, 0, 1, originPort >> 8, originPort & 0xff);
const GET = enc.encode(`GET /small HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nConnection: close\r\n\r\n`);

type Phase = "connect-reply" | "socks-method" | "socks-reply" | "response";
interface Conn {
  phase: Phase;
  t0: number;
  established: number;
  got: number;
  ok: boolean;
  done: (ok: boolean) => void;
}

const totals: number[] = [];
const establishedTimes: number[] = [];
let errors = 0;

/** One connection through the whole exchange; resolves when it is closed (never rejects). */
function oneConnection(): Promise<void> {
  const { promise, resolve } = Promise.withResolvers<void>();
  const state: Conn = {
    phase: mode === "connect" ? "connect-reply" : mode === "socks5" ? "socks-method" : "response",
    t0: performance.now(),
    established: 0,
    got: 0,
    ok: false,
    done: (ok) => {
      if (ok) {
        totals.push(performance.now() - state.t0);
        establishedTimes.push(state.established - state.t0);
      } else errors++;
      resolve();
    },
  };
  let settled = false;
  const finish = (ok: boolean) => {
    if (settled) return;
    settled = true;
    state.done(ok);
  };
  const fail = (s: Socket<Conn>) => {
    s.terminate();
    finish(false);
  };
  Bun.connect<Conn>({
    hostname: "127.0.0.1",
    port,
    data: state,
    socket: {
      open(s) {
        s.setNoDelay(true);
        s.timeout(10);
        if (mode === "connect") s.write(CONNECT);
        else if (mode === "socks5") s.write(GREETING);
        else {
          state.established = performance.now();
          s.write(GET);
        }
      },
      data(s, chunk) {
        const c = s.data;
        switch (c.phase) {
          case "connect-reply": {
            // The whole reply head arrives in one segment on loopback; a peer that splits it
            // would be counted as an error, which the error column would show.
            const text = new TextDecoder().decode(chunk);
            if (!text.startsWith("HTTP/1.1 200") && !text.startsWith("HTTP/1.0 200")) return fail(s);
            if (!text.endsWith("\r\n\r\n")) return fail(s);
            c.established = performance.now();
            c.phase = "response";
            s.write(GET);
            return;
          }
          case "socks-method":
            if (chunk.byteLength !== 2 || chunk[0] !== 5 || chunk[1] !== 0) return fail(s);
            c.phase = "socks-reply";
            s.write(SOCKS_REQUEST);
            return;
          case "socks-reply":
            if (chunk.byteLength !== 10 || chunk[1] !== 0) return fail(s);
            c.established = performance.now();
            c.phase = "response";
            s.write(GET);
            return;
          case "response":
            c.got += chunk.byteLength;
            return;
        }
      },
      end(s) {
        s.end();
      },
      close(s) {
        finish(s.data.phase === "response" && s.data.got > 1024);
      },
      timeout(s) {
        fail(s);
      },
      error(s) {
        fail(s);
      },
      connectError() {
        finish(false);
      },
    },
  }).catch(() => finish(false));
  return promise;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const start = performance.now();
const deadline = start + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    // Bounded by the deadline; at most 1 M connections per loop as a hard stop.
    for (let i = 0; i < 1_000_000 && performance.now() < deadline; i++) await oneConnection();
  }),
);
const elapsed = (performance.now() - start) / 1000;
console.log(
  JSON.stringify({
    count: totals.length,
    seconds: elapsed,
    rate: totals.length / elapsed,
    errors,
    p50ms: quantile(totals, 0.5),
    p99ms: quantile(totals, 0.99),
    establishedP50ms: quantile(establishedTimes, 0.5),
    establishedP99ms: quantile(establishedTimes, 0.99),
  }),
);
