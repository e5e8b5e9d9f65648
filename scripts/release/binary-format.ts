/**
 * What kind of executable a file is, read from its headers (no `file(1)` needed):
 * ELF (e_machine; PT_INTERP names the dynamic loader, which tells glibc from musl), thin 64-bit
 * Mach-O (cputype), PE32+ (COFF machine and optional-header magic). Sources: the System V ABI
 * ELF header and program header layouts, Apple's `<mach-o/loader.h>`, Microsoft's PE format.
 */

/** The answer for one file; `format: "unknown"` when none of the three. */
export type BinaryFormat =
  | { format: "elf"; arch: "x86_64" | "aarch64" | `machine ${number}`; interpreter: string | null }
  | { format: "macho"; arch: "x86_64" | "arm64" | `cputype 0x${string}` }
  | { format: "pe32+"; arch: "x86_64" | `machine 0x${string}` }
  | { format: "unknown" };

const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const PT_INTERP = 3;

/** Reads the headers of `file`'s bytes; never throws on short or odd input. */
export function binaryFormat(file: Uint8Array): BinaryFormat {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length >= 64 && v.getUint32(0) === 0x7f454c46 && file[4] === 2 && file[5] === 1) {
    const machine = v.getUint16(18, true);
    const phoff = Number(v.getBigUint64(32, true));
    const phentsize = v.getUint16(54, true);
    const phnum = v.getUint16(56, true);
    let interpreter: string | null = null;
    for (let i = 0; i < phnum; i++) {
      const ph = phoff + i * phentsize;
      if (ph + 56 > file.length || v.getUint32(ph, true) !== PT_INTERP) continue;
      const off = Number(v.getBigUint64(ph + 8, true));
      const size = Number(v.getBigUint64(ph + 32, true));
      interpreter = new TextDecoder().decode(file.subarray(off, off + size)).replace(/\0+$/, "");
    }
    const arch = machine === EM_X86_64 ? "x86_64" : machine === EM_AARCH64 ? "aarch64" : (`machine ${machine}` as const);
    return { format: "elf", arch, interpreter };
  }
  if (file.length >= 32 && v.getUint32(0, true) === 0xfeedfacf) {
    const cpu = v.getUint32(4, true);
    return { format: "macho", arch: cpu === 0x01000007 ? "x86_64" : cpu === 0x0100000c ? "arm64" : `cputype 0x${cpu.toString(16)}` };
  }
  if (file.length >= 64 && file[0] === 0x4d && file[1] === 0x5a) {
    const pe = v.getUint32(0x3c, true);
    if (pe + 26 <= file.length && v.getUint32(pe) === 0x50450000 && v.getUint16(pe + 24, true) === 0x20b) {
      const machine = v.getUint16(pe + 4, true);
      return { format: "pe32+", arch: machine === 0x8664 ? "x86_64" : `machine 0x${machine.toString(16)}` };
    }
  }
  return { format: "unknown" };
}

/** What each release target's executables must be. */
export const EXPECTED_FORMAT: Record<string, BinaryFormat> = {
  "linux-x64": { format: "elf", arch: "x86_64", interpreter: "/lib64/ld-linux-x86-64.so.2" },
  "linux-arm64": { format: "elf", arch: "aarch64", interpreter: "/lib/ld-linux-aarch64.so.1" },
  "linux-x64-musl": { format: "elf", arch: "x86_64", interpreter: "/lib/ld-musl-x86_64.so.1" },
  "linux-arm64-musl": { format: "elf", arch: "aarch64", interpreter: "/lib/ld-musl-aarch64.so.1" },
  "darwin-x64": { format: "macho", arch: "x86_64" },
  "darwin-arm64": { format: "macho", arch: "arm64" },
  "windows-x64": { format: "pe32+", arch: "x86_64" },
};
