import { describe, expect, test } from "bun:test";
import { looksLikeTlsHandshake, parseClientHello } from "../../src/network/tls-sni.ts";
import { captureClientHello } from "../helpers/http-proxy.ts";

describe("parseClientHello", () => {
  test("reads the SNI of a real ClientHello, whole and at every split point", async () => {
    const hello = await captureClientHello("Allowed.Test");
    const whole = parseClientHello(hello);
    expect(whole).toEqual({ kind: "client_hello", sni: "allowed.test", length: hello.byteLength });
    for (let n = 0; n < hello.byteLength; n += 7) {
      expect(parseClientHello(hello.subarray(0, n)).kind).toBe("incomplete");
    }
  });

  test("a ClientHello split over two handshake records", async () => {
    const hello = await captureClientHello("other.test");
    const body = hello.subarray(5); // one record in practice: split its fragment in two
    const cut = 50;
    const rec = (frag: Uint8Array) => new Uint8Array([0x16, 0x03, 0x01, frag.byteLength >> 8, frag.byteLength & 0xff, ...frag]);
    const two = new Uint8Array([...rec(body.subarray(0, cut)), ...rec(body.subarray(cut))]);
    expect(parseClientHello(two)).toEqual({ kind: "client_hello", sni: "other.test", length: two.byteLength });
  });

  test("not TLS, malformed, and oversized inputs", async () => {
    expect(parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n"))).toEqual({ kind: "not_tls" });
    expect(looksLikeTlsHandshake(new Uint8Array([0x16]))).toBeNull();
    expect(looksLikeTlsHandshake(new Uint8Array([0x16, 0x03, 0x01]))).toBe(true);
    expect(looksLikeTlsHandshake(new Uint8Array([0x47]))).toBe(false);
    // A handshake record that is not a ClientHello (ServerHello = 2).
    expect(parseClientHello(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00])).kind).toBe("invalid");
    // A record announcing 16 KiB + 1.
    expect(parseClientHello(new Uint8Array([0x16, 0x03, 0x01, 0x40, 0x01])).kind).toBe("invalid");
    // A ClientHello announcing more than the bound.
    const hello = await captureClientHello("allowed.test");
    expect(parseClientHello(hello, 100)).toEqual({ kind: "invalid", message: "ClientHello larger than the inspection bound" });
    // A handshake length one byte short: the extensions no longer fit the message.
    const bad = new Uint8Array(hello);
    const len = (bad[6]! << 16) | (bad[7]! << 8) | bad[8]!;
    bad[6] = ((len - 1) >> 16) & 0xff;
    bad[7] = ((len - 1) >> 8) & 0xff;
    bad[8] = (len - 1) & 0xff;
    expect(parseClientHello(bad)).toEqual({ kind: "invalid", message: "bad ClientHello extensions length" });
  });
});
