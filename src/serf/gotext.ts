// Serf's own snapshot format: the Go text file HashiCorp serf's Snapshotter writes
// (serf/snapshot.go), replayed by the same rules as serf's `replay`, and written line for
// line as serf writes it. The scan runs in Wasm (assembly/gotext.ts) over chunks read into
// Wasm memory (from a file, the next chunk read ahead while this one is scanned:
// GoTextReplayer.readAll over a PositionalReader); the alive set lives in Wasm too
// (assembly/serf_state.ts), so memory follows the alive set and the longest line, not the
// file.
import { WasmCore, WasmMemoryError } from "../_wasm/core.ts";
import { SerfState } from "./_state.ts";
import { goQuote } from "./_go_quote.ts";
import type { FileHandle } from "../fs/types.ts";
import { decodeUtf8, isUint64, type SnapshotRecord } from "./records.ts";
import { checkMaxWarnings, type ReplayWarning, type SnapshotState } from "./types.ts";

/** Options of {@link replayGoText} and {@link GoTextReplayer}. */
export interface GoTextReplayOptions {
  /**
   * Ignore `leave` lines, as serf does with `RejoinAfterLeave`; otherwise a `leave` clears
   * the alive set and the clocks.
   *
   * @default {false}
   */
  rejoinAfterLeave?: boolean;
  /**
   * Size of the read buffer in Wasm memory. A longer line grows it (serf has no line
   * length limit), so this is a starting size, not a maximum.
   *
   * @default {1048576}
   */
  chunkSizeBytes?: number;
  /**
   * Warnings listed; more are counted in `warningsOmitted` (a file of garbage would
   * otherwise hold one warning per line in memory). The list also stops at
   * {@link WARNINGS_CHARS_MAX} characters of their text.
   *
   * @default {10000}
   */
  maxWarnings?: number;
}

/** One line of serf's text snapshot format, as {@link formatGoTextRecord} writes it. */
export type GoTextRecord = SnapshotRecord;

/** The exports of assembly/gotext.ts. */
interface GoTextExports {
  gotext_scan(ptr: number, len: number, lineBase: number): number;
  gotext_warning_count(): number;
  gotext_warnings_ptr(): number;
  gotext_lines(): number;
  gotext_status(): number;
}

// 1 MiB, as the binary replay reads: each chunk is one file read, and a read costs more
// than the scan's L2 misses on a bigger chunk (serf's 30 MB history file, one thread,
// 20 alternating rounds: 256 KiB 120 ms median, 1 MiB 111 ms; a 22 MB file 82.5 vs 74.8).
const CHUNK_BYTES_DEFAULT = 1 << 20;
// Any size works (a full buffer without a '\n' doubles); tiny sizes exist for tests of
// chunk boundaries.
const CHUNK_BYTES_MIN = 1;
// Wasm memory is 32-bit; no chunk buffer can be larger than the memory allocator's largest block.
const CHUNK_BYTES_MAX = 1 << 30;
/** Room before each read-ahead region for the incomplete line the other region ended with (at most 1/16 of a region). */
const READ_AHEAD_ROOM = 32 << 10;
/** Regions (half the buffer) smaller than this are not read ahead in (tests of chunk boundaries use tiny buffers). */
const READ_AHEAD_MIN = 4 << 10;

/** A chunk being read into Wasm memory at `ptr` (see GoTextReplayer's read-ahead). */
interface ChunkRead {
  pos: number;
  len: number;
  ptr: number;
  /** What the read writes into; null if it could not start (`got` holds why). */
  view: Uint8Array | null;
  got: Promise<number>;
}

