/**
 * The public ReadableStream face of a pushed response body (ClientResponse.body, types.ts):
 * the client's exchanges push bodies to a BodyConsumer; `request()` wraps them here.
 */
import { RESPONSE_HIGH_WATER_BYTES } from "./exchange.ts";
import type { BodySource, ClientResponse, DirectResponse } from "./types.ts";

/**
 * The public ReadableStream view of a pushed body (ClientResponse.body): its queue is bounded
 * by RESPONSE_HIGH_WATER_BYTES; a full queue pauses the connection and a read resumes it.
 */
export function toReadableStream(source: BodySource): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(ctrl) {
        source.attach({
          data(piece) {
            ctrl.enqueue(piece);
            if ((ctrl.desiredSize ?? 1) <= 0) source.pause();
          },
          flush() {},
          end() {
            try {
              ctrl.close();
            } catch {
              // already cancelled by the reader
            }
          },
          error(err) {
            try {
              ctrl.error(err);
            } catch {
              // already closed by the reader
            }
          },
        });
      },
      pull: () => source.resume(),
      cancel: () => source.cancel(),
    },
    { highWaterMark: RESPONSE_HIGH_WATER_BYTES, size: (c) => c!.byteLength },
  );
}

/** `response` with its body as a ReadableStream (the public ClientResponse). */
export function toClientResponse(response: DirectResponse): ClientResponse {
  return { status: response.status, reason: response.reason, headers: response.headers, body: toReadableStream(response.body) };
}
