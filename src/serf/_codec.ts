// The two on-disk formats of a serf snapshot behind one interface, so the Snapshotter's
// buffering, flushing, fsync, compaction and recovery are written once.
//
// Both keep the live state in Wasm (src/serf/_state.ts): staged records are applied to it
// in batches (binary: when frames are sealed; go-text: as complete lines are pushed), so
// `aliveNodes()` and the compacted file come from the same table that replay builds.
import { WasmCore, WasmMemoryError } from "../_wasm/core.ts";
import { encodeFileHeader, FileKind, FrameEncoder, frameSize, newSalt } from "../core/frame.ts";
import {
  APPLY_NO_MEMORY,
  encodeBinaryRecord,
  SEAL_APPLY_FAILED,
  SERF_FRAME_SIZE_MAX,
  SERF_LIMITS,
  SERF_RECORD_SIZE_MAX,
  type SerfBinaryExports,
} from "./binary.ts";
import { formatGoTextRecord, type GoTextReplayer } from "./gotext.ts";
import { CLOCK_EVENT, CLOCK_MEMBER, CLOCK_QUERY, SerfState } from "./_state.ts";
import type { SnapshotRecord } from "./records.ts";

/** The file formats a snapshot can be in. */
export type SnapshotFormat = "binary" | "go-text";

/** A format's staging buffer and live state. */
export interface Codec {
  readonly format: SnapshotFormat;
  readonly state: SerfState;
  /** Bytes staged and not yet written to the file. */
  readonly staged: number;
  /** Bytes the staging buffer holds before it must grow. */
  readonly capacity: number;
  /** Bytes of memory held: the Wasm instance's memory and the staging and write buffers. */
  readonly memoryBytes: number;
  /** Validates and stages `record`. Returns false, staging nothing, when the buffer is full. */
  encode(record: SnapshotRecord): boolean;
  /**
   * Drops what was staged after the buffer held `staged` bytes (a value of `staged` read
   * earlier, with nothing applied, taken or consumed since): an event staged in part.
   */
  rollback(staged: number): void;
  /** Grows the staging buffer to at least `bytes`. */
  grow(bytes: number): void;
  /** Bytes `record` takes staged (for the error path: it encodes the record on the side). */
  sizeOf(record: SnapshotRecord): number;
  /** Applies every staged record not yet applied to the state. */
  apply(): void;
  /**
   * Makes the staged records from byte `from` (where one starts) ready to write: seals and
   * applies them up to the last record boundary at or before `limit`, or to the end of the
   * first record if it is longer, and returns that boundary. Work in bounded steps: a burst of
   * many MiB is written in pieces, each a short pause of the caller's thread.
   */
  prepare(from: number, limit: number): number;
  /**
   * Staged bytes `[from, to)`, prepared, for one write: valid until the next `bytesAt`,
   * `consume` or `grow` (the log's writes are one at a time, so each is done by then).
   */
  bytesAt(from: number, to: number): Uint8Array;
  /** Drops the first `n` staged bytes: they reached the file. */
  consume(n: number): void;
  /** The bytes a new, empty file starts with. */
  header(): Uint8Array;
  /**
   * Called after each write of `written` bytes (0 after a compaction): gives back memory a
   * burst took once the writes have been small for a while ({@link trimPolicy}); cheap
   * otherwise. A `Uint8Array` is garbage collected, but a Wasm memory never shrinks, so the
   * binary codec moves its state and staged frames to a fresh instance.
   */
  trim(written: number): void;
  /**
   * Writes the compacted file for the current state (applies staged records first) as a
   * series of chunks, passed to `emit` in file order, synchronously: the state cannot change
   * between two chunks. Each chunk is a copy out of Wasm memory into a buffer the codec
   * reuses: valid until the next `compactInto` (the caller's writes of one compaction are
   * settled before it starts the next). Returns the total size.
   */
  compactInto(emit: (chunk: Uint8Array) => void): number;
  /**
   * The file the last {@link compactInto} wrote is the log's file now (renamed into place):
   * what is staged from here on goes to it. The binary format's compacted file has a salt of
   * its own, which frames staged since (and after the image) are sealed under again.
   */
  compacted(): void;
}

/**
 * Tests only: while set, every apply of staged records (`outOfMemory`), or every growth of the
 * binary staging buffer (`growOutOfMemory`), fails as it does once Wasm memory cannot grow
 * (filling 2 GiB in a test would take seconds and gigabytes).
 */
