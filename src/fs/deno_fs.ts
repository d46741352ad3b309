// The real FileSystem, over Deno's file APIs.
//
// Every system error is rethrown as `Cannot <step> "<path>": <detail>` with the original as its
// `cause`, so a log line says which step failed. The wrapper keeps the class of a `Deno.errors.*`
// error (callers test for NotFound and AlreadyExists) and copies its `code` ("ENOSPC", "EIO").

import type { FileHandle, FileInfo, FileSystem, OpenOptions } from "./types.ts";
import { checkBytes, checkOpenOptions, checkPath, checkPosition } from "./_checks.ts";

const isWindows = Deno.build.os === "windows";

/** Mode of a created file when the caller gives none: owner read-write, everyone else read. */
const DEFAULT_MODE = 0o644;

/**
 * Opening with `create` tries `createNew` first, to learn whether this call created the file (and
 * so must set its mode). Another process creating or removing the file in between sends us round
 * again; a bound turns a pathological race into an error instead of a spin.
 */
const CREATE_ATTEMPTS_MAX = 8;

/**
 * Writes up to this size go through `writeSync`: a small write into the page cache takes 10-40 us
 * on this thread, where Deno's async op adds a round trip through its I/O threads of 80-300 us
 * (a group commit's write of 64 records: 16-37 us against 85-176 us, session 14), and one log's
 * writes never overlap its own fsync (the exclusive I/O turn orders them). Larger writes (a
 * timer flush of a burst, a compaction's 512 KiB chunks) stay async, so the event loop and the
 * appends go on while the kernel copies them. The cost: a small write that has to wait in the
 * kernel (dirty-page throttling, or a page under writeback on a device that needs stable pages)
 * blocks this thread for that long instead of waiting off it.
 */
const SYNC_WRITE_MAX = 64 * 1024;

/** Deno's error classes, so a wrapped error keeps the class callers test for. */
const denoErrorClasses: ReadonlySet<unknown> = new Set(Object.values(Deno.errors));

/** Wraps a system error as `Cannot <what>: <detail>`, keeping its Deno class and its code. */
/**
 * A Deno error's message without the syscall and path Deno appends ("...(os error 2): open
 * 'a.log'"), for a message of ours that names both already.
 */
