/**
 * `--dump-dir` (SPEC §1.7): one request file and one response file per forwarded call.
 *
 * Files: `<seq 6 digits>-<ms since epoch>-request.json` / `-response.json`, pretty JSON
 * (2 spaces) + `\n`. Request keys: method, url, headers ([{name, value}] as received), body.
 * Response keys: status, headers (all upstream headers), body. Bodies are embedded as JSON
 * when they parse, else as (lossy UTF-8) strings, `""` when empty. `authorization` and any
 * header whose lowercased name contains `cookie` are `[REDACTED]`. Write failures are
 * reported through `onError` and never affect forwarding.
 *
 * The files hold whole prompts and answers, and the folder may be shared (`/tmp/dumps`): the
 * folder is created 0700 and every file is written 0600 to a temporary name with a random
 * part, opened `O_CREAT|O_EXCL|O_NOFOLLOW` (a symlink or file planted under that name makes
 * the open fail instead of redirecting the write), then renamed into place, which replaces a
 * planted symlink rather than following it, and a reader never sees half a file (SPEC §1.7).
 */
import { constants } from "node:fs";
import { mkdir, open, rename, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { BodySource } from "../http1/types.ts";

/** Records exchanges into one directory; the sequence is per instance (per process in practice). */
export interface Dumper {
  /** Write the request file (awaited before the upstream call); returns the exchange's response recorder. */
  request(method: string, target: string, headers: Array<[string, string]>, body: Uint8Array): Promise<DumpExchange>;
  /**
   * Take the next sequence number now and write the request file later (a streamed body is
   * dumped once it has been read; SPEC §1.7).
   */
  open(): DumpExchange & { request(method: string, target: string, headers: Array<[string, string]>, body: Uint8Array): Promise<void> };
}

/** The response half of one dumped exchange. */
export interface DumpExchange {
  /** Response without a body stream (e.g. an error). */
  response(status: number, headers: Array<[string, string]>, body: Uint8Array): Promise<void>;
  /**
   * Pass `body` through unchanged, recording it; the file is written once when the body
   * ends, fails (client dropped: the upstream request is aborted), or is cancelled.
   */
  wrap(status: number, headers: Array<[string, string]>, body: BodySource): BodySource;
}

/** `[REDACTED]` rule of SPEC §1.7. */
export function redact(name: string, value: string): string {
  const lower = name.toLowerCase();
  return lower === "authorization" || lower.includes("cookie") ? "[REDACTED]" : value;
}

/** Body as embedded in a dump file: parsed JSON, else lossy UTF-8 text, `""` when empty. */
export function dumpBody(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return "";
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function headerList(headers: Array<[string, string]>): Array<{ name: string; value: string }> {
  return headers.map(([name, value]) => ({ name, value: redact(name, value) }));
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Create a dumper writing into `dir` (which must exist). */
export function createDumper(dir: string, onError: (message: string) => void): Dumper {
  let seq = 0;
  const write = async (file: string, value: unknown) => {
    const tmp = join(dir, `.${file}.${randomBytes(8).toString("hex")}.tmp`);
    try {
      const fh = await open(tmp, CREATE_NEW, 0o600);
      try {
        await fh.writeFile(JSON.stringify(value, null, 2) + "\n");
      } finally {
        await fh.close();
      }
      await rename(tmp, join(dir, file));
    } catch (e) {
      await unlink(tmp).catch(() => {});
      onError(`writing dump file ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const dumper: Dumper = {
    async request(method, target, headers, body) {
      const exchange = dumper.open();
      await exchange.request(method, target, headers, body);
      return exchange;
    },
    open() {
      seq += 1;
      const prefix = `${String(seq).padStart(6, "0")}-${Date.now()}`;
      const request = (method: string, target: string, headers: Array<[string, string]>, body: Uint8Array) =>
        write(`${prefix}-request.json`, { method, url: target, headers: headerList(headers), body: dumpBody(body) });
      let written = false;
      const response = (status: number, h: Array<[string, string]>, b: Uint8Array) => {
        if (written) return Promise.resolve();
        written = true;
        return write(`${prefix}-response.json`, { status, headers: headerList(h), body: dumpBody(b) });
      };
      return {
        request,
        response,
        wrap(status: number, h: Array<[string, string]>, source: BodySource): BodySource {
          const chunks: Uint8Array[] = [];
          let total = 0;
          const finish = () => void response(status, h, concat(chunks, total));
          return {
            attach(consumer) {
              source.attach({
                data(piece) {
                  chunks.push(piece);
                  total += piece.byteLength;
                  consumer.data(piece);
                },
                flush: () => consumer.flush(),
                end() {
                  finish();
                  consumer.end();
                },
                error(err) {
                  finish();
                  consumer.error(err);
                },
              });
            },
            pause: () => source.pause(),
            resume: () => source.resume(),
            cancel() {
              finish();
              source.cancel();
            },
          };
        },
      };
    },
  };
  return dumper;
}

/** Create `dir` recursively, mode 0700 (folders that already exist are left as they are). @throws with the OS message on failure. */
export async function ensureDumpDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** create-new, write-only, never through a symlink (SPEC §1.7). */
const CREATE_NEW = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