export const applyFaults: { outOfMemory: boolean; growOutOfMemory: boolean } = {
  outOfMemory: false,
  growOutOfMemory: false,
};

/** Staging starts at 1 MiB and doubles on demand up to the log's buffer limit. */
const STAGING_BYTES = 1 << 20;
/**
 * When {@link Codec.trim} gives memory back: only after `quietWrites` writes in a row that fit
 * the default staging buffer (a log that writes large batches keeps the buffers they need,
 * rather than growing them again every time), and then not while the Wasm memory is at most
 * `floorBytes`, nor while it (or a buffer) is at most `slack` times what the state and the
 * staged bytes need. Tests set all three to 0 to move the state on every write.
 */
export const trimPolicy: { quietWrites: number; floorBytes: number; slack: number } = {
  quietWrites: 8,
  floorBytes: 16 << 20,
  slack: 4,
};

/** Counts writes in a row that fit the default staging buffer (see {@link trimPolicy}). */
class QuietWrites {
  #n = 0;
  /** Records a write of `bytes`; true once enough writes in a row were small. */
  after(bytes: number): boolean {
    this.#n = bytes > STAGING_BYTES ? 0 : this.#n + 1;
    return this.#n >= trimPolicy.quietWrites;
  }
  /** Starts the count again. */
  reset(): void {
    this.#n = 0;
  }
}

/** The binary format: frames staged in Wasm memory, sealed and applied by Wasm. */
export class BinaryCodec implements Codec {
  readonly format = "binary" as const;
  #state: SerfState;
  #core: WasmCore;
  #enc: FrameEncoder;
  #x: SerfBinaryExports;
  #applied = 0;
  /** take()'s buffer, reused: a fresh copy per write was megabytes of garbage per flush. */
  #out = new Uint8Array(0);
  readonly #image = new ImageBuffer();
  readonly #quiet = new QuietWrites();
  /** The salt of the file the last compactInto wrote (not the log's file until compacted()). */
  #imageSalt = 0;

