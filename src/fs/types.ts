// The file-system seam. Every byte snaplog reads or writes goes through these two
// interfaces, so tests can inject each failure (a failed write, a failed fsync, a full
// disk, a crash that loses whatever was not fsynced) without a heavier harness: the
// pattern of raft-wal's types/vfs.go. `denoFs` (deno_fs.ts) is the real one;
// `MemFs` (mem_fs.ts) models durability for crash tests.

/** How to open a file. */
export interface OpenOptions {
  /** Open for reading. */
  read?: boolean;
  /** Open for writing (writes go at the handle's position; see {@link FileHandle.write}). */
  write?: boolean;
  /** Create the file if it does not exist. */
  create?: boolean;
  /** Fail if the file exists (implies create). */
  createNew?: boolean;
  /** Truncate to zero length on open. */
  truncate?: boolean;
  /** Permission bits for a created file; applied exactly, whatever the umask. Default 0o644. */
  mode?: number;
}

/** What `stat` reports. */
export interface FileInfo {
  /** Size in bytes. */
  size: number;
  /** Permission bits (`mode & 0o777`), or null where the platform has none. */
  mode: number | null;
  /** True for a regular file. */
  isFile: boolean;
  /**
   * The file's identity where the platform has one (device and inode number on Unix): two
   * paths with the same `id` name the same file. A log checks it to notice its file being
   * replaced behind it (`FileChangedError`); without it only the size is checked.
   */
  id?: string;
}

/** An open file. Positions are explicit, so no hidden cursor can drift. */
export interface FileHandle {
  /** Reads up to `buf.length` bytes at `position`; returns the count, 0 at end of file. */
  read(buf: Uint8Array, position: number): Promise<number>;
  /** Writes all of `data` at `position`, or throws; a throw may leave a prefix written. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Sets the file's length. */
  truncate(length: number): Promise<void>;
  /** fdatasync: the file's data (and the size that covers it) is on stable storage. */
  datasync(): Promise<void>;
  /** The file's current size. */
  size(): Promise<number>;
  /** Tries to take an exclusive advisory lock without waiting; false if someone holds it. */
  tryLock(): Promise<boolean>;
  /** Closes the handle (and releases its lock). */
  close(): Promise<void>;
  /**
   * The identity of the open file, as {@link FileInfo.id} gives it for a path (device and inode
   * on Unix), or undefined where there is none. Optional.
   */
  id?(): Promise<string | undefined>;
}

/** The operations snaplog needs from a file system. */
export interface FileSystem {
  /** Opens `path`. Throws `Deno.errors.NotFound` when it is missing and not created. */
  open(path: string, options: OpenOptions): Promise<FileHandle>;
  /** Metadata of `path`, or null if it does not exist. */
  stat(path: string): Promise<FileInfo | null>;
  /** Atomically replaces `to` with `from` (POSIX rename). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; no error if it is already gone. */
  remove(path: string): Promise<void>;
  /**
   * Gives the file at `existing` a second name, `newPath` (a POSIX hard link; fails if
   * `newPath` exists). Optional: where it is missing or fails, compaction closes the replaced
   * file itself (see the README, "Crash safety: compaction").
   */
  link?(existing: string, newPath: string): Promise<void>;
  /** fsyncs a directory, making renames and creations in it durable. No-op where unsupported. */
  syncDir(path: string): Promise<void>;
}
