// An in-memory FileSystem that models durability, for crash tests.
//
// The model, and the assumptions it encodes (they are the ones snaplog's README states):
//
// - A file (an inode) has CURRENT contents, what reads see, and DURABLE contents, what the last
//   `datasync` put on stable storage. A crash reverts it to the durable contents.
// - A directory entry (path -> inode) exists in the CURRENT namespace and in the DURABLE one.
//   Creations, removals and renames change the current namespace at once and the durable one only
//   when the parent directory is fsynced (`syncDir`). A `datasync` makes a file's data durable but,
//   as on Linux ext4 in practice, not the directory entry of a file that was just created: a new
//   file still needs `syncDir` of its parent, or a crash makes it vanish.
// - Permission bits are set at creation and survive with the entry.
//
// Directories are implicit: a path's parent is everything before its last "/", "/" for a path
// at the root, and "" (or ".", as the snapshotter names it) for a path without one. Nothing
// checks that a parent exists, and `syncDir` of an unknown directory does nothing, as it would
// for an empty one.

import { Rng } from "../_rng.ts";
import type { FileHandle, FileInfo, FileSystem, OpenOptions } from "./types.ts";
import { checkBytes, checkOpenOptions, checkPath, checkPosition } from "./_checks.ts";

/** The randomness a torn-write crash draws on: any source of uniform u32s. */
export interface CrashRandom {
  /** A uniform integer in [0, 2^32). */
  u32(): number;
}

/** Options for {@link MemFs.crash}. */
export interface CrashOptions {
  /**
   * When set, bytes written but not yet made durable may partially survive, as on a real disk that
   * lost power mid-flush: a file that grew keeps a random prefix of its unsynced tail, an unsynced
   * truncation may or may not have happened, and each 512-byte sector overwritten in place holds
   * either its old or its new bytes. Pass a seed (any safe integer) or a seeded source; the same
   * seed and the same history give the same outcome. Without it, a crash keeps only durable bytes.
   * @default undefined
   */
  tornWrites?: number | CrashRandom;
  /**
   * With `tornWrites`, the chance (0..1) that each sector holding surviving unsynced bytes is a
   * "faulty sector" whose unsynced bytes are replaced with random bytes (TigerBeetle style: not
   * zeros, so a reader cannot mistake them for a clean end of file). Durable bytes are never
   * touched.
   * @default 0
   */
  faultySectorChance?: number;
}

/** Options for {@link MemFs.write}. */
export interface MemWriteOptions {
  /** Also make the bytes and the directory entry durable, as if a crash-safe write had finished. @default true */
  durable?: boolean;
  /** Permission bits when the file is created. @default 0o644 */
  mode?: number;
}

/** A torn write is modelled per sector: the unit a disk writes atomically (or tears). */
const SECTOR_BYTES = 512;

/** A file's contents, growable in place so appending is amortised O(1), not a copy per write. */
class Bytes {
  buf: Uint8Array = new Uint8Array(0);
  length = 0;

  static of(data: Uint8Array): Bytes {
    const b = new Bytes();
    b.buf = data.slice();
    b.length = data.length;
    return b;
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  copy(): Bytes {
    return Bytes.of(this.view());
  }

  setLength(length: number): void {
    if (length > this.buf.length) {
      const next = new Uint8Array(Math.max(length, this.buf.length * 2, 64));
      next.set(this.view());
      this.buf = next;
    } else if (length > this.length) {
      this.buf.fill(0, this.length, length); // bytes past the old end read as zeros
    }
    this.length = length;
  }

  writeAt(data: Uint8Array, position: number): void {
    const end = position + data.length;
    if (end > this.length) this.setLength(end);
    this.buf.set(data, position);
  }
}

/** What a MemFs shares with its handles and keeps from its public surface. */
class Shared {
  /** Bumped by each crash; handles from an older epoch are dead. */
  epoch = 0;
  /** Lock holder (a handle) per file; flock locks belong to the file, not the path. */
  readonly locks = new Map<Inode, object>();
}

let inodeSerial = 0;

class Inode {
  /** Its identity, as `FileInfo.id`: unique in the process, kept through renames and crashes. */
  readonly id = String(++inodeSerial);
  current: Bytes;
  durable: Bytes;
  /**
   * The lowest offset where `current` may differ from `durable` (Infinity: they are equal), so
   * a datasync copies what changed since the last one, not the whole file: a whole copy per
   * fsync made a long test quadratic in the log's size.
   */
  dirtyFrom = 0;
  constructor(current: Bytes, durable: Bytes, readonly mode: number) {
    this.current = current;
    this.durable = durable;
  }

