import { describe, expect, test } from "bun:test";
import type { OsError } from "../../src/hardening/libc.ts";
import {
  KEY_BUFFER_SIZE,
  KeyReadError,
  MSG_EMPTY,
  MSG_INVALID,
  MSG_TOO_LARGE,
  readAuthHeader,
  type ReadFn,
} from "../../src/responses/key-reader.ts";

/** A scripted stdin: each step is bytes (delivered up to `max` per read), an error, or EOF. */
function script(steps: Array<Uint8Array | string | OsError | "eof">, max = Infinity) {
  const queue = steps.map((s) => (typeof s === "string" && s !== "eof" ? new TextEncoder().encode(s) : s));
  let calls = 0;
  const read: ReadFn = (dst) => {
    calls++;
    if (calls > 10_000) throw new Error("too many reads");
    const head = queue[0];
    if (head === undefined || head === "eof") return 0;
    if (!(head instanceof Uint8Array)) {
      queue.shift();
      return head;
    }
    const n = Math.min(head.length, dst.length, max);
    dst.set(head.subarray(0, n));
    if (n === head.length) queue.shift();
    else queue[0] = head.subarray(n);
    return n;
  };
  return { read, calls: () => calls, left: () => queue };
}

function run(steps: Array<Uint8Array | string | OsError | "eof">, max = Infinity) {
  const buf = new Uint8Array(KEY_BUFFER_SIZE);
  const s = script(steps, max);
  try {
    const len = readAuthHeader(s.read, buf);
    return { ok: true as const, value: new TextDecoder().decode(buf.subarray(0, len)), buf, calls: s.calls(), left: s.left() };
  } catch (e) {
    expect(e).toBeInstanceOf(KeyReadError);
    return { ok: false as const, message: (e as Error).message, buf, calls: s.calls(), left: s.left() };
  }
}

const zeroed = (buf: Uint8Array) => buf.every((b) => b === 0);

describe("readAuthHeader (SPEC §1.3)", () => {
  test.each([
    ["key + newline", ["sk-abc_123\n"], "Bearer sk-abc_123"],
    ["EOF without newline", ["sk-abc", "eof"], "Bearer sk-abc"],
    ["CRLF trimmed", ["abc\r\n"], "Bearer abc"],
    ["\\n\\r\\n: stops at first \\n", ["abc\n\r\n"], "Bearer abc"],
    ["trailing mixed CR/LF before EOF", ["abc\r\r\r", "eof"], "Bearer abc"],
    ["short reads", ["sk-", "ab", "c\n"], "Bearer sk-abc"],
  ])("%s", (_name, steps, expected) => {
    const r = run(steps as string[]);
    expect(r).toMatchObject({ ok: true, value: expected });
    expect(zeroed(r.buf.subarray(expected.length))).toBe(true);
  });

  test("byte-at-a-time reads", () => {
    const r = run(["abcdef_-XYZ09\n"], 1);
    expect(r).toMatchObject({ ok: true, value: "Bearer abcdef_-XYZ09" });
    expect(r.calls).toBe(14);
  });

  test("1016-byte key with newline is accepted", () => {
    const key = "k".repeat(1016);
    expect(run([key + "\n"])).toMatchObject({ ok: true, value: "Bearer " + key });
  });

  test("1016-byte key then EOF is accepted", () => {
    const key = "k".repeat(1016);
    expect(run([key, "eof"])).toMatchObject({ ok: true, value: "Bearer " + key });
  });

  test("1017 bytes without newline: too large, no further read", () => {
    const r = run(["k".repeat(1017), "more"]);
    expect(r).toMatchObject({ ok: false, message: MSG_TOO_LARGE });
    expect(MSG_TOO_LARGE).toBe("API key is too large to fit in the 1024-byte buffer");
    expect(zeroed(r.buf)).toBe(true);
    expect(r.calls).toBe(1);
  });

  test("1017 bytes then EOF: still too large (the buffer filled before EOF was seen)", () => {
    const r = run(["k".repeat(1017), "eof"]);
    expect(r).toMatchObject({ ok: false, message: MSG_TOO_LARGE });
    expect(zeroed(r.buf)).toBe(true);
  });

  test.each([
    ["empty stdin", ["eof"]],
    ["only newline", ["\n"]],
    ["only CRLF", ["\r\n"]],
  ])("%s → must be provided", (_n, steps) => {
    const r = run(steps as string[]);
    expect(r).toMatchObject({ ok: false, message: MSG_EMPTY });
    expect(MSG_EMPTY).toBe("API key must be provided via stdin (e.g. printenv OPENAI_API_KEY | codex-responses-api-proxy)");
    expect(zeroed(r.buf)).toBe(true);
  });

  test.each([
    ["space", "ab c\n"],
    ["leading space", " abc\n"],
    ["dot", "ab.c\n"],
    ["bang", "abc!\n"],
    ["NUL", "ab\0c\n"],
    ["inner CR", "ab\rc\n"],
    ["tab", "abc\t\n"],
  ])("invalid char: %s", (_n, input) => {
    const r = run([input]);
    expect(r).toMatchObject({ ok: false, message: MSG_INVALID });
    expect(MSG_INVALID).toBe("API key may only contain ASCII letters, numbers, '-' or '_'");
    expect(zeroed(r.buf)).toBe(true);
  });

  test("invalid byte \\xff", () => {
    const r = run([new Uint8Array([0x61, 0xff, 0x62, 0x0a])]);
    expect(r).toMatchObject({ ok: false, message: MSG_INVALID });
    expect(zeroed(r.buf)).toBe(true);
  });

  test("EINTR is retried", () => {
    const r = run(["ab", { errno: 4, message: "Interrupted system call (os error 4)" }, "c\n"]);
    expect(r).toMatchObject({ ok: true, value: "Bearer abc" });
  });

  test("EIO fails with the OS error text and zeroes the buffer", () => {
    const r = run(["abc", { errno: 5, message: "Input/output error (os error 5)" }]);
    expect(r).toMatchObject({ ok: false, message: "Input/output error (os error 5)" });
    expect(zeroed(r.buf)).toBe(true);
  });

  test("bytes after the newline are ignored and stdin is not read further", () => {
    const r = run(["abc\nIGNORED garbage!", "never read"]);
    expect(r).toMatchObject({ ok: true, value: "Bearer abc" });
    expect(r.calls).toBe(1);
    expect(r.left).toHaveLength(1);
    expect(zeroed(r.buf.subarray("Bearer abc".length))).toBe(true);
  });
});
