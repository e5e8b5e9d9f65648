#!/usr/bin/env node
// npm bin entry: runs the compiled codex-network-proxy (see launch.js).
import { launch } from "./launch.js";

launch("codex-network-proxy");