  /** Writes `data` at `position` of the current contents. */
  write(data: Uint8Array, position: number): void {
    // A write past the end also changes the gap before it (zeros).
    this.dirtyFrom = Math.min(this.dirtyFrom, position, this.current.length);
    this.current.writeAt(data, position);
  }

  /** Sets the current length (zeros past the old end). */
  truncate(length: number): void {
    this.dirtyFrom = Math.min(this.dirtyFrom, length, this.current.length);
    this.current.setLength(length);
  }

  /** Makes the current contents durable. */
  sync(): void {
    const cur = this.current;
    const from = Math.min(this.dirtyFrom, this.durable.length, cur.length);
    this.durable.setLength(cur.length);
    this.durable.buf.set(cur.buf.subarray(from, cur.length), from);
    this.dirtyFrom = Infinity;
  }

  /** Replaces both contents (the same bytes, or `durable` null to leave it). */
  reset(current: Bytes, durable: Bytes | null): void {
    this.current = current;
    if (durable !== null) this.durable = durable;
    this.dirtyFrom = durable !== null ? Infinity : 0;
  }
}

/** A seeded source for torn lengths and faulty sectors (the shared mulberry32). */
function seeded(seed: number): CrashRandom {
  return new Rng(seed);
}

/** The directory `syncDir` must be given to make `path`'s entry durable: "" (or ".") for a bare name, "/" for one at the root. */
function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : i === 0 ? "/" : path.slice(0, i);
}

/**
 * An in-memory {@link FileSystem} that models durability, for crash tests.
 *
 * Each file has current contents and durable contents (what the last `datasync` made durable); each
 * directory entry exists in the current namespace and, once its parent directory is synced with
 * `syncDir`, in the durable one. {@link MemFs.crash} simulates power loss: files revert to their
 * durable contents, the namespace to its durable state, open handles become invalid and locks are
 * released. Every state-changing call is logged in {@link MemFs.ops}, so a test can pin an I/O
 * sequence.
 *
 * @example Unsynced data is lost in a crash
 * ```ts
 * import { MemFs } from "@snaplog/snaplog/testing";
 * import assert from "node:assert/strict";
 *
 * const fs = new MemFs();
 * const f = await fs.open("log", { write: true, create: true });
 * await f.write(new Uint8Array([1, 2, 3]), 0);
 * await f.datasync();
 * await fs.syncDir(""); // make the new entry "log" durable
 * await f.write(new Uint8Array([4]), 3); // never synced
 * fs.crash();
 * assert.deepEqual(fs.read("log"), new Uint8Array([1, 2, 3]));
 * ```
 */
export class MemFs implements FileSystem {
  #current = new Map<string, Inode>();
  #durable = new Map<string, Inode>();
  #shared = new Shared();

  /** How many `datasync` calls completed. */
  syncCount = 0;
  /** How many `syncDir` calls completed. */
  dirSyncCount = 0;
  /**
   * State-changing operations in order, one string each: `open <path>`, `write <path> <position>
   * <length>`, `truncate <path> <length>`, `datasync <path>`, `close <path>`, `rename <from> <to>`,
   * `link <existing> <new>`, `remove <path>`, `syncDir <dir>`. Reads, `size`, `stat` and `tryLock` are not logged. A handle's
   * operations name the path it was opened with. Clear it with `fs.ops.length = 0`.
   */
  readonly ops: string[] = [];

