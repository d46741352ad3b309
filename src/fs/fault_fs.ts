// A FileSystem wrapper that injects failures, after raft-wal's test VFS (`failNextWrite`,
// `failNextSync`): wrap a MemFs (or the real denoFs), arm a fault, run the code under test, and
// check that it left the log unchanged and that a retry succeeds.
//
// State-changing calls are numbered and logged with the same strings MemFs uses (`write <path>
// <position> <length>`, ...), so a crash test can first record a run, then replay it crashing
// before each step in turn with `crashAt(i)`.

import type { FileHandle, FileInfo, FileSystem, OpenOptions } from "./types.ts";

/** The calls a fault can be armed for. */
export type FaultOp =
  | "open"
  | "read"
  | "write"
  | "truncate"
  | "datasync"
  | "rename"
  | "link"
  | "remove"
  | "syncDir";

const FAULT_OPS: readonly string[] = [
  "open",
  "read",
  "write",
  "truncate",
  "datasync",
  "rename",
  "link",
  "remove",
  "syncDir",
] satisfies FaultOp[];

/** Errors thrown for a simulated crash, so `FaultFs.isSimulatedCrash` can tell them from others. */
const crashErrors = new WeakSet<Error>();

/** An injected error shaped like a wrapped system error from denoFs: message, code and cause. */
function injected(what: string, detail: string, code: string): Error {
  const cause = Object.assign(new Error(detail), { code });
  return Object.assign(new Error(`Cannot ${what}: ${detail}`, { cause }), { code });
}

/**
 * A {@link FileSystem} that wraps another and injects failures: the next write, fsync, rename or
 * open fails; a disk fills up after some bytes; or the process "crashes" before a chosen step.
 * Everything else passes through.
 *
 * A failed call (other than a partial write under `failAfterBytes`) throws before reaching the
 * wrapped file system, so the files are unchanged. After a simulated crash every call throws, as
 * nothing runs in a dead process, and `close` only releases the wrapped handle (its lock too), as
 * a dying process's files close; call the wrapped MemFs's `crash()` and
 * {@link FaultFs.recover} (or make a new FaultFs) to "restart".
 *
 * @example One failed write, then a retry
 * ```ts
 * import { FaultFs } from "@snaplog/snaplog/testing";
 * import { MemFs } from "@snaplog/snaplog/testing";
 * import assert from "node:assert/strict";
 *
 * const mem = new MemFs();
 * const fs = new FaultFs(mem);
 * const f = await fs.open("log", { write: true, create: true });
 * fs.failNextWrite();
 * await assert.rejects(f.write(new Uint8Array([1]), 0), /Cannot write "log"/);
 * assert.equal(mem.read("log").length, 0);
 * await f.write(new Uint8Array([1]), 0);
 * assert.deepEqual(mem.read("log"), new Uint8Array([1]));
 * ```
 */
export class FaultFs implements FileSystem {
  #inner: FileSystem;
  #core: Core;

  /**
   * Called with each state-changing step (the strings of {@link FaultFs.ops}) before it runs; a
   * throw fails that step, which never reaches the wrapped file system. Use it for faults the
   * `failNext*` methods do not cover, such as failing the third fsync of one file.
   * @default null
   */
  beforeOp: ((op: string) => void) | null = null;
  /**
   * State-changing steps attempted, in order, including failed ones: `open <path>`, `write <path>
   * <position> <length>`, `truncate <path> <length>`, `datasync <path>`, `close <path>`, `rename
   * <from> <to>`, `link <existing> <new>`, `remove <path>`, `syncDir <dir>`. Its index is the one `crashAt` takes.
   */
  readonly ops: string[] = [];
  /** Completed `datasync` calls per file path (the path the handle was opened with). */
  readonly syncCounts: Map<string, number> = new Map();
  /** Completed `syncDir` calls per directory path. */
  readonly dirSyncCounts: Map<string, number> = new Map();