export function osErrorText(err: Error): string {
  return err.message.replace(/: [a-z_]+ '.*$/s, "");
}

function wrap(what: string, err: unknown): Error {
  if (!(err instanceof Error)) return new Error(`Cannot ${what}: ${String(err)}`, { cause: err });
  return rewrapError(err, `Cannot ${what}: ${osErrorText(err)}`);
}

/**
 * `err` under a new `message` that says more: the same `Deno.errors` class where it has one
 * (callers test `instanceof NotFound`, `PermissionDenied`), its `code` ("ENOSPC"), and `err`
 * as the cause.
 */
export function rewrapError(err: unknown, message: string): Error {
  const ctor = err instanceof Error ? err.constructor : null;
  const wrapped: Error = denoErrorClasses.has(ctor)
    ? new (ctor as ErrorConstructor)(message, { cause: err })
    : new Error(message, { cause: err });
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") Object.assign(wrapped, { code });
  return wrapped;
}

/** The directory to fsync for `path`: "" (the parent of a bare file name) means the cwd. */
function dirPath(path: string): string {
  return path === "" ? "." : path;
}

/**
 * Errors that mean "this file system cannot fsync a directory" rather than "the fsync failed":
 * EINVAL (Linux on some FUSE and network file systems), ENOTSUP/EOPNOTSUPP, and EISDIR/EBADF where
 * a platform refuses to open or sync a directory this way. These make `syncDir` a no-op, as on
 * Windows; anything else (EIO above all) is a real failure and is thrown.
 */
const UNSUPPORTED_DIR_SYNC = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EISDIR", "EBADF"]);

function isUnsupportedDirSync(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNSUPPORTED_DIR_SYNC.has(code);
}

class DenoHandle implements FileHandle {
  #file: Deno.FsFile;
  #path: string;
  #closed = false;
  /**
   * Positioned I/O is seek-then-read/write on one cursor, so two calls in flight on the same handle
   * would move each other's cursor. Each call waits for the previous one.
   */
  #queue: Promise<unknown> = Promise.resolve();
  /** Calls made and not yet settled. */
  #busy = 0;
  /**
   * Where the cursor is, or -1 when unknown (after a failed call), so a call at the cursor
   * skips its seek: a log reads and appends sequentially, and a seek is one more trip through
   * Deno's I/O threads (a replay's 36 reads of 1 MiB: 10.5-14.6 ms with a seek each, 9-11
   * without).
   */
  #cursor = 0;

  constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
  }

  #run<T>(step: string, fn: (file: Deno.FsFile) => Promise<T>, check?: () => void): Promise<T> {
    try {
      check?.(); // bad arguments fail before the call queues, and never reach the file
    } catch (err) {
      return Promise.reject(err);
    }
    const call = async (): Promise<T> => {
      if (this.#closed) throw new Deno.errors.BadResource(`Cannot ${step} "${this.#path}": file is closed`);
      try {
        return await fn(this.#file);
      } catch (err) {
        throw wrap(`${step} "${this.#path}"`, err);
      }
    };
    // With nothing in flight the call starts now, not a few microtasks later: a read issued
    // ahead (ReadAhead) then reaches Deno's I/O thread before the caller goes on to scan the
    // chunk it has, instead of after that scan.
    return this.#track(this.#busy === 0 ? call() : this.#queue.then(call));
  }

  /** Makes `result` the call the next one waits for, and counts it in flight until it settles. */
  #track<T>(result: Promise<T>): Promise<T> {
    this.#busy++;
    const settled = (): void => {
      this.#busy--;
    };
    result.then(settled, settled);
    this.#queue = result.catch(() => {});
    return result;
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    const check = (): void => {
      checkBytes("read", this.#path, buf, "the buffer");
      checkPosition("read", this.#path, position);
    };
    return this.#run("read", async (file) => {
      const seek = this.#seek(file, position);
      if (seek !== undefined) await seek;
      let total = 0;
      // Each read returns at least one byte or null at end of file, so this ends.
      while (total < buf.length) {
        const n = await file.read(buf.subarray(total));
        if (n === null || n === 0) break;
        total += n;
      }
      this.#cursor = position + total;
      return total;
    }, check);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    const check = (): void => {
      checkBytes("write", this.#path, data, "the data");
      checkPosition("write", this.#path, position);
    };
    return this.#run("write", async (file) => {
      const seek = this.#seek(file, position);
      if (seek !== undefined) await seek;
      let done = 0;
      const small = data.length <= SYNC_WRITE_MAX;
      // A write may be short (a signal, a pipe, a nearly full disk); the next call either makes
      // progress or throws the reason, such as ENOSPC.
      while (done < data.length) {
        const n = small ? file.writeSync(data.subarray(done)) : await file.write(data.subarray(done));
        if (n <= 0) throw new Deno.errors.WriteZero("write returned 0 bytes");
        done += n;
      }
      this.#cursor = position + data.length;
    }, check);
  }

  /**
   * Moves the cursor to `position` unless it is there (then returns nothing to wait for, so a
   * sequential read or write starts at once); unknown until the caller's I/O succeeds.
   */
  #seek(file: Deno.FsFile, position: number): Promise<number> | undefined {
    const at = this.#cursor;
    this.#cursor = -1;
    return at !== position ? file.seek(position, Deno.SeekMode.Start) : undefined;
  }

  truncate(length: number): Promise<void> {
    return this.#run(
      "truncate",
      (file) => file.truncate(length),
      () => checkPosition("truncate", this.#path, length, "length"),
    );
  }

  datasync(): Promise<void> {
    return this.#run("fsync", (file) => file.syncData());
  }

  size(): Promise<number> {
    return this.#run("stat", async (file) => (await file.stat()).size);
  }

  tryLock(): Promise<boolean> {
    return this.#run("lock", (file) => file.tryLock(true));
  }

  id(): Promise<string | undefined> {
    return this.#run("stat", async (file) => {
      const info = await file.stat();
      return info.ino === null ? undefined : `${info.dev}:${info.ino}`;
    });
  }

  close(): Promise<void> {
    // Queued behind calls in flight, so a close never cuts one off; and counted in flight
    // itself, so a call made after it waits for it (and finds the file closed) rather than
    // starting at once.
    return this.#track(this.#queue.then(() => {
      if (this.#closed) return;
      this.#closed = true;
      try {
        this.#file.close();
      } catch (err) {
        throw wrap(`close "${this.#path}"`, err);
      }
    }));
  }
}

async function openFile(path: string, options: OpenOptions): Promise<DenoHandle> {
  const mode = options.mode ?? DEFAULT_MODE;
  const base: Deno.OpenOptions = {
    read: options.read ?? false,
    write: options.write ?? false,
    truncate: options.truncate ?? false,
  };
  // Whether to set the mode: only on a file this call created, never on an existing one.
  let file: Deno.FsFile | undefined;
  let created = false;
  try {
    if (options.createNew === true) {
      file = await Deno.open(path, { ...base, createNew: true, mode });
      created = true;
    } else if (options.create === true) {
      for (let attempt = 0; file === undefined; attempt++) {
        if (attempt === CREATE_ATTEMPTS_MAX) {
          throw new Error(`file kept appearing and disappearing (${CREATE_ATTEMPTS_MAX} attempts)`);
        }
        try {
          file = await Deno.open(path, { ...base, createNew: true, mode });
          created = true;
        } catch (err) {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
          try {
            file = await Deno.open(path, base);
          } catch (err2) {
            if (!(err2 instanceof Deno.errors.NotFound)) throw err2;
            // There and not there: a race with a remover (try again), or a symlink to nothing,
            // which exclusive creation refuses and opening cannot follow (say so).
            const target = await Deno.readLink(path).catch(() => null);
            if (target !== null) {
              throw new Deno.errors.NotFound(`it is a symbolic link to "${target}", which does not exist`, {
                cause: err2,
              });
            }
          }
        }
      }
    } else {
      file = await Deno.open(path, base);
    }
  } catch (err) {
    throw wrap(`open "${path}"`, err);
  }
  if (created && !isWindows) {
    // The umask may have cleared bits of `mode` at creation; chmod sets exactly what was asked.
    try {
      await Deno.chmod(path, mode);
    } catch (err) {
      file.close();
      throw wrap(`chmod "${path}"`, err);
    }
  }
  return new DenoHandle(file, path);
}

