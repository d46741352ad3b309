// Which file a path names, and the one-writer lock on it. Both the live log
// (src/serf/snapshotter.ts) and the offline writers (convert) go through here, so a symlink
// or a different spelling of a path cannot get around the lock.
import { absolutePath, baseOf, dirOf, isAbsolutePath, joinPath, normalizePosix } from "./_path.ts";
import { LockedError } from "../errors.ts";
import { denoFs, osErrorText } from "./deno_fs.ts";
import type { FileHandle, FileSystem } from "./types.ts";

/** Symlinks followed at most, as Linux's open(2) does before ELOOP. */
const SYMLINK_HOPS_MAX = 40;

/**
 * The canonical path of `path`: absolute, with symlinks resolved where the file (or else its
 * directory) exists. A dangling symlink is followed to the file it names, which is where a
 * new file is created, as open(2) with O_CREAT does (and serf does): the link stays and its
 * target gets the snapshot, the lock beside it. Another file system (an in-memory one in
 * tests) has its own namespace: there it is the normalized spelling (`./d/../d/x` is `d/x`).
 */
export async function canonicalPath(fs: FileSystem, path: string): Promise<string> {
  if (fs !== denoFs) return normalizePosix(path);
  let p = path;
  for (let hops = 0;; hops++) {
    // realPath resolves a relative path against the working directory itself.
    try {
      return await Deno.realPath(p);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    let target: string;
    try {
      target = await Deno.readLink(p);
    } catch {
      break; // nothing there (or no link): a file to create at p
    }
    if (hops === SYMLINK_HOPS_MAX) {
      throw new Deno.errors.NotFound(
        `Cannot resolve "${path}": more than ${SYMLINK_HOPS_MAX} symbolic links`,
      );
    }
    p = isAbsolutePath(target) ? target : joinPath(dirOf(p), target);
  }
  try {
    return joinPath(await Deno.realPath(dirOf(p)), baseOf(p));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return absolutePath(p); // no such directory: opening the lock file will say so
  }
}

/**
 * Takes the writer lock of the file at `canonical` (from {@link canonicalPath}): an exclusive
 * lock on `<canonical>.lock`, a separate file, so that it also works on Windows and survives
 * the rename that replaces the file itself. Hard links to one file are separate paths, with
 * separate lock files: the Snapshotter also locks the snapshot file itself for that.
 *
 * @returns The lock file's handle: closing it releases the lock.
 * @throws {LockedError} (naming `shown`) if another writer holds it.
 * @throws {Deno.errors.NotFound} If the directory does not exist.
 */
export async function acquireWriterLock(
  fs: FileSystem,
  canonical: string,
  shown: string,
): Promise<FileHandle> {
  let lock: FileHandle;
  try {
    lock = await fs.open(`${canonical}.lock`, { read: true, write: true, create: true, mode: 0o644 });
  } catch (err) {
    // The lock file is an implementation detail: name the file the caller asked for, unless
    // the lock file itself is what is wrong (a dangling symlink in its place, a directory that
    // lets no file be created).
    if (err instanceof Deno.errors.NotFound) {
      const dir = dirOf(canonical);
      const dirInfo = await fs.stat(dir === "" ? "." : dir).catch(() => null);
      if (dirInfo === null || dirInfo.isFile) {
        throw new Deno.errors.NotFound(`Cannot open "${shown}": its directory does not exist`, {
          cause: err,
        });
      }
      throw new Deno.errors.NotFound(
        `Cannot open "${shown}": cannot create its lock file "${canonical}.lock" (${osText(err)})`,
        { cause: err },
      );
    }
    throw err;
  }
  if (!(await lock.tryLock())) {
    await lock.close();
    throw new LockedError(shown);
  }
  return lock;
}

/**
 * The permission bits of `path`, for a file that replaces or copies it: its read and write
 * bits, with the owner's read and write added (a log must go on writing the file that replaces
 * its snapshot, even if someone made the snapshot read-only meanwhile) and no execute bits (a
 * snapshot is data: serf creates its compacted file 0755, which becomes 0644 here); 0644 (what
 * snaplog creates) where there are none to tell (a platform without them, or no such file).
 */
export async function modeOf(fs: FileSystem, path: string): Promise<number> {
  const mode = (await fs.stat(path).catch(() => null))?.mode;
  return mode === null || mode === undefined ? 0o644 : (mode & 0o666) | 0o600;
}

/** The operating system's words for a failure: the wrapped cause's message where there is one. */
function osText(e: Error): string {
  return osErrorText(e.cause instanceof Error ? e.cause : e);
}
