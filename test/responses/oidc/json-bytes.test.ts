import { expect, test } from "bun:test";
import { decodeJsonString, scanJsonObject } from "../../../src/responses/oidc/json-bytes.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test.each([
  ["", "invalid"],
  ["{", "invalid"],
  ['{"a":1,}', "invalid"],
  ['{"a":1}x', "invalid"],
  ['{"a":01}', "invalid"],
  ['{"a":1.}', "invalid"],
  ['{"a":"\t"}', "invalid"],
  ['{"a":"\\x"}', "invalid"],
  ['{"a":"\\ud800"}', "invalid"],
  ['{"a":tru}', "invalid"],
  ["{'a':1}", "invalid"],
  ['{"a":[1,2,]}', "invalid"],
  ["[" .repeat(129) + "]".repeat(129), "invalid"],
  ["[".repeat(128) + "]".repeat(128), "not-object"],
  ['"x"', "not-object"],
  ["[]", "not-object"],
  ["null", "not-object"],
])("%j is %s", (doc, expected) => {
  expect(scanJsonObject(enc(doc))).toBe(expected as "invalid");
});

test("invalid UTF-8 inside a string is not JSON", () => {
  expect(scanJsonObject(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]))).toBe("invalid");
  expect(scanJsonObject(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]))).toBe("invalid");
});

test("top-level members: kinds, spans, duplicates, nested values skipped", () => {
  const doc = ' { "value" : "a\\/b" , "n": -1.5e3, "o": {"value": 2, "x": [1, {"y": null}]}, "t": true, "value": "c" } ';
  const m = scanJsonObject(enc(doc));
  if (typeof m === "string") throw new Error(m);
  const out = Object.fromEntries([...m].map(([k, v]) => [k, { kind: v.kind, text: doc.slice(v.start, v.end), duplicate: v.duplicate }]));
  expect(out).toEqual({
    value: { kind: "string", text: '"c"', duplicate: true },
    n: { kind: "number", text: "-1.5e3", duplicate: false },
    o: { kind: "object", text: '{"value": 2, "x": [1, {"y": null}]}', duplicate: false },
    t: { kind: "true", text: "true", duplicate: false },
  });
  expect(scanJsonObject(enc("{}"))).toEqual(new Map());
});

test("decodeJsonString decodes escapes and surrogate pairs to UTF-8 and refuses what does not fit", () => {
  const s = enc('"a\\/b\\"\\\\\\n\\u00e9\\ud83d\\ude00é"');
  const dst = new Uint8Array(32);
  const n = decodeJsonString(s, 0, s.length, dst);
  expect(new TextDecoder().decode(dst.subarray(0, n))).toBe('a/b"\\\né😀é');
  const small = new Uint8Array(3).fill(7);
  expect(decodeJsonString(s, 0, s.length, small)).toBe(-1);
  expect([...small]).toEqual([0, 0, 0]);
});
