// Read-ahead for a sequential scan of a file: while the caller scans one chunk (in Wasm, on
// this thread), the next one is already being read. Deno runs a file read on a thread of its
// own, so the copy out of the page cache overlaps the scan instead of preceding it: replaying
// a 30 MB file spent 4-7 ms of ~32 waiting for reads (see bench/HISTORY.md, session 17).
//
// The chunk is read into a buffer of this class, not into the caller's (a view of Wasm
// memory, which a growing alive set may detach while the read is in flight), and copied over
// when asked for: 23 us a MiB, against 100-200 us for a read. Reads that are not sequential
// (a recovery's search after damage) go straight to the file, as before.

import type { FileHandle } from "./types.ts";

/** A chunk being read, or read: file bytes `[pos, pos + got)` in `buf`. */
interface Block {
  pos: number;
  len: number; //             bytes asked for
  buf: Uint8Array;
  got: Promise<number>; //    bytes the read returned (fewer at the end of the file)
}

/** The size of a read-ahead chunk (as the replays read: big enough that a read's own cost vanishes). */
export const READ_AHEAD_BYTES = 1 << 20;

/**
 * A {@link FileHandle.read} that serves sequential reads from a chunk read ahead. After a
 * read that filled its buffer, the next chunk (at most up to `end`) is read in the background;
 * a read that starts where the last one ended takes its bytes from there.
 *
 * Errors are those of the file's own reads: a chunk read ahead that failed throws its error
 * when a read asks for its bytes, and is forgotten if none does. A chunk left unread when the
 * caller stops is a wasted read, never a leak: its buffer belongs to this object, and the
 * handle's close waits behind it where the file system serializes calls (as `denoFs` does).
 */
export class ReadAhead {
  readonly #file: FileHandle;
  readonly #chunk: number;
  #end: number; // reads ahead stop here (the caller's view of the file's size)
  // Chunks read ahead, in file order and back to back: the one reads are served from, and
  // the one after it, under way while the caller works on what it was given.
  #blocks: Block[] = [];
  #spare: Uint8Array | null = null;

  /**
   * @param file The file to read.
   * @param end Where reading ahead stops.
   * @param chunk Bytes per read ahead.
   */
  constructor(file: FileHandle, end: number, chunk: number = READ_AHEAD_BYTES) {
    this.#file = file;
    this.#end = end;
    this.#chunk = chunk;
  }

  /**
   * Reads up to `buf.length` bytes at `position`, as {@link FileHandle.read}: the count, 0 at
   * the end of the file. It may return fewer bytes than asked for before the end (where the
   * chunks read ahead end: at the `end` it was given).
   */
  async read(buf: Uint8Array, position: number): Promise<number> {
    let done = 0;
    while (done < buf.length) {
      const block = this.#blocks[0];
      const at = position + done;
      if (block === undefined || at < block.pos || at >= block.pos + block.len) break;
      const got = await block.got; // throws the read's own error
      // Keep the chunk after this one under way (none after a short one: the file ended there).
      if (got === block.len) this.#ahead(block.pos + got);
      if (at >= block.pos + got) break;
      const k = Math.min(buf.length - done, block.pos + got - at);
      buf.set(block.buf.subarray(at - block.pos, at - block.pos + k), done);
      done += k;
      if (at + k === block.pos + got) {
        // Used up: its buffer takes a later chunk.
        this.#blocks.shift();
        this.#spare = block.buf;
        if (got < block.len) return done; // the end of the file, as that read saw it
      }
    }
    if (done === 0) {
      // Not read ahead: from the file, and read ahead from there if this read filled its buffer.
      this.#blocks = [];
      const n = await this.#file.read(buf, position);
      if (n === buf.length) this.#ahead(position + n);
      return n;
    }
    return done;
  }

  /**
   * Forgets the chunks read ahead and reads ahead only up to `end` from now on: the caller
   * learned that the file changed (it got shorter), and what was read before may be stale.
   */
  forget(end: number): void {
    this.#blocks = [];
    this.#end = end;
  }

  /** Starts reading the chunk at `pos` unless it is under way, two are, or `pos` is at `end`. */
  #ahead(pos: number): void {
    const last = this.#blocks[this.#blocks.length - 1];
    if (last !== undefined && last.pos + last.len > pos) return;
    if (this.#blocks.length >= 2 || pos >= this.#end) return;
    const len = Math.min(this.#chunk, this.#end - pos);
    let buf = this.#spare;
    this.#spare = null;
    if (buf === null || buf.length < len) buf = new Uint8Array(Math.max(len, this.#chunk));
    const got = this.#file.read(buf.subarray(0, len), pos);
    got.catch(() => {}); // a failure matters only to a read that asks for these bytes
    this.#blocks.push({ pos, len, buf, got });
  }
}
