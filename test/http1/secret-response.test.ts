import { afterAll, expect, test } from "bun:test";
import { createHttp1Client } from "../../src/http1/client.ts";
import type { DirectResponse } from "../../src/http1/types.ts";

const SECRET = '{"access_token":"tok-secret-123"}';
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (req) =>
    new URL(req.url).pathname === "/chunked"
      ? new Response(new Blob([SECRET]).stream())
      : new Response(SECRET, { headers: { "x-a": "b" } }),
});
const client = createHttp1Client({ proxyEnv: null });
afterAll(() => {
  client.close();
  server.stop(true);
});

/** Send on the callback path and attach in onResponse; keep the pieces as given (views). */
function collect(path: string, secretResponse: boolean) {
  const done = Promise.withResolvers<{ kept: Uint8Array[]; copied: string }>();
  const kept: Uint8Array[] = [];
  let copied = "";
  client.send(
    { url: new URL(`http://127.0.0.1:${server.port}${path}`), method: "GET", headers: [["host", "h"]], secretResponse },
    {
      onError: done.reject,
      onResponse(res: DirectResponse) {
        res.body.attach({
          data(piece) {
            kept.push(piece);
            copied += new TextDecoder().decode(piece);
          },
          flush() {},
          end: () => done.resolve({ kept, copied }),
          error: done.reject,
        });
      },
    },
  );
  return done.promise;
}

test.each(["/length", "/chunked"])("secretResponse zeroes the received chunks once delivered (%s)", async (path) => {
  const secret = await collect(path, true);
  expect(secret.copied).toBe(SECRET);
  expect(secret.kept.every((p) => p.every((b) => b === 0))).toBe(true);
  const plain = await collect(path, false);
  expect(plain.kept.map((p) => new TextDecoder().decode(p)).join("")).toBe(SECRET);
});

test("secretResponse: pieces that arrive before the consumer attaches are kept as copies", async () => {
  const res = await client.requestDirect({ url: new URL(`http://127.0.0.1:${server.port}/length`), method: "GET", headers: [["host", "h"]], secretResponse: true });
  const text = await new Promise<string>((resolve, reject) => {
    let s = "";
    res.body.attach({ data: (p) => (s += new TextDecoder().decode(p)), flush() {}, end: () => resolve(s), error: reject });
  });
  expect(text).toBe(SECRET);
});