  /**
   * Opens `path`.
   *
   * @param path The file's path.
   * @param options How to open it.
   * @returns A handle, valid until it is closed or the file system crashes.
   * @throws {Deno.errors.NotFound} If the file does not exist and is not to be created.
   * @throws {Deno.errors.AlreadyExists} With `createNew`, if the file exists.
   * @throws {TypeError} If `create`, `createNew` or `truncate` is set without `write`.
   */
  open(path: string, options: OpenOptions): Promise<FileHandle> {
    try {
      checkPath("open a file", path);
      checkOpenOptions(path, options);
    } catch (err) {
      return Promise.reject(err);
    }
    const create = options.create === true || options.createNew === true;
    if ((create || options.truncate === true) && options.write !== true) {
      return Promise.reject(
        new TypeError(`Cannot open "${path}": create, createNew and truncate require write`),
      );
    }
    this.ops.push(`open ${path}`);
    let inode = this.#current.get(path);
    if (inode !== undefined && options.createNew === true) {
      return Promise.reject(new Deno.errors.AlreadyExists(`Cannot open "${path}": file exists`));
    }
    if (inode === undefined) {
      if (!create) {
        return Promise.reject(new Deno.errors.NotFound(`Cannot open "${path}": no such file`));
      }
      inode = new Inode(new Bytes(), new Bytes(), options.mode ?? 0o644);
      this.#current.set(path, inode);
    }
    if (options.truncate === true) inode.truncate(0);
    return Promise.resolve(
      new MemHandle(this, this.#shared, inode, path, options.read === true, options.write === true),
    );
  }

  /**
   * Metadata of `path` in the current namespace.
   *
   * @param path The file's path.
   * @returns Its size, mode and identity, or null if it does not exist.
   */
  stat(path: string): Promise<FileInfo | null> {
    const inode = this.#current.get(path);
    if (inode === undefined) return Promise.resolve(null);
    return Promise.resolve({ size: inode.current.length, mode: inode.mode, isFile: true, id: inode.id });
  }

  /**
   * Moves `from` to `to`, replacing `to`. Durable only after `syncDir` of both parents.
   *
   * @param from The existing path.
   * @param to The new path.
   * @throws {Deno.errors.NotFound} If `from` does not exist.
   */
  rename(from: string, to: string): Promise<void> {
    this.ops.push(`rename ${from} ${to}`);
    const inode = this.#current.get(from);
    if (inode === undefined) {
      return Promise.reject(new Deno.errors.NotFound(`Cannot rename "${from}" to "${to}": no such file`));
    }
    if (from !== to) {
      this.#current.delete(from);
      this.#current.set(to, inode);
    }
    return Promise.resolve();
  }

  /**
   * Gives the file at `existing` a second name. Durable only after `syncDir` of the parent.
   *
   * @param existing The existing path.
   * @param newPath The new name: the same file, not a copy.
   * @throws {Deno.errors.NotFound} If `existing` does not exist.
   * @throws {Deno.errors.AlreadyExists} If `newPath` exists.
   */
  link(existing: string, newPath: string): Promise<void> {
    this.ops.push(`link ${existing} ${newPath}`);
    const inode = this.#current.get(existing);
    if (inode === undefined) {
      return Promise.reject(
        new Deno.errors.NotFound(`Cannot link "${existing}" to "${newPath}": no such file`),
      );
    }
    if (this.#current.has(newPath)) {
      return Promise.reject(
        new Deno.errors.AlreadyExists(`Cannot link "${existing}" to "${newPath}": file exists`),
      );
    }
    this.#current.set(newPath, inode);
    return Promise.resolve();
  }

  /**
   * Removes `path`; no error if it is already gone. Durable only after `syncDir` of its parent.
   * Open handles keep working on the unlinked file.
   *
   * @param path The file's path.
   */
  remove(path: string): Promise<void> {
    this.ops.push(`remove ${path}`);
    this.#current.delete(path);
    return Promise.resolve();
  }

  /**
   * Makes every creation, removal and rename of an entry in directory `path` durable.
   *
   * @param path The directory: everything before the last "/" of its entries' paths.
   */
  syncDir(path: string): Promise<void> {
    this.ops.push(`syncDir ${path}`);
    const dir = path === "." ? "" : path; // the current directory, as the snapshotter names it
    for (const name of [...this.#durable.keys()]) {
      if (parentOf(name) === dir && !this.#current.has(name)) this.#durable.delete(name);
    }
    for (const [name, inode] of this.#current) {
      if (parentOf(name) === dir) this.#durable.set(name, inode);
    }
    this.dirSyncCount++;
    return Promise.resolve();
  }

  /**
   * Simulates power loss. Every file reverts to its durable contents and the namespace to its
   * durable state; every open handle becomes invalid (further use throws, close does nothing) and
   * every lock is released. With `tornWrites`, unsynced bytes may partially survive.
   *
   * @example A torn crash, reproducible from its seed
   * ```ts
   * import { MemFs } from "@snaplog/snaplog/testing";
   * import assert from "node:assert/strict";
   *
   * const fs = new MemFs();
   * fs.write("log", new Uint8Array(4)); // durable
   * const f = await fs.open("log", { write: true });
   * await f.write(new Uint8Array(4000).fill(7), 4); // unsynced
   * fs.crash({ tornWrites: 42 });
   * const size = fs.read("log").length;
   * assert.ok(size >= 4 && size <= 4004);
   * ```
   *
   * @param options Whether writes may tear, and how.
   * @throws {TypeError} If `options` is not an object, or `tornWrites` is neither a safe integer
   *   seed nor a random source.
   * @throws {RangeError} If `faultySectorChance` is outside 0..1.
   */
  crash(options: CrashOptions = {}): void {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Cannot crash: options must be an object`);
    }
    const torn = options.tornWrites;
    if (
      torn !== undefined && !(typeof torn === "number" && Number.isSafeInteger(torn)) &&
      !(typeof torn === "object" && torn !== null && typeof torn.u32 === "function")
    ) {
      throw new TypeError(`Cannot crash: tornWrites must be an integer seed or a random source`);
    }
    const chance = options.faultySectorChance ?? 0;
    if (!(chance >= 0 && chance <= 1)) {
      throw new RangeError(`Cannot crash: faultySectorChance must be in 0..1, got ${chance}`);
    }
    const rng = torn === undefined ? undefined : typeof torn === "number" ? seeded(torn) : torn;
    this.#shared.epoch++;
    this.#shared.locks.clear();
    // Visit each durable inode once, in path order, so a seeded crash is reproducible.
    const seen = new Set<Inode>();
    for (const name of [...this.#durable.keys()].sort()) {
      const inode = this.#durable.get(name)!;
      if (seen.has(inode)) continue;
      seen.add(inode);
      const after = rng === undefined ? inode.durable.copy() : tear(inode, rng, chance);
      inode.reset(after, after.copy());
    }
    this.#current = new Map(this.#durable);
  }

  /**
   * The paths in the current namespace, sorted.
   *
   * @returns The file paths.
   */
  files(): string[] {
    return [...this.#current.keys()].sort();
  }

  /**
   * The current contents of `path`, for assertions.
   *
   * @param path The file's path.
   * @returns A copy of its bytes.
   * @throws {Deno.errors.NotFound} If the file does not exist.
   */
  read(path: string): Uint8Array {
    return this.#get("read", path).current.view().slice();
  }

  /**
   * Sets the contents of `path`, creating it if needed, to set up a fixture. Logs nothing and counts
   * no sync.
   *
   * @param path The file's path.
   * @param bytes Its new contents (copied).
   * @param options Whether the contents and the entry are durable at once.
   */
  write(path: string, bytes: Uint8Array, options: MemWriteOptions = {}): void {
    checkPath("set up a file", path);
    checkBytes("set up", path, bytes, "the contents");
    let inode = this.#current.get(path);
    if (inode === undefined) {
      inode = new Inode(new Bytes(), new Bytes(), options.mode ?? 0o644);
      this.#current.set(path, inode);
    }
    const durable = options.durable ?? true;
    inode.reset(Bytes.of(bytes), durable ? Bytes.of(bytes) : null);
    if (durable) this.#durable.set(path, inode);
  }

  /**
   * The permission bits of `path`.
   *
   * @param path The file's path.
   * @returns The mode it was created with.
   * @throws {Deno.errors.NotFound} If the file does not exist.
   */
  mode(path: string): number {
    return this.#get("stat", path).mode;
  }

  #get(action: string, path: string): Inode {
    const inode = this.#current.get(path);
    if (inode === undefined) throw new Deno.errors.NotFound(`Cannot ${action} "${path}": no such file`);
    return inode;
  }
}

/**
 * What survives a torn crash of `inode`. Unsynced growth keeps a random prefix; an unsynced
 * truncation happens or not; sectors overwritten in place hold old or new bytes; and each sector
 * with surviving unsynced bytes may be faulty, its unsynced bytes random.
 */
function tear(inode: Inode, rng: CrashRandom, faultyChance: number): Bytes {
  const durable = inode.durable.view();
  const current = inode.current.view();
  const int = (n: number): number => Math.floor((rng.u32() / 4294967296) * n);
  const length = current.length >= durable.length
    ? durable.length + int(current.length - durable.length + 1)
    : int(2) === 0
    ? current.length
    : durable.length;
  const out = new Uint8Array(length);
  for (let start = 0; start < length; start += SECTOR_BYTES) {
    const end = Math.min(start + SECTOR_BYTES, length);
    // Per byte, where the "new" version of this sector comes from: current bytes where the file
    // still has them, else the durable ones (past an unsynced truncation).
    const newer = (i: number): number => i < current.length ? current[i]! : durable[i]!;
    const older = (i: number): number => i < durable.length ? durable[i]! : current[i]!;
    let dirty = false;
    for (let i = start; i < end && !dirty; i++) dirty = i >= durable.length || newer(i) !== older(i);
    const takeNew = dirty && (start >= durable.length || int(2) === 0);
    for (let i = start; i < end; i++) out[i] = takeNew ? newer(i) : older(i);
    if (takeNew && faultyChance > 0 && rng.u32() / 4294967296 < faultyChance) {
      for (let i = start; i < end; i++) {
        if (i >= durable.length || newer(i) !== durable[i]) out[i] = rng.u32() & 0xff;
      }
    }
  }
  return Bytes.of(out);
}

class MemHandle implements FileHandle {
  #closed = false;
  readonly epoch: number;

  constructor(
    readonly fs: MemFs,
    readonly shared: Shared,
    readonly inode: Inode,
    readonly path: string,
    readonly readable: boolean,
    readonly writable: boolean,
  ) {
    this.epoch = shared.epoch;
  }

  #check(action: string, needs?: "read" | "write"): void {
    if (this.#closed) throw new Error(`Cannot ${action} "${this.path}": file is closed`);
    if (this.shared.epoch !== this.epoch) {
      throw new Error(`Cannot ${action} "${this.path}": handle was invalidated by a simulated crash`);
    }
    if (needs === "read" && !this.readable) {
      throw new Error(`Cannot ${action} "${this.path}": file is not open for reading`);
    }
    if (needs === "write" && !this.writable) {
      throw new Error(`Cannot ${action} "${this.path}": file is not open for writing`);
    }
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    try {
      this.#check("read", "read");
      checkBytes("read", this.path, buf, "the buffer");
      checkPosition("read", this.path, position);
      const data = this.inode.current.view();
      const n = Math.max(0, Math.min(buf.length, data.length - position));
      buf.set(data.subarray(position, position + n));
      return Promise.resolve(n);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  write(data: Uint8Array, position: number): Promise<void> {
    try {
      this.#check("write", "write");
      checkBytes("write", this.path, data, "the data");
      checkPosition("write", this.path, position);
      this.fs.ops.push(`write ${this.path} ${position} ${data.length}`);
      this.inode.write(data, position);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  truncate(length: number): Promise<void> {
    try {
      this.#check("truncate", "write");
      checkPosition("truncate", this.path, length, "length");
      this.fs.ops.push(`truncate ${this.path} ${length}`);
      this.inode.truncate(length);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  datasync(): Promise<void> {
    try {
      this.#check("fsync");
      this.fs.ops.push(`datasync ${this.path}`);
      this.inode.sync();
      this.fs.syncCount++;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  size(): Promise<number> {
    try {
      this.#check("stat");
      return Promise.resolve(this.inode.current.length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  tryLock(): Promise<boolean> {
    try {
      this.#check("lock");
      const holder = this.shared.locks.get(this.inode);
      if (holder !== undefined && holder !== this) return Promise.resolve(false);
      this.shared.locks.set(this.inode, this);
      return Promise.resolve(true);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    // A crash already closed every handle; closing one afterwards changes nothing.
    if (this.shared.epoch === this.epoch) {
      this.fs.ops.push(`close ${this.path}`);
      if (this.shared.locks.get(this.inode) === this) this.shared.locks.delete(this.inode);
    }
    return Promise.resolve();
  }
}
