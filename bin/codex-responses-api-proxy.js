#!/usr/bin/env node
// npm bin entry: runs the compiled codex-responses-api-proxy (see launch.js).
import { launch } from "./launch.js";

launch("codex-responses-api-proxy");
