/**
 * The network proxy's request-head parser: the shared strict parser
 * (src/http1/request-head-parser.ts, RFC 9112 §2–§6, SPEC-network §4) with the network
 * listener's bounds as its defaults: heads up to 32 KiB, 100 field lines, up to four empty
 * lines before the request line.
 */
export {
  DEFAULT_MAX_FIELDS,
  DEFAULT_MAX_HEAD_BYTES,
  headerValue,
  parseRequestHead,
  type BodyFraming,
  type HeadLimits,
  type HeadParseResult,
  type RequestHead,
} from "../../http1/request-head-parser.ts";
