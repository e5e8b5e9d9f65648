import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EINTR, loadLibc, type OsError } from "../../../src/hardening/libc.ts";
import { createSecretStore } from "../../../src/network/hooks/secret-store.ts";
import { MAX_SECRET_BYTES, readSecret, readSecretBytes, SecretReadError, type ReadFn } from "../../../src/network/hooks/secret.ts";
import type { HookSpec } from "../../../src/network/hooks/spec.ts";

const libc = loadLibc();
const dir = mkdtempSync(join(tmpdir(), "hook-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const enc = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A reader that hands out `parts` one per call (Errors as OS errors), then EOF. */
function scripted(parts: Array<string | OsError>): ReadFn {
  let i = 0;
  let pending: Uint8Array | null = null;
  return (dst) => {
    if (pending === null) {
      const p = parts[i++];
      if (p === undefined) return 0;
      if (typeof p !== "string") return p;
      pending = enc.encode(p);
    }
    const n = Math.min(dst.byteLength, pending.byteLength);
    dst.set(pending.subarray(0, n));
    pending = n === pending.byteLength ? null : pending.subarray(n);
    return n;
  };
}

function bytesOf(parts: Array<string | OsError>): string {
  const buf = new Uint8Array(MAX_SECRET_BYTES + 64);
  const n = readSecretBytes(scripted(parts), buf, "src");
  expect(buf.subarray(n).every((b) => b === 0)).toBe(true);
  return text(buf.subarray(0, n));
}

function errorOf(parts: Array<string | OsError>): string {
  const buf = new Uint8Array(MAX_SECRET_BYTES + 64);
  try {
    readSecretBytes(scripted(parts), buf, "src");
  } catch (e) {
    expect(e).toBeInstanceOf(SecretReadError);
    expect(buf.every((b) => b === 0)).toBe(true);
    return (e as Error).message;
  }
  throw new Error("no error");
}

describe("readSecretBytes (SPEC-network §10 secret rules)", () => {
  test("short reads, EINTR, trailing CR/LF trimmed", () => {
    expect(bytesOf(["to", { errno: EINTR, message: "Interrupted" }, "ken\r\n\n"])).toBe("token");
    expect(bytesOf(["a b\tc=="])).toBe("a b\tc==");
    expect(bytesOf(["x".repeat(MAX_SECRET_BYTES) + "\n"])).toBe("x".repeat(MAX_SECRET_BYTES));
  });

  test.each([
    [[""], "src: secret is empty"],
    [["\r\n"], "src: secret is empty"],
    [["x".repeat(MAX_SECRET_BYTES + 1)], `src: secret is longer than ${MAX_SECRET_BYTES} bytes`],
    [["x".repeat(MAX_SECRET_BYTES + 100)], `src: secret is longer than ${MAX_SECRET_BYTES} bytes`],
    [["ab\ncd"], "src: secret contains a CR, LF or NUL byte"],
    [["ab\rcd"], "src: secret contains a CR, LF or NUL byte"],
    [["ab\0cd"], "src: secret contains a CR, LF or NUL byte"],
    [["ab\x1bcd"], "src: secret contains a control character"],
    [["ab", { errno: 5, message: "Input/output error (os error 5)" }], "src: Input/output error (os error 5)"],
  ] as Array<[Array<string | OsError>, string]>)("%p → %p", (parts, want) => {
    expect(errorOf(parts)).toBe(want);
  });
});

describe("readSecret with the real libc", () => {
  test.skipIf(libc === null)("a file is read into locked memory; errors name the source only", () => {
    const file = join(dir, "tok");
    writeFileSync(file, "s3cr3t-value\n");
    const s = readSecret(libc, { kind: "file", path: file }, "hooks[0]");
    expect([text(s.value), s.locked]).toEqual(["s3cr3t-value", true]);
    s.dispose();
    expect(() => readSecret(libc, { kind: "file", path: join(dir, "missing") }, "hooks[0]")).toThrow(
      `hooks[0]: secret_file ${join(dir, "missing")}: cannot open: No such file or directory (os error 2)`,
    );
    writeFileSync(file, "bad\nsecret-value-xyz\n");
    let message = "";
    try {
      readSecret(libc, { kind: "file", path: file }, "hooks[0]");
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(`hooks[0]: secret_file ${file}: secret contains a CR, LF or NUL byte`);
  });

  test.skipIf(libc === null)("a FIFO without a writer reads as empty instead of hanging", () => {
    const fifo = join(dir, "fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    expect(() => readSecret(libc, { kind: "file", path: fifo }, "h")).toThrow(`h: secret_file ${fifo}: secret is empty`);
  });

  test.skipIf(libc === null)("an environment variable is read once, then gone from process.env, the C environment, /proc/self/environ and children", async () => {
    const p = Bun.spawn([process.execPath, join(import.meta.dir, "fixture-env-secret.ts")], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOOK_TEST_SECRET: "env-secret-1\n" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(out)).toEqual({
      value: "env-secret-1",
      locked: true,
      processEnv: null,
      cEnv: null,
      child: "unset",
      inProcEnviron: false,
      again: "h: secret_env_var HOOK_TEST_SECRET: environment variable is not set",
    });
  });
});

function hook(sources: HookSpec["actions"]["injectRequestHeaders"]): HookSpec {
  return {
    name: null,
    host: "a.test",
    match: { methods: ["GET"], pathPrefixes: ["/"], query: [], headers: [] },
    actions: { stripRequestHeaders: [], injectRequestHeaders: sources },
  };
}

describe("secret store generations", () => {
  test("files are re-read per load (rotation), env secrets survive reloads, a failed load changes nothing", () => {
    const file = join(dir, "rot");
    writeFileSync(file, "one\n");
    process.env.HOOK_STORE_SECRET = "from-env";
    const store = createSecretStore(libc);
    const hooks = [
      hook([
        { name: "authorization", prefix: "Bearer ", source: { kind: "file", path: file } },
        { name: "x-env", prefix: "", source: { kind: "env", name: "HOOK_STORE_SECRET" } },
      ]),
      hook([{ name: "x-same", prefix: "", source: { kind: "file", path: file } }]),
    ];
    const g1 = store.load(hooks);
    store.install(g1);
    const view = (g: typeof g1, h: number) => g.fields(h).map((f) => `${f.name}: ${f.prefix}${text(f.value)}`);
    expect([view(g1, 0), view(g1, 1), g1.count]).toEqual([["authorization: Bearer one", "x-env: from-env"], ["x-same: one"], 2]);
    // the same file for two hooks is one copy
    expect(g1.fields(0)[0]!.value).toBe(g1.fields(1)[0]!.value);

    const release = g1.lease();
    writeFileSync(file, "two\n");
    const g2 = store.load(hooks);
    store.install(g2);
    expect(view(g2, 0)).toEqual(["authorization: Bearer two", "x-env: from-env"]);
    // g1 is retired but leased: still readable
    expect(view(g1, 0)).toEqual(["authorization: Bearer one", "x-env: from-env"]);
    release();
    release();

    writeFileSync(file, "");
    expect(() => store.load(hooks)).toThrow(`network_proxy.mitm.hooks[0].actions.inject_request_headers[0]: secret_file ${file}: secret is empty`);
    expect(view(g2, 0)).toEqual(["authorization: Bearer two", "x-env: from-env"]);
    store.dispose();
  });
});
