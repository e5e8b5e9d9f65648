import { describe, expect, test } from "bun:test";
import { startProxyChild } from "../../helpers/responses.ts";

const KEY = "sk-proxyenv_KEY-5";

describe("HTTP_PROXY in the environment is honoured for the upstream connection (SPEC §1.5)", () => {
  test("http upstream: absolute-form request to the proxy, key and upstream Host on it", async () => {
    const gotRequest = Promise.withResolvers<string>();
    let received = "";
    const fakeProxy = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, d) {
          received += d.toString("latin1");
          if (received.includes("\r\n\r\n{}")) {
            s.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"via\":\"fp\"}\n");
            gotRequest.resolve(received);
          }
        },
      },
    });
    // upstream.test never resolves: the request can only succeed through the proxy.
    const p = await startProxyChild(["--upstream-url", "http://upstream.test:8080/v1/responses?x=1"], {
      key: KEY,
      env: { HTTP_PROXY: `http://127.0.0.1:${fakeProxy.port}` },
    });
    try {
      const res = await fetch(`${p.base}/v1/responses`, { method: "POST", body: "{}" });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('{"via":"fp"}\n');
      const req = await gotRequest.promise;
      const lines = req.split("\r\n");
      expect(lines[0]).toBe("POST http://upstream.test:8080/v1/responses?x=1 HTTP/1.1");
      expect(lines).toContain("host: upstream.test:8080");
      expect(lines).toContain(`authorization: Bearer ${KEY}`);
    } finally {
      await p.stop();
      fakeProxy.stop(true);
    }
  });
});