// Mirrors assembly/gotext.ts.
export const WARN_ADDRESS = 1;
export const WARN_UNRECOGNIZED = 2;
export const WARN_CLOCK_SYNTAX = 3; // + 2 * kind
export const WARN_CLOCK_RANGE = 4; //  + 2 * kind
const INFO_LEAVE_IGNORED = 9;
const GOTEXT_OUT_OF_MEMORY = 1;
const GOTEXT_WARNINGS_FULL = 2;
const NEWLINE = 0x0a;
/**
 * Characters of warning text a replay lists at most, besides `maxWarnings`: the warnings
 * after the first that does not fit are counted, not kept (10,000 skipped lines of 4,000
 * bytes held up to 610 MiB of warnings).
 */
export const WARNINGS_CHARS_MAX = 1 << 20;

const CLOCK_WORDS = ["clock", "event clock", "query clock"] as const;
const CLOCK_PREFIX_BYTES = [7, 13, 13] as const; // "clock: ", "event-clock: ", "query-clock: "

const encoder = new TextEncoder();

/**
 * Replays serf's text snapshot incrementally: push the file's bytes in pieces of any size
 * (or let it read a file straight into Wasm memory), then {@link GoTextReplayer.finish}.
 * Lines apply as soon as their `\n` arrives, so an open log can keep appending lines to
 * the same state.
 *
 * @example Replay bytes pushed in pieces
 * ```ts
 * import { GoTextReplayer } from "./gotext.ts";
 * import assert from "node:assert/strict";
 *
 * const replayer = new GoTextReplayer();
 * replayer.push(new TextEncoder().encode("alive: node-a 10.0.0.1:7946\ncl"));
 * replayer.push(new TextEncoder().encode("ock: 7\n"));
 * const state = replayer.finish();
 * assert.deepEqual(state.aliveNodes, [{ name: "node-a", addr: "10.0.0.1:7946" }]);
 * assert.equal(state.lastClock, 7n);
 * ```
 */
export class GoTextReplayer {
  readonly #core: WasmCore;
  readonly #state: SerfState;
  readonly #x: GoTextExports;
  #bufPtr: number;
  #bufCap: number;
  readonly #chunk: number; // the chunk size asked for (the buffer may have grown past it)
  #have = 0; //   bytes in the buffer not yet consumed (an incomplete line)
  #lines = 0; //  complete lines applied
  #bytes = 0; //  bytes pushed
  #scanned = 0; // bytes handed to gotext_scan (scannedBytes)
  #warningChars = 0; // characters of the listed warnings' reasons
  #warnings: ReplayWarning[] = [];
  #warningsOmitted = 0;
  readonly #maxWarnings: number;
  #finished = false;

  /**
   * Creates a replayer with an empty state in its own Wasm instance.
   *
   * @param options Leave mode and starting buffer size.
   * @throws {TypeError} If `chunkSizeBytes` is not an integer.
   * @throws {RangeError} If `chunkSizeBytes` is outside 1..2^30.
   */
  constructor(options: GoTextReplayOptions = {}) {
    const { rejoinAfterLeave, chunkSizeBytes, maxWarnings } = checkOptions(options);
    this.#maxWarnings = maxWarnings;
    this.#core = new WasmCore();
    this.#state = new SerfState(this.#core);
    this.#x = this.#core.exports as unknown as GoTextExports;
    this.#state.reset(rejoinAfterLeave);
    this.#bufCap = chunkSizeBytes;
    this.#chunk = chunkSizeBytes;
    this.#bufPtr = this.#core.alloc(chunkSizeBytes);
  }

  /**
   * The state being built (live: it changes with every push). For snaplog's own log
   * classes, which append to a replayed state.
   *
   * @ignore
   */
  get state(): SerfState {
    return this.#state;
  }

  /** Lines skipped so far, with serf's reason: the first `maxWarnings` (a live view: do not modify). */
  get warnings(): readonly ReplayWarning[] {
    return this.#warnings;
  }

  /** Lines skipped so far past the first `maxWarnings`. */
  get warningsOmitted(): number {
    return this.#warningsOmitted;
  }

  /** Complete lines applied so far. */
  get lines(): number {
    return this.#lines;
  }

