/**
 * Importing this module hardens the process (SPEC §3). It must be the FIRST import of every
 * entry point: ES modules evaluate in import order, so nothing else (argument parsing, key
 * reading) runs before it.
 */
import { hardenProcess } from "./harden.ts";

hardenProcess();
