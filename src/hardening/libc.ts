/**
 * Every `bun:ffi` symbol of the project, in one module, with a pure-TypeScript surface.
 *
 * Callers never see raw pointers: they get numbers, `OsError` values and, for locked
 * memory, a `Uint8Array` view onto an `mmap`ed page (the only place native memory is
 * exposed, because the API key must live outside the JS heap — SPEC §1.3).
 *
 * Platforms: Linux (glibc `libc.so.6`, musl `libc.musl-<arch>.so.1`), macOS
 * (`/usr/lib/libSystem.B.dylib`), FreeBSD (`libc.so.7`). Anywhere else (Windows)
 * `loadLibc()` returns null and callers use their documented fallback; calls that do not
 * exist on an OS are skipped, never faked (SPEC §0).
 */
import { dlopen, FFIType, read as ffiRead, toArrayBuffer, type Pointer } from "bun:ffi";

/** An OS error: `errno` and the text Rust's `io::Error` shows, `"<strerror> (os error <n>)"`. */
export interface OsError {
  errno: number;
  message: string;
}

/** `errno` value of EINTR (the same on Linux, macOS and the BSDs). */
export const EINTR = 4;

/**
 * Memory from `mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)`, `mlock`ed and (Linux)
 * `madvise(MADV_DONTDUMP)`ed. `view` is a zero-copy view of the whole mapping; after
 * `free()` it must not be touched (the pages are zeroed and unmapped).
 */
export interface LockedPages {
  readonly view: Uint8Array;
  /** mlock(2) succeeded. */
  readonly locked: boolean;
  /** madvise(MADV_DONTDUMP) succeeded (always false off Linux). */
  readonly dontDump: boolean;
  free(): void;
}

