import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { loadLibc, type OsError } from "../../src/hardening/libc.ts";
import { KeyReadError, MSG_INVALID } from "../../src/responses/key-reader.ts";
import { libcReader, readLockedKey } from "../../src/responses/locked-key.ts";

const enc = new TextEncoder();

function feeder(text: string) {
  let done = false;
  return (dst: Uint8Array) => {
    if (done) return 0;
    done = true;
    const b = enc.encode(text);
    dst.set(b);
    return b.length;
  };
}

describe.skipIf(process.platform === "win32")("readLockedKey with the real libc", () => {
  const libc = loadLibc()!;

  test("value is `Bearer <key>` on a page outside the JS heap", () => {
    const key = readLockedKey(libc, feeder("sk-locked_1\n"));
    try {
      expect(new TextDecoder().decode(key.value)).toBe("Bearer sk-locked_1");
      // A view onto the mmapped page: the backing buffer is the whole page.
      expect(key.value.buffer.byteLength).toBe(libc.pageSize);
      expect(key.value.byteOffset).toBe(0);
    } finally {
      key.dispose();
    }
  });

  // The kernel's count, not the product's own `locked` flag (issue 14, row 7): VmLck in
  // /proc/self/status grows by at least the key's page while it is held, and shrinks back
  // when it is disposed.
  test.skipIf(process.platform !== "linux")("the page is locked: VmLck grows while the key is held and shrinks after dispose", () => {
    const vmLckKiB = () => Number(/^VmLck:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1]);
    const before = vmLckKiB();
    const key = readLockedKey(libc, feeder("sk-locked_2\n"));
    let held: number;
    try {
      held = vmLckKiB();
    } finally {
      key.dispose();
    }
    const after = vmLckKiB();
    const page = libc.pageSize / 1024;
    expect({ flag: key.locked, grewByAPage: held - before >= page, released: before - after >= 0 && held - after >= page }).toEqual({
      flag: true,
      grewByAPage: true,
      released: true,
    });
  });

  test("invalid key → KeyReadError, nothing kept", () => {
    expect(() => readLockedKey(libc, feeder("bad key\n"))).toThrow(new KeyReadError(MSG_INVALID));
  });
});

describe("libcReader", () => {
  test("EAGAIN waits for readability and reads again", () => {
    const events: string[] = [];
    let first = true;
    const EAGAIN: OsError = { errno: 11, message: "Resource temporarily unavailable (os error 11)" };
    const read = libcReader({
      EAGAIN: 11,
      read: (_fd, dst) => {
        events.push("read");
        if (first) {
          first = false;
          return EAGAIN;
        }
        dst[0] = 0x61;
        return 1;
      },
      waitReadable: () => (events.push("poll"), null),
    });
    expect(read(new Uint8Array(4))).toBe(1);
    expect(events).toEqual(["read", "poll", "read"]);
  });

  test("poll failure is returned as the OS error", () => {
    const err: OsError = { errno: 9, message: "Bad file descriptor (os error 9)" };
    const read = libcReader({ EAGAIN: 11, read: () => ({ errno: 11, message: "x" }), waitReadable: () => err });
    expect(read(new Uint8Array(1))).toEqual(err);
  });

  test.skipIf(process.platform === "win32")("real read(2) on a bad descriptor reports the OS error text", () => {
    const libc = loadLibc()!;
    expect(libcReader(libc, 987)(new Uint8Array(1))).toEqual({ errno: 9, message: "Bad file descriptor (os error 9)" });
  });
});
