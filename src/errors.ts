// The error classes callers are expected to catch. Everything else is a TypeError
// (wrong type or shape), a RangeError (value out of range) or a wrapped system error.

/**
 * A log file holds bytes that cannot be a valid log at `offset`: a checksum mismatch, an
 * impossible length or type in the middle of the file, or a bad file header.
 *
 * @example Catch corruption and report where it is
 * ```ts
 * import { CorruptionError } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const err = new CorruptionError("a.snap", 4096, "checksum mismatch");
 * assert.ok(err instanceof CorruptionError);
 * assert.equal(err.message, 'Cannot read "a.snap" at offset 4096: checksum mismatch');
 * ```
 */
export class CorruptionError extends Error {
  /** The damaged file. */
  readonly path: string;
  /** Byte offset of the damage. */
  readonly offset: number;
  /** What is wrong there. */
  readonly reason: string;

  /**
   * Creates the error; the message names the path, the offset and the reason.
   *
   * @param path The damaged file.
   * @param offset Byte offset of the damage.
   * @param reason What is wrong there.
   */
  constructor(path: string, offset: number, reason: string) {
    super(`Cannot read "${path}" at offset ${offset}: ${reason}`);
    this.name = "CorruptionError";
    this.path = path;
    this.offset = offset;
    this.reason = reason;
  }
}

/**
 * The file is already open for writing, by this process or another one.
 *
 * @example
 * ```ts
 * import { LockedError } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * assert.match(new LockedError("a.snap").message, /locked/);
 * ```
 */
export class LockedError extends Error {
  /** The file that is locked. */
  readonly path: string;
  /**
   * Creates the error.
   *
   * @param path The file that is locked.
   * @param detail How it is held, when more is known.
   */
  constructor(path: string, detail?: string) {
    super(
      `Cannot open "${path}": file is locked by another writer${detail === undefined ? "" : ` (${detail})`}`,
    );
    this.name = "LockedError";
    this.path = path;
  }
}

/**
 * The log was closed, so it cannot be used any more.
 *
 * @example
 * ```ts
 * import { ClosedError } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * assert.match(new ClosedError("a.snap", "append").message, /closed/);
 * ```
 */
export class ClosedError extends Error {
  /** The log's file. */
  readonly path: string;
  /** What was attempted (`"append to"`, `"sync"`, `"compact"`, ...). */
  readonly action: string;
  /**
   * Creates the error.
   *
   * @param path The log's file.
   * @param action What was attempted.
   */
  constructor(path: string, action: string) {
    super(`Cannot ${action} "${path}": the log is closed`);
    this.name = "ClosedError";
    this.path = path;
    this.action = action;
  }
}

/**
 * The log's path no longer names the file the log has been writing, or another writer changed
 * that file: it was removed or renamed away, another file was put in its place, or its size is
 * not what this log wrote (a copy over it, a truncation, a program that takes no lock, such as
 * serf on a go-text file). What this log wrote since is not where a reopen will look, so it
 * refuses further writes, as after a failed fsync: the `cause` of every {@link PoisonedError}
 * that follows. SQLite's `SQLITE_READONLY_DBMOVED` is the
 * model. The check runs with each fsync and timer flush and before a compaction renames over the file, so
 * a compaction never replaces a file the log does not own.
 *
 * @example
 * ```ts
 * import { FileChangedError, PoisonedError } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const err = new FileChangedError("a.snap", "it was removed or renamed away");
 * assert.equal(err.message, '"a.snap" is no longer the file this log writes: it was removed or renamed away');
 * assert.match(new PoisonedError("a.snap", "sync", err).message, /no longer the file this log writes/);
 * ```
 */
export class FileChangedError extends Error {
  /** The log's file. */
  readonly path: string;
  /** What changed. */
  readonly reason: string;
  /**
   * Creates the error.
   *
   * @param path The log's file.
   * @param reason What changed.
   */
  constructor(path: string, reason: string) {
    super(`"${path}" is no longer the file this log writes: ${reason}`);
    this.name = "FileChangedError";
    this.path = path;
    this.reason = reason;
  }
}

/**
 * A write or fsync failed earlier, or the log's file was changed behind it
 * ({@link FileChangedError}), so the log no longer knows what reached the disk: it refuses
 * every further write until it is reopened, which replays what is really there (the lesson
 * of PostgreSQL's "fsyncgate"). Also when the alive set stopped fitting in the log's Wasm
 * memory (2 GiB): the buffered records that did not fit are not written. `cause` is the
 * original failure.
 *
 * @example
 * ```ts
 * import { PoisonedError } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const err = new PoisonedError("a.snap", "append", new Error("EIO"));
 * assert.match(err.message, /reopen/);
 * ```
 */
export class PoisonedError extends Error {
  /** The log's file. */
  readonly path: string;
  /** What was attempted. */
  readonly action: string;
  /**
   * Creates the error, keeping the earlier failure as `cause`.
   *
   * @param path The log's file.
   * @param action What was attempted.
   * @param cause The earlier failure.
   * @param detail What the failed call leaves undone (`close()`: the bytes not written or fsynced).
   */
  constructor(path: string, action: string, cause: unknown, detail?: string) {
    super(
      `Cannot ${action} "${path}"${detail === undefined ? "" : ` (${detail})`}: ${
        cause instanceof FileChangedError
          ? cause.message
          : cause instanceof RangeError
          ? `its state stopped fitting in memory (${cause.message})`
          : `an earlier write or fsync failed (${cause instanceof Error ? cause.message : String(cause)})`
      }; reopen the log`,
      { cause },
    );
    this.name = "PoisonedError";
    this.path = path;
    this.action = action;
  }
}

/**
 * More bytes are buffered than the log's `bufferSizeMaxBytes`: the disk is not keeping up.
 * Nothing was dropped: the record was not appended. Wait for `sync()` and append again.
 *
 * @example
 * ```ts
 * import { BackpressureError } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * assert.match(new BackpressureError("a.snap", 1024).message, /await sync/);
 * ```
 */
export class BackpressureError extends Error {
  /** The log's file. */
  readonly path: string;
  /** Bytes waiting to be written when the record was refused. */
  readonly bufferedBytes: number;
  /**
   * Creates the error.
   *
   * @param path The log's file.
   * @param bufferedBytes Bytes waiting to be written.
   */
  constructor(path: string, bufferedBytes: number) {
    super(
      `Cannot append to "${path}": ${bufferedBytes} bytes are waiting for the disk; await sync() and retry`,
    );
    this.name = "BackpressureError";
    this.path = path;
    this.bufferedBytes = bufferedBytes;
  }
}