  /** `salt`: the file's, which staged frames are sealed under (a fresh one for a new file). */
  constructor(core: WasmCore, state: SerfState, salt: number = newSalt()) {
    this.#core = core;
    this.#state = state;
    this.#enc = new FrameEncoder(core, SERF_LIMITS, STAGING_BYTES);
    this.#enc.useSalt(salt);
    this.#x = core.exports as unknown as SerfBinaryExports;
  }
  /** The salt of the file the log writes: its frames are sealed under it. */
  get salt(): number {
    return this.#enc.salt;
  }
  /**
   * Seals staged frames under `salt` from now on: the salt of the file the log opened
   * (replay found it in its header; 0 for a version 1 file).
   */
  useSalt(salt: number): void {
    this.#enc.useSalt(salt);
  }
  /** The state: its Wasm instance changes when {@link trim} moves it to a fresh one. */
  get state(): SerfState {
    return this.#state;
  }
  /** The Wasm instance holding the state and the staging buffer (see {@link state}). */
  get core(): WasmCore {
    return this.#core;
  }
  get staged(): number {
    return this.#enc.length;
  }
  get capacity(): number {
    return this.#enc.capacity;
  }
  get memoryBytes(): number {
    return this.#core.u8.byteLength + this.#out.length;
  }
  encode(record: SnapshotRecord): boolean {
    return encodeBinaryRecord(this.#core, this.#enc, record);
  }
  rollback(staged: number): void {
    this.#enc.truncate(staged);
  }
  sizeOf(_record: SnapshotRecord): number {
    return SERF_FRAME_SIZE_MAX; // an upper bound: no frame is larger
  }
  grow(bytes: number): void {
    if (applyFaults.growOutOfMemory) {
      throw new WasmMemoryError(
        `Cannot allocate ${bytes} bytes of Wasm memory: the memory cannot grow further`,
      );
    }
    this.#enc.grow(bytes);
  }
  apply(): void {
    this.#applyTo(this.#enc.length);
  }
  prepare(from: number, limit: number): number {
    // Frame lengths are in the headers `reserve` wrote (sealed or not); walk them to the last
    // boundary at or before `limit`, taking at least one frame.
    const len = this.#enc.length;
    if (limit >= len) {
      this.#applyTo(len);
      return len;
    }
    const view = this.#core.view;
    const ptr = this.#enc.pointer;
    let end = from + frameSize(view.getUint32(ptr + from + 4, true));
    while (end < len) {
      const next = end + frameSize(view.getUint32(ptr + end + 4, true));
      if (next > limit) break;
      end = next;
    }
    this.#applyTo(end);
    return end;
  }
  #applyTo(len: number): void {
    const enc = this.#enc;
    const from = this.#applied;
    if (from >= len) return;
    // Staged frames are sealed when they are applied, never before (`consume` keeps both
    // offsets in step), so one Wasm pass does both while each frame is in cache (5-10 % less
    // than sealing the batch and then walking it again to apply it).
    if (enc.sealedLength !== from) {
      throw new Error(`Cannot apply records: ${enc.sealedLength} bytes sealed, ${from} applied`);
    }
    if (applyFaults.outOfMemory) {
      throw new WasmMemoryError(`Cannot apply records: the alive set does not fit in Wasm memory`);
    }
    const status = this.#x.serf_seal_apply(enc.pointer + from, len - from, SERF_RECORD_SIZE_MAX, enc.salt);
    const done = from + this.#x.serf_apply_offset();
    enc.markSealed(done);
    this.#applied = done;
    if (status === SEAL_APPLY_FAILED + APPLY_NO_MEMORY) {
      throw new WasmMemoryError(`Cannot apply records: the alive set does not fit in Wasm memory`);
    }
    // Frames this process encoded cannot be malformed.
    if (status !== 0) {
      throw new Error(`Cannot apply records: staged frames are inconsistent (status ${status})`);
    }
  }
  bytesAt(from: number, to: number): Uint8Array {
    if (to > this.#applied) throw new Error(`Cannot write staged bytes ${from}..${to}: not prepared`);
    // Copied out of Wasm memory: the staged block may move (grow) or be reused while the
    // write is in flight.
    const ptr = this.#enc.pointer;
    const bytes = this.#core.u8.subarray(ptr + from, ptr + to);
    if (this.#out.length < bytes.length) {
      this.#out = new Uint8Array(Math.max(bytes.length, 2 * this.#out.length));
    }
    this.#out.set(bytes);
    return this.#out.subarray(0, bytes.length);
  }
  consume(n: number): void {
    this.#enc.consume(n);
    this.#applied = Math.max(0, this.#applied - n);
  }
  header(): Uint8Array {
    return encodeFileHeader(FileKind.serfSnapshot, this.#enc.salt);
  }
  compactInto(emit: (chunk: Uint8Array) => void): number {
    this.apply();
    // A new file, a new salt (a version 1 file becomes version 2 here).
    const salt = newSalt();
    const header = encodeFileHeader(FileKind.serfSnapshot, salt);
    const size = drainCompacted(this.#core, header, salt, this.#image, emit);
    this.#imageSalt = salt;
    return size;
  }
  compacted(): void {
    this.#enc.useSalt(this.#imageSalt);
  }
  trim(written: number): void {
    if (!this.#quiet.after(written)) return;
    const staged = this.#enc.length;
    // take()'s copy buffer: a burst's 64 MiB write must not be kept for 1 MiB flushes.
    if (this.#out.length > trimPolicy.slack * Math.max(staged, STAGING_BYTES)) this.#out = new Uint8Array(0);
    const memory = this.#core.u8.byteLength;
    if (memory <= trimPolicy.floorBytes) return;
    // What a fresh instance needs: the table, the out-of-line names and an export of the
    // alive set (at most twice the live bytes, and 12 bytes a node), staging, a compaction chunk.
    const s = this.#state;
    const need = s.tableBytes + 2 * s.liveBytes + 12 * s.count + Math.max(staged, STAGING_BYTES) +
      COMPACT_CHUNK_BYTES;
    if (memory <= trimPolicy.slack * need) return;
    try {
      this.#moveToFreshInstance();
    } catch {
      // No memory for a fresh instance (or the records staged meanwhile do not fit the
      // state, which their next apply will report): keep this one, and try again only after
      // another run of small writes. Giving memory back must never fail the write it follows.
      this.#quiet.reset();
    }
  }

  /**
   * Moves the state and the staged frames into a fresh Wasm instance and drops this one,
   * whose memory a burst grew (a flush that fell behind, a big cluster's table): the alive
   * set's table is copied across as it is (see assembly/serf_state.ts, state_adopt). The old
   * memory goes with the old instance at the next garbage collection. On any failure the
   * codec keeps its instance.
   */
  #moveToFreshInstance(): void {
    this.apply();
    const core = new WasmCore();
    const state = new SerfState(core);
    state.reset(this.#state.rejoinAfterLeave);
    state.adopt(this.#state);
    const c = this.#state.clocks;
    state.clock(CLOCK_MEMBER, c.lastClock);
    state.clock(CLOCK_EVENT, c.lastEventClock);
    state.clock(CLOCK_QUERY, c.lastQueryClock);
    const frames = this.#enc.bytes();
    const enc = new FrameEncoder(core, SERF_LIMITS, Math.max(STAGING_BYTES, frames.length));
    enc.useSalt(this.#enc.salt);
    enc.appendSealed(frames);
    this.#core = core;
    this.#state = state;
    this.#enc = enc;
    this.#x = core.exports as unknown as SerfBinaryExports;
    this.#applied = enc.length;
  }
}

const textEncoder = new TextEncoder();
const NEWLINE = 0x0a;

/** Serf's Go text format: lines staged in JS, applied by pushing them through the Wasm line scan. */
export class GoTextCodec implements Codec {
  readonly format = "go-text" as const;
  readonly #replayer: GoTextReplayer;
  #buf: Uint8Array;
  #len = 0;
  #applied = 0;
  readonly #image = new ImageBuffer();
  readonly #quiet = new QuietWrites();

  constructor(replayer: GoTextReplayer) {
    this.#replayer = replayer;
    this.#buf = new Uint8Array(STAGING_BYTES);
  }
  get state(): SerfState {
    return this.#replayer.state;
  }
  get staged(): number {
    return this.#len;
  }
  get capacity(): number {
    return this.#buf.length;
  }
  get memoryBytes(): number {
    return this.state.core.u8.byteLength + this.#buf.length;
  }
  sizeOf(record: SnapshotRecord): number {
    return textEncoder.encode(formatGoTextRecord(record)).length;
  }
  rollback(staged: number): void {
    if (staged < this.#applied || staged > this.#len) {
      throw new RangeError(`Cannot roll the staged lines back to ${staged} bytes: already applied`);
    }
    this.#len = staged;
  }
  encode(record: SnapshotRecord): boolean {
    const line = formatGoTextRecord(record);
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    if (this.#len + line.length * 3 > this.#buf.length) {
      const bytes = textEncoder.encode(line);
      if (this.#len + bytes.length > this.#buf.length) return false;
      this.#buf.set(bytes, this.#len);
      this.#len += bytes.length;
      return true;
    }
    this.#len += textEncoder.encodeInto(line, this.#buf.subarray(this.#len)).written;
    return true;
  }
  grow(bytes: number): void {
    if (bytes <= this.#buf.length) return;
    let cap = this.#buf.length;
    while (cap < bytes) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  apply(): void {
    this.#applyTo(this.#len);
  }
  prepare(from: number, limit: number): number {
    // Every staged record is whole lines: end after the last newline before `limit`, or after
    // the first line if it is longer.
    const buf = this.#buf;
    let end = limit >= this.#len ? this.#len : buf.lastIndexOf(NEWLINE, limit - 1) + 1;
    if (end <= from) end = buf.indexOf(NEWLINE, from) + 1;
    if (end <= from || end > this.#len) end = this.#len;
    this.#applyTo(end);
    return end;
  }
  #applyTo(end: number): void {
    if (this.#applied >= end) return;
    this.#replayer.push(this.#buf.subarray(this.#applied, end));
    this.#applied = end;
  }
  bytesAt(from: number, to: number): Uint8Array {
    if (to > this.#applied) throw new Error(`Cannot write staged bytes ${from}..${to}: not prepared`);
    // No copy: appends go after #len, and a grow() moves them to a new buffer, leaving this
    // one as it is; consume() comes after the write.
    return this.#buf.subarray(from, to);
  }
  consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
    this.#applied = Math.max(0, this.#applied - n);
  }
  header(): Uint8Array {
    return new Uint8Array(0);
  }
  trim(written: number): void {
    if (!this.#quiet.after(written)) return;
    // The lines are staged in a JavaScript buffer: a smaller one lets the collector have the
    // burst's. (The state's Wasm instance holds no staged bytes: it grows with the table only.)
    if (this.#buf.length <= STAGING_BYTES || this.#buf.length <= trimPolicy.slack * this.#len) return;
    const next = new Uint8Array(Math.max(STAGING_BYTES, this.#len));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  compactInto(emit: (chunk: Uint8Array) => void): number {
    this.apply();
    // Serf's compaction order: alive lines, then clock, event-clock, query-clock (zeros too),
    // written by Wasm straight from the state (assembly/compact.ts).
    return drainCompacted(this.state.core, this.header(), null, this.#image, emit);
  }
  compacted(): void {}
}

/** The exports of assembly/compact.ts. */
interface CompactExports {
  compact_begin(): void;
  compact_next(out: number, cap: number, text: number, salt: number): number;
  compact_need(): number;
}

/** Bytes of each compacted chunk: small enough that writing one overlaps building the next. */
const COMPACT_CHUNK_BYTES = Math.max(512 << 10, 2 * SERF_FRAME_SIZE_MAX);

/**
 * Where compacted chunks are copied out of Wasm memory: one buffer for the whole image, kept
 * between compactions. A fresh ArrayBuffer per chunk cost 3.5-5 ms for a 4.6 MB image (100k
 * nodes: zeroed pages faulted in, then the copy) against 0.6-1 ms for the copy into this one.
 * It holds about one compacted file, as the alive set does, and shrinks when the image does.
 */
class ImageBuffer {
  #buf = new Uint8Array(0);
  #at = 0;
  /** Starts a new image (the previous image's chunks must no longer be in use). */
  begin(): void {
    this.#at = 0;
  }
  /** Copies `src` after the image's previous chunks; returns the copy. */
  push(src: Uint8Array): Uint8Array {
    if (this.#at + src.length > this.#buf.length) {
      // Earlier chunks stay in the old buffer, which their writes still reference.
      this.#buf = new Uint8Array(Math.max(2 * this.#buf.length, this.#at + src.length, COMPACT_CHUNK_BYTES));
      this.#at = 0;
    }
    const copy = this.#buf.subarray(this.#at, this.#at + src.length);
    copy.set(src);
    this.#at += src.length;
    return copy;
  }
  /** Ends the image: a buffer four times larger than it is given back. */
  end(total: number): void {
    if (this.#buf.length > 4 * Math.max(total, COMPACT_CHUNK_BYTES)) this.#buf = new Uint8Array(0);
  }
}

/**
 * Runs the Wasm compaction writer (assembly/compact.ts: frames under `salt`, or serf's text
 * lines when `salt` is null) chunk by chunk: `header` and then everything it writes, each chunk copied into
 * `image` and passed to `emit` before the next is built. Returns the total size.
 */
function drainCompacted(
  core: WasmCore,
  header: Uint8Array,
  salt: number | null,
  image: ImageBuffer,
  emit: (chunk: Uint8Array) => void,
): number {
  let cap = COMPACT_CHUNK_BYTES;
  let chunk = core.alloc(cap);
  let total = 0;
  image.begin();
  try {
    const x = core.exports as unknown as CompactExports;
    x.compact_begin();
    // The header leads the first chunk. Each call writes at least one record until done, or
    // asks for a larger chunk: a go-text line can be longer than this one (binary frames fit).
    let lead = header.length;
    core.u8.set(header, chunk);
    while (true) {
      const n = lead + x.compact_next(chunk + lead, cap - lead, salt === null ? 1 : 0, salt ?? 0);
      lead = 0;
      if (n === 0) {
        const need = x.compact_need();
        if (need === 0) break;
        core.free(chunk, cap);
        chunk = 0;
        chunk = core.alloc(need);
        cap = need;
        continue;
      }
      emit(image.push(core.u8.subarray(chunk, chunk + n)));
      total += n;
    }
  } finally {
    if (chunk !== 0) core.free(chunk, cap);
  }
  image.end(total);
  return total;
}

/** A binary codec with a fresh state in its own Wasm instance. */
export function newBinaryCodec(rejoinAfterLeave: boolean): BinaryCodec {
  const core = new WasmCore();
  const state = new SerfState(core);
  state.reset(rejoinAfterLeave);
  return new BinaryCodec(core, state);
}
