import { expect, test } from "bun:test";
import { loadLibc } from "../../../src/hardening/libc.ts";
import type { ReadFn } from "../../../src/responses/stdin-line.ts";
import { readRequestToken } from "../../../src/responses/oidc/request-token.ts";

const libc = loadLibc();

/** A reader that hands out `chunks` one read at a time (each cut to the buffer), then EOF. */
function reader(...chunks: Array<string | Uint8Array | { errno: number; message: string }>): ReadFn & { reads: number } {
  const queue = chunks.map((c) => (typeof c === "string" ? new TextEncoder().encode(c) : c));
  const fn = ((dst: Uint8Array) => {
    fn.reads++;
    const next = queue.shift();
    if (next === undefined) return 0;
    if (!(next instanceof Uint8Array)) return next;
    const n = Math.min(next.length, dst.length);
    dst.set(next.subarray(0, n));
    if (n < next.length) queue.unshift(next.subarray(n));
    return n;
  }) as ReadFn & { reads: number };
  fn.reads = 0;
  return fn;
}

const outcome = (read: ReadFn) => {
  try {
    const t = readRequestToken(libc, read);
    const v = new TextDecoder().decode(t.value);
    t.dispose();
    return v;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
};

const CHARSET = "AZaz09-._~+/=";
test.each([
  ["newline", ["tok\n"], "Bearer tok"],
  ["EOF without newline", ["tok"], "Bearer tok"],
  ["CRLF", ["tok\r\n"], "Bearer tok"],
  ["short reads, later bytes ignored", ["to", "k\r", "\nignored"], "Bearer tok"],
  ["whole alphabet", [CHARSET + "\n"], `Bearer ${CHARSET}`],
  ["two CRs (only one stripped)", ["tok\r\r\n"], "error: invalid workload identity bearer credential"],
  ["second line ignored", ["tok\n\n"], "Bearer tok"],
  ["lone CR at EOF", ["tok\r"], "Bearer tok"],
  ["empty line", ["\n"], "error: invalid workload identity bearer credential"],
  ["empty stdin", [""], "error: invalid workload identity bearer credential"],
  ["a space", ["a b\n"], "error: invalid workload identity bearer credential"],
  ["a '!'", ["a!\n"], "error: invalid workload identity bearer credential"],
  ["a 0xff byte", [new Uint8Array([0x61, 0xff, 0x0a])], "error: invalid workload identity bearer credential"],
  ["16,384 bytes + CRLF", ["x".repeat(16_384) + "\r\n"], `Bearer ${"x".repeat(16_384)}`],
  ["16,385 bytes", ["x".repeat(16_385) + "\n"], "error: invalid workload identity bearer credential"],
  ["16,385 bytes at EOF", ["x".repeat(16_385)], "error: invalid workload identity bearer credential"],
  ["16,386 bytes without newline", ["x".repeat(16_386)], "error: GitHub OIDC request credential too large"],
  ["20,000 bytes", ["x".repeat(20_000) + "\n"], "error: GitHub OIDC request credential too large"],
  ["EINTR retried", [{ errno: 4, message: "Interrupted system call (os error 4)" }, "tok\n"], "Bearer tok"],
  ["EIO", [{ errno: 5, message: "Input/output error (os error 5)" }], "error: Input/output error (os error 5)"],
])("stdin: %s", (_label, chunks, expected) => {
  expect(outcome(reader(...(chunks as string[])))).toBe(expected);
});

test("no read after the newline (stdin is not drained)", () => {
  const r = reader("tok\n", "more");
  expect(outcome(r)).toBe("Bearer tok");
  expect(r.reads).toBe(1);
});

test.skipIf(libc === null)("the token lives in locked memory", () => {
  const t = readRequestToken(libc, reader("tok\n"));
  expect(t.locked).toBe(true);
  t.dispose();
});
