/**
 * Entry point of the `codex-network-proxy` executable. Process hardening (SPEC §3) must run
 * before anything else, so its module is the first import (ES modules evaluate in order).
 */
import "../hardening/pre-main.ts";
import { runCli } from "./cli.ts";

const code = await runCli(process.argv.slice(2));
process.exit(code);