  /**
   * Applies every line completed by `bytes`; an incomplete last line waits for more.
   *
   * @param bytes The next bytes of the file.
   * @throws {RangeError} If Wasm memory cannot grow.
   */
  push(bytes: Uint8Array): void {
    this.#checkOpen();
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(this.#bufCap - this.#have, bytes.length - off);
      this.#core.u8.set(bytes.subarray(off, off + n), this.#bufPtr + this.#have);
      off += n;
      this.#filled(n);
    }
  }

  /**
   * Reads `reader` to its end straight into Wasm memory and applies every complete line.
   *
   * @param reader A file or anything with a Deno-style `read`.
   * @throws {RangeError} If Wasm memory cannot grow.
   */
  async readAll(reader: { read(p: Uint8Array): Promise<number | null> }): Promise<void> {
    this.#checkOpen();
    if (reader instanceof PositionalReader && (await this.#readAhead(reader))) return;
    while (true) {
      if (this.#have === this.#bufCap) this.#grow(); // a full buffer would read 0 bytes: "the end"
      // Re-read the view on every pass: a scan or a buffer growth may grow the memory.
      const start = this.#bufPtr + this.#have;
      const n = await reader.read(this.#core.u8.subarray(start, this.#bufPtr + this.#bufCap));
      if (n === null) return;
      this.#filled(n);
    }
  }

  /** Bytes handed to the Wasm scan so far, rescans included (a long line is scanned once). */
  get scannedBytes(): number {
    return this.#scanned;
  }

  /** Bytes pushed after the last `\n`: an incomplete line waiting for the rest. */
  get pendingBytes(): number {
    return this.#have;
  }

  /**
   * The state so far, without ending the replay: pending bytes count as the torn tail, and
   * later pushes go on applying lines (an open log appends to the state it replayed).
   *
   * @returns The replayed state (format `go-text`).
   */
  snapshot(): SnapshotState {
    this.#checkOpen();
    const clocks = this.#state.clocks;
    return {
      format: "go-text",
      aliveNodes: this.#state.aliveNodes(),
      lastClock: clocks.lastClock,
      lastEventClock: clocks.lastEventClock,
      lastQueryClock: clocks.lastQueryClock,
      records: this.#lines,
      bytes: this.#bytes,
      tornTailBytes: this.#have,
      warnings: [...this.#warnings],
      warningsOmitted: this.#warningsOmitted,
    };
  }

  /**
   * Ends the replay: a last line without `\n` is a torn tail and is dropped, as serf does.
   * The read buffer goes back to the allocator; the state stays readable through
   * {@link GoTextReplayer.state}.
   *
   * @returns The replayed state (format `go-text`).
   * @throws {TypeError} If the replay has already finished.
   */
  finish(): SnapshotState {
    const result = this.snapshot();
    result.warnings = this.#warnings;
    this.#finished = true;
    this.#core.free(this.#bufPtr, this.#bufCap);
    this.#bufPtr = 0;
    return result;
  }

  #checkOpen(): void {
    if (this.#finished) throw new TypeError(`Cannot use GoTextReplayer: it has already finished`);
  }

  /** `n` new bytes were written after the pending ones: scan, keep the remainder. */
  #filled(n: number): void {
    this.#bytes += n;
    const total = this.#have + n;
    // The pending bytes hold no '\n' (a scan consumes every complete line): if the new ones
    // hold none either, there is nothing to scan. A long line arriving in pieces was scanned
    // again from its start at every piece, quadratic in its length (a 128 MiB line took 11 s
    // to convert, 2 s to replay).
    const fresh = this.#core.u8.subarray(this.#bufPtr + this.#have, this.#bufPtr + total);
    if (fresh.indexOf(NEWLINE) < 0) {
      this.#have = total;
      if (total === this.#bufCap) this.#grow();
      return;
    }
    const off = this.#scan(this.#bufPtr, total);
    if (off < 0) {
      this.#have = total - ~off;
      this.#core.u8.copyWithin(this.#bufPtr, this.#bufPtr + ~off, this.#bufPtr + total);
      throw this.#outOfMemory();
    }
    const rest = total - off;
    if (off > 0 && rest > 0) {
      this.#core.u8.copyWithin(this.#bufPtr, this.#bufPtr + off, this.#bufPtr + total);
    }
    this.#have = rest;
    if (rest === this.#bufCap) this.#grow();
  }

  /**
   * Applies every complete line in Wasm memory `[ptr, ptr + total)`; returns the bytes consumed
   * (just past the last '\n'), or their bitwise complement when memory ran out before the
   * next line.
   */
  #scan(ptr: number, total: number): number {
    const x = this.#x;
    let off = 0;
    while (true) {
      const p = ptr + off;
      this.#scanned += total - off;
      const consumed = x.gotext_scan(p, total - off, this.#lines + 1);
      const count = x.gotext_warning_count();
      if (count > 0) this.#collectWarnings(p, count);
      this.#lines += x.gotext_lines();
      off += consumed;
      const status = x.gotext_status();
      if (status === GOTEXT_WARNINGS_FULL) continue;
      return status === GOTEXT_OUT_OF_MEMORY ? ~off : off;
    }
  }

  #outOfMemory(): WasmMemoryError {
    return new WasmMemoryError(
      `Cannot replay snapshot line ${this.#lines + 1}: Wasm memory cannot grow further`,
    );
  }

  /**
   * readAll over a file read by position, with the next chunk read straight into Wasm memory
   * while this one is scanned. The buffer's two halves take turns, each with room at its start
   * for the incomplete line the other one ended with, which moves there (a few dozen bytes,
   * where a read ahead into a buffer of its own copied every byte: 1.5-2.3 ms of a 20-30 ms
   * replay, and that buffer's fresh pages). No memory is taken beyond the buffer. A chunk
   * whose memory was detached under its read (a scan grew the memory: the read may have landed
   * in the old one) is read again.
   *
   * Returns true once the reader is at its end. False where the plain loop is to go on (from
   * `reader.position`, with the pending bytes in the buffer, as if it had read so far itself):
   * a buffer too small to read ahead in (nothing is read then), pending bytes that do not fit
   * the room (the same), a short read (the file ended there as that read saw it: the plain
   * loop asks again), or a line longer than the room (a chunk read ahead of it is read again).
   */
  async #readAhead(reader: PositionalReader): Promise<boolean> {
    const half = this.#chunk >> 1;
    const room = Math.min(READ_AHEAD_ROOM, half >> 4);
    if (half < READ_AHEAD_MIN || this.#have > room) return false;
    const size = half - room; // bytes a read asks for
    const at = [this.#bufPtr + room, this.#bufPtr + half + room];
    let k = 0;
    let rest = this.#have; // the pending bytes, at [pending, pending + rest)
    let pending = at[k]! - rest; // just before region k
    this.#core.u8.copyWithin(pending, this.#bufPtr, this.#bufPtr + rest);
    this.#have = 0;
    let job: ChunkRead | null = null;
    let next: ChunkRead | null = null;
    let ended = false;
    try {
      job = this.#startRead(reader, at[k]!, size);
      while (true) {
        if (job === null) {
          ended = true; // the reader's end
          break;
        }
        const view = job.view;
        const detached = (): boolean => view !== null && view.byteLength === 0;
        let n = await job.got.catch((err) => {
          if (detached()) return 0; // a late write into the detached view failed
          throw err;
        });
        if (detached()) {
          // The memory grew while the read ran: read it again into the memory as it is now.
          n = await reader.file.read(this.#core.u8.subarray(job.ptr, job.ptr + job.len), job.pos);
        }
        if (n === 0) {
          ended = true; // the file's end
          break;
        }
        reader.position = job.pos + n;
        // Only after a whole chunk: a short one ends the file as that read saw it.
        if (n === job.len) next = this.#startRead(reader, at[1 - k]!, size);
        this.#bytes += n;
        const total = rest + n;
        const off = this.#scan(pending, total);
        const consumed = off < 0 ? ~off : off;
        pending += consumed;
        rest = total - consumed;
        if (off < 0) throw this.#outOfMemory();
        // A line longer than the room, or a short read: the plain loop goes on from here.
        if (rest > room || n < job.len) break;
        if (next === null) {
          ended = true; // the reader's end: nothing was read ahead, the pending bytes stay where they are
          break;
        }
        k = 1 - k;
        this.#core.u8.copyWithin(at[k]! - rest, pending, pending + rest);
        pending = at[k]! - rest;
        job = next;
        next = null;
      }
    } finally {
      // No read may still write into the buffer when the pending bytes move to its start (also
      // after a failed read or scan).
      for (const j of [job, next]) if (j !== null) await j.got.catch(() => 0);
      this.#keep(pending, rest);
    }
    if (next !== null) reader.position = next.pos; // read ahead but not scanned: read it again
    return ended;
  }

  /**
   * Starts reading the next chunk of `reader` into Wasm memory at `ptr`; null at its end. A
   * throw from the reader's hook or the file's `read` comes back through `got`, after the
   * chunk before it is scanned, so what the replay applied and `reader.position` agree.
   */
  #startRead(reader: PositionalReader, ptr: number, chunk: number): ChunkRead | null {
    const pos = reader.position;
    let len = 0;
    let view: Uint8Array | null = null;
    let got: Promise<number>;
    try {
      reader.beforeRead?.(pos);
      len = Math.min(chunk, reader.end - pos);
      if (len <= 0) return null;
      view = this.#core.u8.subarray(ptr, ptr + len);
      got = reader.file.read(view, pos);
    } catch (err) {
      view = null; // no read under way: its error is the outcome
      got = Promise.reject(err);
    }
    got.catch(() => {}); // awaited by the loop, or after a failure elsewhere (then ignored)
    return { pos, len, ptr, view, got };
  }

  /** Makes `[ptr, ptr + n)` of Wasm memory (which may overlap the buffer) the pending bytes. */
  #keep(ptr: number, n: number): void {
    // The read-ahead keeps at most half a chunk, and the buffer is at least a chunk.
    if (n > this.#bufCap) {
      throw new RangeError(`Cannot keep ${n} pending bytes in a ${this.#bufCap}-byte buffer`);
    }
    this.#core.u8.copyWithin(this.#bufPtr, ptr, ptr + n);
    this.#have = n;
  }

  /** A full buffer holds one incomplete line: double it (serf has no line length limit). */
  #grow(): void {
    const cap = this.#bufCap * 2;
    if (cap > 2 ** 31) {
      throw new RangeError(
        `Cannot replay snapshot line ${this.#lines + 1}: line longer than ${this.#bufCap} bytes`,
      );
    }
    const ptr = this.#core.alloc(cap);
    const u8 = this.#core.u8;
    u8.copyWithin(ptr, this.#bufPtr, this.#bufPtr + this.#have);
    this.#core.free(this.#bufPtr, this.#bufCap);
    this.#bufPtr = ptr;
    this.#bufCap = cap;
  }

  #collectWarnings(base: number, count: number): void {
    const view = this.#core.view;
    const u8 = this.#core.u8;
    const w = this.#x.gotext_warnings_ptr();
    // In file order until one does not fit (addWarnings merges a Worker's list by the same rule).
    for (let i = 0; i < count; i++) {
      const p = w + i * 16;
      const bytes = view.getUint32(p + 12, true);
      // A line of n bytes reads as at least n / 3 characters: too long, without building it.
      if (
        this.#warningsOmitted > 0 || this.#warnings.length >= this.#maxWarnings ||
        this.#warningChars + Math.ceil(bytes / 3) > WARNINGS_CHARS_MAX
      ) {
        this.#warningsOmitted += count - i;
        return;
      }
      const start = base + view.getUint32(p + 8, true);
      const reason = warningReason(view.getUint32(p + 4, true), u8.subarray(start, start + bytes));
      if (this.#warningChars + reason.length > WARNINGS_CHARS_MAX) {
        this.#warningsOmitted += count - i;
        return;
      }
      this.#warningChars += reason.length;
      this.#warnings.push({ line: view.getUint32(p, true), reason });
    }
  }
}

/** Serf's log wording for a skipped line (without serf's `[WARN] serf: ` prefix). */
export function warningReason(code: number, line: Uint8Array): string {
  switch (code) {
    case WARN_ADDRESS:
      return `Failed to parse address: ${decodeUtf8(line)}`;
    case WARN_UNRECOGNIZED:
      return `Unrecognized snapshot line: ${decodeUtf8(line)}`;
    case INFO_LEAVE_IGNORED:
      return "Ignoring previous leave in snapshot";
  }
  const kind = (code - WARN_CLOCK_SYNTAX) >> 1;
  const value = line.subarray(CLOCK_PREFIX_BYTES[kind as 0 | 1 | 2]);
  const err = code === WARN_CLOCK_RANGE + 2 * kind ? "value out of range" : "invalid syntax";
  return `Failed to convert ${CLOCK_WORDS[kind as 0 | 1 | 2]} time: strconv.ParseUint: parsing ${
    goQuote(value)
  }: ${err}`;
}

function checkOptions(
  options: GoTextReplayOptions,
): { rejoinAfterLeave: boolean; chunkSizeBytes: number; maxWarnings: number } {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot replay snapshot: options must be an object, got ${typeof options}`);
  }
  const rejoinAfterLeave = options.rejoinAfterLeave === undefined ? false : options.rejoinAfterLeave;
  if (typeof rejoinAfterLeave !== "boolean") {
    throw new TypeError(
      `Cannot replay snapshot: rejoinAfterLeave must be a boolean, got ${typeof rejoinAfterLeave}`,
    );
  }
  const chunkSizeBytes = options.chunkSizeBytes === undefined ? CHUNK_BYTES_DEFAULT : options.chunkSizeBytes;
  if (typeof chunkSizeBytes !== "number" || !Number.isInteger(chunkSizeBytes)) {
    throw new TypeError(`Cannot replay snapshot: chunkSizeBytes must be an integer, got ${chunkSizeBytes}`);
  }
  if (chunkSizeBytes < CHUNK_BYTES_MIN || chunkSizeBytes > CHUNK_BYTES_MAX) {
    throw new RangeError(
      `Cannot replay snapshot: chunkSizeBytes must be in ${CHUNK_BYTES_MIN}..${CHUNK_BYTES_MAX}, got ${chunkSizeBytes}`,
    );
  }
  const maxWarnings = checkMaxWarnings("replay snapshot", options.maxWarnings);
  return { rejoinAfterLeave, chunkSizeBytes, maxWarnings };
}

/**
 * A Deno-style reader over `[position, end)` of a file handle, for {@link GoTextReplayer.readAll}.
 * Both bounds may move between reads (a parallel replay reads up to a split point, then on).
 */
export class PositionalReader {
  /** The file (GoTextReplayer.readAll reads it ahead straight into Wasm memory). */
  readonly file: FileHandle;
  /** File offset of the next read. */
  position: number;
  /** Reads stop here. */
  end: number;
  /** Called before each read with `position` (it may move `end`). */
  beforeRead: ((position: number) => void) | null = null;

  constructor(file: FileHandle, position = 0, end = Infinity) {
    this.file = file;
    this.position = position;
    this.end = end;
  }

  /** Reads into `p` from `position` (at most up to `end`); null at the end. */
  async read(p: Uint8Array): Promise<number | null> {
    this.beforeRead?.(this.position);
    const max = Math.min(p.length, this.end - this.position);
    if (max <= 0) return null;
    const n = await this.file.read(p.subarray(0, max), this.position);
    if (n === 0) return null;
    this.position += n;
    return n;
  }
}

/**
 * Offset of the first `\n` at or after `from` in the first `size` bytes of `file`, or -1.
 * Reads 64 KiB at a time.
 */
export async function nextNewline(file: FileHandle, from: number, size: number): Promise<number> {
  const piece = new Uint8Array(64 << 10);
  for (let at = from; at < size;) {
    const n = await file.read(piece.subarray(0, Math.min(piece.length, size - at)), at);
    if (n === 0) break;
    const k = piece.subarray(0, n).indexOf(0x0a);
    if (k >= 0) return at + k;
    at += n;
  }
  return -1;
}

/**
 * Replays a snapshot file in serf's Go text format by serf's own rules (serf v0.9
 * `Snapshotter.replay`): the alive set (last `alive:` wins, `not-alive:` deletes), the last
 * member, event and query clocks written (no max: the last line wins), and `leave` clearing
 * both unless `rejoinAfterLeave`. Lines serf skips come back as warnings in serf's wording;
 * a last line without `\n` is dropped (`tornTailBytes`), as serf does.
 *
 * Memory stays bounded by the alive set plus the longest line, whatever the file size.
 *
 * @example Replay a serf snapshot file
 * ```ts
 * import { replayGoText } from "./gotext.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "alive: node-a 10.0.0.1:7946\nclock: 3\nalive: node-b 10.0.0.2:7946\n");
 * const state = await replayGoText(path);
 * assert.equal(state.aliveNodes.length, 2);
 * assert.equal(state.lastClock, 3n);
 * await Deno.remove(path);
 * ```
 *
 * @param path The snapshot file.
 * @param options Leave mode and read buffer size.
 * @returns The replayed state, format `go-text`.
 * @throws {Deno.errors.NotFound} If the file does not exist (and other open or read errors).
 * @throws {TypeError} If an option has the wrong type.
 * @throws {RangeError} If `chunkSizeBytes` is out of range or Wasm memory cannot grow.
 */
export async function replayGoText(
  path: string | URL,
  options: GoTextReplayOptions = {},
): Promise<SnapshotState> {
  const replayer = new GoTextReplayer(options);
  using file = await Deno.open(path, { read: true });
  await replayer.readAll(file);
  return replayer.finish();
}

/**
 * Writes one record in serf's text snapshot format, exactly as serf's Snapshotter does
 * (`alive: NAME ADDR\n`, `not-alive: NAME\n`, `clock: N\n`, `event-clock: N\n`,
 * `query-clock: N\n`, `leave\n`), plus `coordinate: ...` and `# ...` lines that serf skips.
 *
 * Serf writes names verbatim, so a name holding `\n` would inject lines (`x\nleave` wipes
 * the state on replay); this writer refuses what would not replay as written.
 *
 * @example Format records
 * ```ts
 * import { formatGoTextRecord } from "./gotext.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatGoTextRecord({ type: "alive", name: "node-a", addr: "10.0.0.1:7946" }), "alive: node-a 10.0.0.1:7946\n");
 * assert.equal(formatGoTextRecord({ type: "clock", value: 42n }), "clock: 42\n");
 * ```
 *
 * @param record The record to write.
 * @returns The line, ending in `\n`.
 * @throws {TypeError} If the record has the wrong shape or a field the wrong type.
 * @throws {RangeError} If a name or address would not replay as written (empty name, `\n` or
 *   `\r`, a space in the address, a lone surrogate) or a clock is outside 0..2^64-1.
 */
export function formatGoTextRecord(record: GoTextRecord): string {
  if (typeof record !== "object" || record === null) {
    throw new TypeError(`Cannot write record: record must be an object, got ${typeof record}`);
  }
  switch (record.type) {
    case "alive":
      checkText("alive", "name", record.name, false);
      checkText("alive", "address", record.addr, true);
      if (record.addr.includes(" ")) {
        // Replay splits at the last space: the address would lose its head to the name.
        throw new RangeError(
          `Cannot write alive record: address contains " ": ${JSON.stringify(record.addr)}`,
        );
      }
      return `alive: ${record.name} ${record.addr}\n`;
    case "not-alive":
      checkText("not-alive", "name", record.name, false);
      return `not-alive: ${record.name}\n`;
    case "clock":
    case "event-clock":
    case "query-clock":
      checkClock(record.type, record.value);
      return `${record.type}: ${record.value}\n`;
    case "leave":
      return "leave\n";
    case "coordinate":
      checkText("coordinate", "text", record.text, true);
      return `coordinate: ${record.text}\n`;
    case "comment":
      checkText("comment", "text", record.text, true);
      return `# ${record.text}\n`;
    default:
      throw new TypeError(
        `Cannot write record: unknown type ${JSON.stringify((record as { type: unknown }).type)}`,
      );
  }
}

/**
 * Encodes one record as UTF-8 bytes in serf's text format (see {@link formatGoTextRecord}).
 *
 * @example Encode into a reused buffer
 * ```ts
 * import { encodeGoTextRecord } from "./gotext.ts";
 * import assert from "node:assert/strict";
 *
 * const buf = new Uint8Array(64);
 * const line = encodeGoTextRecord({ type: "leave" }, buf);
 * assert.equal(line.buffer, buf.buffer);
 * assert.equal(new TextDecoder().decode(line), "leave\n");
 * ```
 *
 * @param record The record to write.
 * @param out A buffer to encode into; when the line does not fit, a new array is returned.
 * @returns The encoded line: a view of `out` from its start, or a new array.
 * @throws {TypeError} If the record has the wrong shape or a field the wrong type.
 * @throws {RangeError} As {@link formatGoTextRecord}.
 */
export function encodeGoTextRecord(record: GoTextRecord, out?: Uint8Array): Uint8Array {
  const text = formatGoTextRecord(record);
  if (out !== undefined) {
    if (!(out instanceof Uint8Array)) {
      throw new TypeError(`Cannot write record: out must be a Uint8Array`);
    }
    // UTF-8 never needs more than 3 bytes per UTF-16 unit.
    if (text.length * 3 <= out.length) {
      const { written } = encoder.encodeInto(text, out);
      return out.subarray(0, written);
    }
    const bytes = encoder.encode(text);
    if (bytes.length <= out.length) {
      out.set(bytes);
      return out.subarray(0, bytes.length);
    }
    return bytes;
  }
  return encoder.encode(text);
}

function checkText(type: string, field: string, value: unknown, emptyOk: boolean): void {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot write ${type} record: ${field} must be a string, got ${typeof value}`);
  }
  if (!emptyOk && value.length === 0) {
    throw new RangeError(`Cannot write ${type} record: ${field} is empty`);
  }
  if (value.includes("\n")) {
    throw new RangeError(`Cannot write ${type} record: ${field} contains "\\n"`);
  }
  if (value.includes("\r")) {
    throw new RangeError(`Cannot write ${type} record: ${field} contains "\\r"`);
  }
  if (!value.isWellFormed()) {
    throw new RangeError(`Cannot write ${type} record: ${field} contains a lone surrogate`);
  }
}

function checkClock(type: string, value: unknown): void {
  if (typeof value !== "bigint") {
    throw new TypeError(`Cannot write ${type} record: value must be a bigint, got ${typeof value}`);
  }
  if (!isUint64(value)) {
    throw new RangeError(`Cannot write ${type} record: value must be in 0..2^64-1, got ${value}`);
  }
}