/**
 * True for an error that says there is no file at the path: it does not exist, or its name is
 * longer than the file system allows, so no file can have it (a snapshot whose name leaves no
 * room for `.replaced` beside it has no such file to clean up).
 */
function cannotExist(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || (err as { code?: unknown } | null)?.code === "ENAMETOOLONG";
}

/**
 * The real {@link FileSystem}, over Deno's file APIs. Needs `--allow-read` and `--allow-write` for
 * the paths it touches.
 *
 * Positioned reads and writes loop until every byte is transferred; a created file gets exactly
 * the requested mode whatever the umask; `tryLock` takes an exclusive `flock`-style lock that a
 * second handle, even in the same process, cannot take; `syncDir` fsyncs a directory and is a
 * no-op on Windows and on file systems that cannot fsync one. System errors are rethrown as
 * `Cannot <step> "<path>": <detail>` with the original as `cause`, keeping the `Deno.errors` class
 * (test for `Deno.errors.NotFound`, `Deno.errors.AlreadyExists`) and the `code`.
 *
 * @example Write, fsync and read back
 * ```ts
 * import { denoFs } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * try {
 *   const f = await denoFs.open(`${dir}/a.log`, { read: true, write: true, create: true });
 *   await f.write(new Uint8Array([1, 2, 3]), 0);
 *   await f.datasync();
 *   await denoFs.syncDir(dir);
 *   const buf = new Uint8Array(3);
 *   assert.equal(await f.read(buf, 0), 3);
 *   assert.deepEqual(buf, new Uint8Array([1, 2, 3]));
 *   await f.close();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export const denoFs: FileSystem = {
  open(path: string, options: OpenOptions): Promise<FileHandle> {
    try {
      checkPath("open a file", path);
      checkOpenOptions(path, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return openFile(path, options);
  },

  stat(path: string): Promise<FileInfo | null> {
    let info: Deno.FileInfo;
    try {
      // statSync: a stat is one short syscall, and Deno's async op costs this thread ~25 us
      // more (measured: 27-35 us a call against 3.5-4), which a log pays with every fsync
      // (Snapshotter's file check).
      info = Deno.statSync(path);
    } catch (err) {
      if (cannotExist(err)) return Promise.resolve(null);
      return Promise.reject(wrap(`stat "${path}"`, err));
    }
    const out: FileInfo = {
      size: info.size,
      mode: info.mode === null ? null : info.mode & 0o777,
      isFile: info.isFile,
    };
    // Windows reports no inode number: there a log checks its file's size alone.
    if (info.ino !== null) out.id = `${info.dev}:${info.ino}`;
    return Promise.resolve(out);
  },

  async rename(from: string, to: string): Promise<void> {
    try {
      await Deno.rename(from, to);
    } catch (err) {
      throw wrap(`rename "${from}" to "${to}"`, err);
    }
  },

  async link(existing: string, newPath: string): Promise<void> {
    try {
      await Deno.link(existing, newPath);
    } catch (err) {
      throw wrap(`link "${existing}" to "${newPath}"`, err);
    }
  },

  async remove(path: string): Promise<void> {
    try {
      await Deno.remove(path);
    } catch (err) {
      if (cannotExist(err)) return;
      throw wrap(`remove "${path}"`, err);
    }
  },

  async syncDir(path: string): Promise<void> {
    // A NUL byte is EINVAL, which would pass as "cannot fsync a directory here"; "" is the cwd.
    checkPath("fsync a directory", path, true);
    // Windows cannot open a directory as a file; NTFS journals its metadata instead.
    if (isWindows) return;
    const dir = dirPath(path);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(dir, { read: true });
    } catch (err) {
      if (isUnsupportedDirSync(err)) return;
      throw wrap(`open directory "${dir}"`, err);
    }
    try {
      await file.sync();
    } catch (err) {
      if (!isUnsupportedDirSync(err)) throw wrap(`fsync directory "${dir}"`, err);
    } finally {
      file.close();
    }
  },
};