/** The libc calls the project uses. Methods that do not exist on the current OS throw. */
export interface Libc {
  readonly platform: "linux" | "darwin" | "freebsd";
  /** Linux `prctl(PR_SET_DUMPABLE, value, 0, 0, 0)`. */
  setDumpable(value: 0 | 1): OsError | null;
  /** Linux `prctl(PR_GET_DUMPABLE)`; returns 0, 1 or 2. */
  getDumpable(): number;
  /** macOS `ptrace(PT_DENY_ATTACH, 0, 0, 0)`. */
  denyAttach(): OsError | null;
  /** `setrlimit(RLIMIT_CORE, {0, 0})`. */
  setCoreLimitZero(): OsError | null;
  /** `getrlimit(RLIMIT_CORE)`: soft and hard limits in bytes (RLIM_INFINITY as a bigint). */
  getCoreLimit(): { soft: bigint; hard: bigint } | OsError;
  /**
   * `getrlimit(RLIMIT_NOFILE)` then `setrlimit` with the soft limit raised to the hard one
   * (SPEC-network §12: a proxy holds two descriptors per proxied connection). On macOS an
   * unlimited hard limit is capped at OPEN_MAX (10240), the most `setrlimit` accepts there.
   * Returns the limits in force afterwards (numbers; RLIM_INFINITY as Infinity), or the error.
   */
  raiseNoFileLimit(): { soft: number; hard: number } | OsError;
  /** `unsetenv(3)`: removes a variable from the C environment children would inherit. */
  unsetenv(name: string): void;
  /**
   * `open(2)` a file read-only, close-on-exec and non-blocking (so a FIFO at the path cannot
   * hang the caller: with no writer it reads as EOF). Returns the descriptor.
   */
  openRead(path: string): number | OsError;
  /**
   * A writable, zero-copy view of the value of `name` in the C environment (`getenv(3)`), or
   * null when unset. The caller copies what it needs, then zeroes the view (so the bytes do
   * not stay in the process's environment block) and calls `unsetenv`. Valid until the next
   * change of that variable.
   */
  envValueView(name: string): Uint8Array | null;
  /** One `read(2)` of up to `dst.byteLength` bytes from `fd` into `dst`; 0 = EOF. No retry. */
  read(fd: number, dst: Uint8Array): number | OsError;
  /** `poll(2)` until `fd` is readable (or hung up); for descriptors left non-blocking by a parent. */
  waitReadable(fd: number): OsError | null;
  /** errno of EAGAIN/EWOULDBLOCK on this OS. */
  readonly EAGAIN: number;
  /** One `write(2)` of up to `src.byteLength` bytes to `fd`; the count written. No retry. */
  write(fd: number, src: Uint8Array): number | OsError;
  /** `poll(2)` until `fd` is writable (or hung up). */
  waitWritable(fd: number): OsError | null;
  /** `close(2)`. */
  close(fd: number): OsError | null;
  /**
   * Linux `pipe2(O_CLOEXEC | O_NONBLOCK)`: `[read end, write end]`. Both ends are
   * non-blocking and close on exec (a child gets one only through an explicit dup, as
   * `Bun.spawn` does for a numeric stdio). Linux-only (throws elsewhere).
   */
  pipe(): [number, number] | OsError;
  /** `size` rounded up to whole pages, mmapped, locked, excluded from core dumps. Throws on mmap failure. */
  allocLockedPages(size: number): LockedPages;
  /** Page size from `sysconf(_SC_PAGESIZE)`. */
  readonly pageSize: number;
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const PR_SET_DUMPABLE = 4;
const PR_GET_DUMPABLE = 3;
const MADV_DONTDUMP = 16;
const PT_DENY_ATTACH = 31;
const POLLIN = 1;
const POLLOUT = 4;
/** Linux O_NONBLOCK | O_CLOEXEC (x86_64 and aarch64 alike). */
const LINUX_PIPE_FLAGS = 0o4000 | 0o2000000;

interface PlatformConsts {
  paths: string[];
  errnoFn: "__errno_location" | "__error";
  mapAnon: number;
  rlimitCore: number;
  rlimitNoFile: number;
  scPageSize: number;
  /** O_CLOEXEC | O_NONBLOCK (O_RDONLY is 0 everywhere). */
  openFlags: number;
}

function platformConsts(): PlatformConsts | null {
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  switch (process.platform) {
    case "linux":
      return {
        paths: ["libc.so.6", `libc.musl-${arch}.so.1`, `/lib/ld-musl-${arch}.so.1`],
        errnoFn: "__errno_location",
        mapAnon: 0x20,
        rlimitCore: 4,
        rlimitNoFile: 7,
        scPageSize: 30,
        openFlags: 0x80000 | 0x800,
      };
    case "darwin":
      return { paths: ["/usr/lib/libSystem.B.dylib"], errnoFn: "__error", mapAnon: 0x1000, rlimitCore: 4, rlimitNoFile: 8, scPageSize: 29, openFlags: 0x1000000 | 0x4 };
    case "freebsd":
      return { paths: ["libc.so.7"], errnoFn: "__error", mapAnon: 0x1000, rlimitCore: 4, rlimitNoFile: 8, scPageSize: 47, openFlags: 0x100000 | 0x4 };
    default:
      return null;
  }
}

const SYMBOLS = {
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  getenv: { args: [FFIType.ptr], returns: FFIType.ptr },
  strlen: { args: [FFIType.ptr], returns: FFIType.u64 },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  unsetenv: { args: [FFIType.ptr], returns: FFIType.i32 },
  mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
  munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  mlock: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  munlock: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  sysconf: { args: [FFIType.i32], returns: FFIType.i64 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
} as const;

const LINUX_SYMBOLS = {
  prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
  pipe2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
} as const;

const DARWIN_SYMBOLS = {
  ptrace: { args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  __error: { args: [], returns: FFIType.ptr },
} as const;

/** Open the C library of this OS, or return null where there is none we can use (Windows). */
export function loadLibc(): Libc | null {
  const pc = platformConsts();
  if (!pc) return null;
  const extra = process.platform === "linux" ? LINUX_SYMBOLS : DARWIN_SYMBOLS;
  let lib: ReturnType<typeof dlopen<typeof SYMBOLS & typeof LINUX_SYMBOLS & typeof DARWIN_SYMBOLS>> | undefined;
  let lastErr: unknown;
  for (const path of pc.paths) {
    try {
      // The cast keeps one symbol type; only the platform's own extra symbols are requested.
      lib = dlopen(path, { ...SYMBOLS, ...extra } as typeof SYMBOLS & typeof LINUX_SYMBOLS & typeof DARWIN_SYMBOLS);
      break;
    } catch (e) {
      lastErr = e;
    }
  }
  if (!lib) throw new Error(`cannot load the C library (${pc.paths.join(", ")}): ${String(lastErr)}`);
  const s = lib.symbols;
  const platform = process.platform as Libc["platform"];

  const errnoPtr = (): Pointer | null =>
    (platform === "linux" ? s.__errno_location() : s.__error()) as Pointer | null;
  const lastError = (): OsError => {
    const p = errnoPtr();
    const errno = p ? ffiRead.i32(p, 0) : 0;
    return { errno, message: `${String(s.strerror(errno))} (os error ${errno})` };
  };
  const pageSize = Number(s.sysconf(pc.scPageSize)) > 0 ? Number(s.sysconf(pc.scPageSize)) : 4096;
  /** `poll(2)` on one fd for `events`, no timeout. struct pollfd { int fd; short events; short revents; }. */
  const waitFor = (fd: number, events: number): OsError | null => {
    const pfd = new Int32Array(2);
    pfd[0] = fd;
    new Int16Array(pfd.buffer)[2] = events;
    return s.poll(pfd, 1, -1) < 0 ? lastError() : null;
  };
  // struct rlimit is two rlim_t (u64) on every supported 64-bit target.
  const rlim = new BigUint64Array(2);

  return {
    platform,
    pageSize,
    setDumpable(value) {
      if (platform !== "linux") throw new Error("prctl is Linux-only");
      return s.prctl(PR_SET_DUMPABLE, value, 0, 0, 0) === 0 ? null : lastError();
    },
    getDumpable() {
      if (platform !== "linux") throw new Error("prctl is Linux-only");
      return s.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    },
    denyAttach() {
      if (platform !== "darwin") throw new Error("PT_DENY_ATTACH is macOS-only");
      return s.ptrace(PT_DENY_ATTACH, 0, null, 0) === 0 ? null : lastError();
    },
    setCoreLimitZero() {
      rlim[0] = 0n;
      rlim[1] = 0n;
      return s.setrlimit(pc.rlimitCore, rlim) === 0 ? null : lastError();
    },
    getCoreLimit() {
      if (s.getrlimit(pc.rlimitCore, rlim) !== 0) return lastError();
      return { soft: rlim[0]!, hard: rlim[1]! };
    },
    raiseNoFileLimit() {
      if (s.getrlimit(pc.rlimitNoFile, rlim) !== 0) return lastError();
      const INFINITY = 0xffff_ffff_ffff_ffffn;
      const asNumber = (v: bigint) => (v === INFINITY ? Infinity : Number(v));
      let target = rlim[1]!;
      if (platform === "darwin" && target === INFINITY) target = 10240n;
      if (rlim[0]! < target) {
        const hard = rlim[1]!;
        rlim[0] = target;
        if (s.setrlimit(pc.rlimitNoFile, rlim) !== 0) return lastError();
        rlim[1] = hard;
      }
      return { soft: asNumber(rlim[0]!), hard: asNumber(rlim[1]!) };
    },
    unsetenv(name) {
      s.unsetenv(Buffer.from(name + "\0", "utf8"));
    },
    EAGAIN: platform === "linux" ? 11 : 35,
    waitReadable: (fd) => waitFor(fd, POLLIN),
    waitWritable: (fd) => waitFor(fd, POLLOUT),
    write(fd, src) {
      if (src.byteLength === 0) return 0;
      const n = Number(s.write(fd, src, src.byteLength));
      return n < 0 ? lastError() : n;
    },
    close: (fd) => (s.close(fd) === 0 ? null : lastError()),
    pipe() {
      if (platform !== "linux") throw new Error("pipe2 is used on Linux only");
      const fds = new Int32Array(2);
      return s.pipe2(fds, LINUX_PIPE_FLAGS) === 0 ? [fds[0]!, fds[1]!] : lastError();
    },
    openRead(path) {
      const fd = s.open(Buffer.from(path + "\0", "utf8"), pc.openFlags);
      return fd < 0 ? lastError() : fd;
    },
    envValueView(name) {
      const p = s.getenv(Buffer.from(name + "\0", "utf8")) as Pointer | null;
      if (!p) return null;
      const len = Number(s.strlen(p));
      return len === 0 ? new Uint8Array(0) : new Uint8Array(toArrayBuffer(p, 0, len));
    },
    read(fd, dst) {
      if (dst.byteLength === 0) return 0;
      const n = Number(s.read(fd, dst, dst.byteLength));
      return n < 0 ? lastError() : n;
    },
    allocLockedPages(size) {
      const len = Math.ceil(Math.max(size, 1) / pageSize) * pageSize;
      const addr = s.mmap(null, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | pc.mapAnon, -1, 0);
      // MAP_FAILED is (void*)-1; Bun turns it into a number that is not a valid user address.
      if (!addr || (addr as number) < 0 || (addr as number) >= 2 ** 53) {
        throw new Error(`mmap failed: ${lastError().message}`);
      }
      const locked = s.mlock(addr, len) === 0;
      const dontDump = platform === "linux" ? s.madvise(addr, len, MADV_DONTDUMP) === 0 : false;
      const view = new Uint8Array(toArrayBuffer(addr, 0, len));
      let freed = false;
      return {
        view,
        locked,
        dontDump,
        free() {
          if (freed) return;
          freed = true;
          view.fill(0);
          if (locked) s.munlock(addr, len);
          s.munmap(addr, len);
        },
      };
    },
  };
}