  /**
   * Wraps `inner`.
   *
   * @param inner The file system that does the work: a MemFs in crash tests, or denoFs.
   * @throws {TypeError} If `inner` is not a file system.
   */
  constructor(inner: FileSystem) {
    if (typeof inner !== "object" || inner === null || typeof inner.open !== "function") {
      throw new TypeError(
        `Cannot wrap a file system: expected a FileSystem (MemFs, denoFs), got ${
          inner === null ? "null" : typeof inner
        }`,
      );
    }
    this.#inner = inner;
    this.#core = new Core(this);
  }

  /**
   * Whether `err` is the error of a simulated crash (from `crashAt`), not a real failure: the
   * crash's own error, or one that wraps it (its `cause` chain).
   *
   * @param err Anything caught.
   * @returns True for a simulated crash.
   */
  static isSimulatedCrash(err: unknown): boolean {
    for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
      if (crashErrors.has(e)) return true;
    }
    return false;
  }

  /**
   * Makes the next call of kind `op` throw `err` without reaching the wrapped file system.
   *
   * @param op The kind of call.
   * @param err The error to throw. Defaults to `Cannot <op> "<path>": injected fault` with code EIO.
   */
  failNext(op: FaultOp, err?: Error): void {
    if (!FAULT_OPS.includes(op)) {
      throw new TypeError(
        `Cannot arm a fault: unknown operation ${JSON.stringify(op)} (one of ${FAULT_OPS.join(", ")})`,
      );
    }
    if (err !== undefined && !(err instanceof Error)) {
      throw new TypeError(`Cannot arm a fault: the error to throw must be an Error`);
    }
    this.#core.armed.set(op, err);
  }

  /**
   * Makes the next `write` throw, leaving the file unchanged.
   *
   * @param err The error to throw; an EIO-like error by default.
   */
  failNextWrite(err?: Error): void {
    this.failNext("write", err);
  }

  /**
   * Makes the next `datasync` throw, before anything is made durable.
   *
   * @param err The error to throw; an EIO-like error by default.
   */
  failNextSync(err?: Error): void {
    this.failNext("datasync", err);
  }

  /**
   * Makes the next `syncDir` throw.
   *
   * @param err The error to throw; an EIO-like error by default.
   */
  failNextSyncDir(err?: Error): void {
    this.failNext("syncDir", err);
  }

  /**
   * Makes the next `rename` throw, leaving both paths as they were.
   *
   * @param err The error to throw; an EIO-like error by default.
   */
  failNextRename(err?: Error): void {
    this.failNext("rename", err);
  }

  /**
   * Makes the next `open` throw, creating nothing.
   *
   * @param err The error to throw; an EIO-like error by default.
   */
  failNextOpen(err?: Error): void {
    this.failNext("open", err);
  }

  /**
   * Simulates a full disk: from now on, writes may add up to `n` more bytes in total. The write
   * that crosses the limit writes the prefix that fits, then throws `Cannot write "<path>": No
   * space left on device (os error 28)` with `code` "ENOSPC"; later writes throw at once.
   * Pass `Infinity` to free the disk again.
   *
   * @param n Bytes that may still be written.
   * @throws {RangeError} If `n` is negative or not an integer (other than Infinity).
   */
  failAfterBytes(n: number): void {
    if (!(n === Infinity || (Number.isSafeInteger(n) && n >= 0))) {
      throw new RangeError(`Cannot fill the disk: byte count must be a non-negative integer, got ${n}`);
    }
    this.#core.bytesLeft = n;
  }

  /**
   * Simulates a crash just before step `opIndex` (an index into {@link FaultFs.ops}, counted from
   * this FaultFs's creation): that step and every call after it throw a simulated-crash error.
   *
   * @param opIndex The index of the first step that does not happen.
   * @throws {RangeError} If `opIndex` is not a non-negative integer, or names a step that
   *   already happened (the crash would never come, and a test would pass without one).
   */
  crashAt(opIndex: number): void {
    if (!Number.isSafeInteger(opIndex) || opIndex < 0) {
      throw new RangeError(`Cannot arm a crash: step index must be a non-negative integer, got ${opIndex}`);
    }
    if (opIndex < this.#core.opCount) {
      throw new RangeError(
        `Cannot arm a crash at step ${opIndex}: ${this.#core.opCount} steps already happened`,
      );
    }
    this.#core.crashAt = opIndex;
  }

  /**
   * Whether a simulated crash happened (and every call now throws).
   *
   * @returns True after the crash armed by `crashAt`.
   */
  get crashed(): boolean {
    return this.#core.crashed;
  }

  /**
   * The number of state-changing steps attempted so far (the length of {@link FaultFs.ops}).
   *
   * @returns The count.
   */
  get opCount(): number {
    return this.#core.opCount;
  }

  /**
   * Clears a simulated crash and every armed fault, so the wrapped file system can be reused, as
   * a restarted process would. Counters and the op log are kept.
   */
  recover(): void {
    this.#core.crashed = false;
    this.#core.crashAt = -1;
    this.#core.armed.clear();
    this.#core.bytesLeft = Infinity;
  }

  /**
   * Opens `path` through the wrapped file system.
   *
   * @param path The file's path.
   * @param options How to open it.
   * @returns A handle whose calls can fail on demand.
   * @throws {Error} An armed fault or a simulated crash, or whatever the wrapped file system throws.
   */
  async open(path: string, options: OpenOptions): Promise<FileHandle> {
    this.#core.step("open", `open ${path}`, `open "${path}"`);
    return new FaultHandle(this.#core, await this.#inner.open(path, options), path);
  }

  /**
   * Passes through (no fault can be armed for it, but a crash stops it).
   *
   * @param path The file's path.
   * @returns Its metadata, or null.
   */
  stat(path: string): Promise<FileInfo | null> {
    try {
      this.#core.checkAlive(`stat "${path}"`);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#inner.stat(path);
  }

  /**
   * Renames through the wrapped file system.
   *
   * @param from The existing path.
   * @param to The new path.
   * @throws {Error} An armed fault or a simulated crash, or whatever the wrapped file system throws.
   */
  async rename(from: string, to: string): Promise<void> {
    this.#core.step("rename", `rename ${from} ${to}`, `rename "${from}" to "${to}"`);
    await this.#inner.rename(from, to);
  }

  /**
   * Links through the wrapped file system; a wrapped file system without `link` fails it with
   * `Deno.errors.NotSupported`, as a file system without hard links would.
   *
   * @param existing The existing path.
   * @param newPath The new name.
   * @throws {Error} An armed fault or a simulated crash, or whatever the wrapped file system throws.
   */
  async link(existing: string, newPath: string): Promise<void> {
    this.#core.step("link", `link ${existing} ${newPath}`, `link "${existing}" to "${newPath}"`);
    if (this.#inner.link === undefined) {
      throw new Deno.errors.NotSupported(`Cannot link "${existing}" to "${newPath}": not supported`);
    }
    await this.#inner.link(existing, newPath);
  }

  /**
   * Removes through the wrapped file system.
   *
   * @param path The file's path.
   * @throws {Error} An armed fault or a simulated crash, or whatever the wrapped file system throws.
   */
  async remove(path: string): Promise<void> {
    this.#core.step("remove", `remove ${path}`, `remove "${path}"`);
    await this.#inner.remove(path);
  }

  /**
   * Syncs a directory through the wrapped file system, counting it per directory.
   *
   * @param path The directory.
   * @throws {Error} An armed fault or a simulated crash, or whatever the wrapped file system throws.
   */
  async syncDir(path: string): Promise<void> {
    this.#core.step("syncDir", `syncDir ${path}`, `fsync directory "${path}"`);
    await this.#inner.syncDir(path);
    this.dirSyncCounts.set(path, (this.dirSyncCounts.get(path) ?? 0) + 1);
  }
}

/** A FaultFs's fault state, shared with its handles and kept off its public surface. */
class Core {
  armed: Map<FaultOp, Error | undefined> = new Map();
  bytesLeft = Infinity;
  crashAt = -1;
  crashed = false;
  opCount = 0;

  constructor(readonly owner: FaultFs) {}

  /** Logs and numbers a state-changing step, then throws if a crash or a fault is due. */
  step(kind: FaultOp | "close", op: string, what: string): void {
    this.checkAlive(what);
    const index = this.opCount++;
    this.owner.ops.push(op);
    if (index === this.crashAt) {
      this.crashed = true;
      throw crashError(what);
    }
    this.owner.beforeOp?.(op);
    if (kind !== "close") this.fault(kind, what);
  }

  /** Throws the fault armed for `kind`, once. */
  fault(kind: FaultOp, what: string): void {
    if (!this.armed.has(kind)) return;
    const err = this.armed.get(kind);
    this.armed.delete(kind);
    throw err ?? injected(what, "injected fault", "EIO");
  }

  checkAlive(what: string): void {
    if (this.crashed) throw crashError(what);
  }

  /** How many of `n` bytes fit on the "disk"; takes them. */
  takeBytes(n: number): number {
    const fits = Math.min(n, this.bytesLeft);
    this.bytesLeft -= fits;
    return fits;
  }
}

function crashError(what: string): Error {
  const err = new Error(`Cannot ${what}: the process crashed (simulated)`);
  crashErrors.add(err);
  return err;
}

class FaultHandle implements FileHandle {
  #fs: Core;
  #inner: FileHandle;
  #path: string;

  constructor(fs: Core, inner: FileHandle, path: string) {
    this.#fs = fs;
    this.#inner = inner;
    this.#path = path;
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    this.#fs.checkAlive(`read "${this.#path}"`);
    this.#fs.fault("read", `read "${this.#path}"`);
    return await this.#inner.read(buf, position);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    const what = `write "${this.#path}"`;
    this.#fs.step("write", `write ${this.#path} ${position} ${data.length}`, what);
    const fits = this.#fs.takeBytes(data.length);
    if (fits > 0) await this.#inner.write(data.subarray(0, fits), position);
    if (fits < data.length) throw injected(what, "No space left on device (os error 28)", "ENOSPC");
  }

  async truncate(length: number): Promise<void> {
    this.#fs.step("truncate", `truncate ${this.#path} ${length}`, `truncate "${this.#path}"`);
    await this.#inner.truncate(length);
  }

  async datasync(): Promise<void> {
    this.#fs.step("datasync", `datasync ${this.#path}`, `fsync "${this.#path}"`);
    await this.#inner.datasync();
    const counts = this.#fs.owner.syncCounts;
    counts.set(this.#path, (counts.get(this.#path) ?? 0) + 1);
  }

  async size(): Promise<number> {
    this.#fs.checkAlive(`stat "${this.#path}"`);
    return await this.#inner.size();
  }

  async tryLock(): Promise<boolean> {
    this.#fs.checkAlive(`lock "${this.#path}"`);
    return await this.#inner.tryLock();
  }

  /** The inner handle's file identity (a log's check of its file), if it has one. */
  async id(): Promise<string | undefined> {
    this.#fs.checkAlive(`stat "${this.#path}"`);
    return await this.#inner.id?.();
  }

  async close(): Promise<void> {
    if (this.#fs.crashed) {
      // Cleanup code that closes handles after a crash must not mask it, and a real process's
      // files close when it dies; release the handle quietly.
      await this.#inner.close().catch(() => {});
      return;
    }
    this.#fs.step("close", `close ${this.#path}`, `close "${this.#path}"`);
    await this.#inner.close();
  }
}
