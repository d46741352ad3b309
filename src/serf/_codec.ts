// The two on-disk formats of a serf snapshot behind one interface, so the Snapshotter's
// buffering, flushing, fsync, compaction and recovery are written once.
//
// Both keep the live state in Wasm (src/serf/_state.ts): staged records are applied to it
// in batches (binary: when frames are sealed; go-text: as complete lines are pushed), so
// `aliveNodes()` and the compacted file come from the same table that replay builds.
import { WasmCore } from "../_wasm/core.ts";
import { encodeFileHeader, FileKind, FrameEncoder } from "../core/frame.ts";
import { encodeBinaryRecord, SERF_FRAME_SIZE_MAX, SERF_LIMITS, type SerfBinaryExports } from "./binary.ts";
import { formatGoTextRecord, type GoTextReplayer } from "./gotext.ts";
import { SerfState } from "./_state.ts";
import type { SnapshotRecord } from "./records.ts";

/** The file formats a snapshot can be in. */
export type SnapshotFormat = "binary" | "go-text";

/** A format's staging buffer and live state. */
export interface Codec {
  readonly format: SnapshotFormat;
  readonly state: SerfState;
  /** Bytes staged and not yet written to the file. */
  readonly staged: number;
  /** Validates and stages `record`. Returns false, staging nothing, when the buffer is full. */
  encode(record: SnapshotRecord): boolean;
  /** Grows the staging buffer to at least `bytes`. */
  grow(bytes: number): void;
  /** Applies every staged record not yet applied to the state. */
  apply(): void;
  /** A copy of the staged bytes (applied and sealed first). */
  take(): Uint8Array;
  /** Drops the first `n` staged bytes: they reached the file. */
  consume(n: number): void;
  /** The bytes a new, empty file starts with. */
  header(): Uint8Array;
  /** The whole compacted file for the current state (applies staged records first). */
  compacted(): Uint8Array;
}

/** Staging starts at 1 MiB and doubles on demand up to the log's buffer limit. */
const STAGING_BYTES = 1 << 20;

/** The binary format: frames staged in Wasm memory, sealed and applied by Wasm. */
export class BinaryCodec implements Codec {
  readonly format = "binary" as const;
  readonly state: SerfState;
  readonly #core: WasmCore;
  readonly #enc: FrameEncoder;
  readonly #x: SerfBinaryExports;
  #applied = 0;

  constructor(core: WasmCore, state: SerfState) {
    this.#core = core;
    this.state = state;
    this.#enc = new FrameEncoder(core, SERF_LIMITS, STAGING_BYTES);
    this.#x = core.exports as unknown as SerfBinaryExports;
  }
  /** The Wasm instance holding the state and the staging buffer. */
  get core(): WasmCore {
    return this.#core;
  }
  get staged(): number {
    return this.#enc.length;
  }
  encode(record: SnapshotRecord): boolean {
    return encodeBinaryRecord(this.#core, this.#enc, record);
  }
  grow(bytes: number): void {
    this.#enc.grow(bytes);
  }
  apply(): void {
    const len = this.#enc.length;
    if (this.#applied === len) return;
    this.#enc.seal();
    const status = this.#x.serf_apply_frames(this.#enc.pointer + this.#applied, len - this.#applied);
    // Frames we just encoded cannot be malformed; running out of Wasm memory can happen.
    if (status !== 0) throw new RangeError(`Cannot apply records: the alive set does not fit in Wasm memory`);
    this.#applied = len;
  }
  take(): Uint8Array {
    this.apply();
    return this.#enc.bytes().slice();
  }
  consume(n: number): void {
    this.#enc.consume(n);
    this.#applied = Math.max(0, this.#applied - n);
  }
  header(): Uint8Array {
    return encodeFileHeader(FileKind.serfSnapshot);
  }
  compacted(): Uint8Array {
    this.apply();
    // Per alive node at most 2 (name length) + 12 (frame header) + 7 (padding) bytes besides
    // the name and address; then three 24-byte clock frames.
    const hint = this.state.liveBytes + this.state.count * 21 + 3 * 24;
    return drainCompacted(this.#core, this.header(), false, hint);
  }
}

const textEncoder = new TextEncoder();

/** Serf's Go text format: lines staged in JS, applied by pushing them through the Wasm line scan. */
export class GoTextCodec implements Codec {
  readonly format = "go-text" as const;
  readonly #replayer: GoTextReplayer;
  #buf: Uint8Array;
  #len = 0;
  #applied = 0;

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
    if (this.#applied === this.#len) return;
    this.#replayer.push(this.#buf.subarray(this.#applied, this.#len));
    this.#applied = this.#len;
  }
  take(): Uint8Array {
    this.apply();
    return this.#buf.slice(0, this.#len);
  }
  consume(n: number): void {
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
    this.#applied = Math.max(0, this.#applied - n);
  }
  header(): Uint8Array {
    return new Uint8Array(0);
  }
  compacted(): Uint8Array {
    this.apply();
    // Serf's compaction order: alive lines, then clock, event-clock, query-clock (zeros too),
    // written by Wasm straight from the state (assembly/gotext_write.ts).
    const core = this.state.core;
    // "alive: " + " " + "\n" per node, then three clock lines of at most 34 bytes.
    const hint = this.state.liveBytes + this.state.count * 9 + 3 * 34;
    return drainCompacted(core, new Uint8Array(0), true, hint);
  }
}

/** The exports of assembly/compact.ts. */
interface CompactExports {
  compact_begin(): void;
  compact_next(out: number, cap: number, text: number): number;
}

/**
 * Runs the Wasm compaction writer (assembly/compact.ts: frames, or serf's text lines when
 * `text`) through a chunk buffer and returns `header` followed by everything it wrote. Memory is one compacted
 * image, which is proportional to the alive set.
 */
function drainCompacted(
  core: WasmCore,
  header: Uint8Array,
  text: boolean,
  sizeHint: number,
): Uint8Array {
  const chunkCap = Math.max(1 << 20, 2 * SERF_FRAME_SIZE_MAX);
  // Sized from the state up front, so the image is never copied to grow (it still can grow
  // if the hint is short), and reused across compactions of the same log so a big alive set
  // does not churn the garbage collector with a new multi-megabyte array every time.
  const kept = reusable.get(core);
  let out: Uint8Array = kept !== undefined && kept.length >= header.length + sizeHint
    ? kept
    : new Uint8Array(Math.max(1 << 16, header.length + sizeHint));
  out.set(header);
  let len = header.length;
  const chunk = core.alloc(chunkCap);
  try {
    const x = core.exports as unknown as CompactExports;
    x.compact_begin();
    // Each call writes at least one record until done, so the loop ends.
    while (true) {
      const n = x.compact_next(chunk, chunkCap, text ? 1 : 0);
      if (n === 0) break;
      if (len + n > out.length) {
        const bigger: Uint8Array = new Uint8Array(Math.max(out.length * 2, len + n));
        bigger.set(out.subarray(0, len));
        out = bigger;
      }
      out.set(core.u8.subarray(chunk, chunk + n), len);
      len += n;
    }
  } finally {
    core.free(chunk, chunkCap);
  }
  reusable.set(core, out);
  return out.subarray(0, len);
}

/** The image buffer of each log's last compaction (see drainCompacted). */
const reusable = new WeakMap<WasmCore, Uint8Array>();

/** A binary codec with a fresh state in its own Wasm instance. */
export function newBinaryCodec(rejoinAfterLeave: boolean): BinaryCodec {
  const core = new WasmCore();
  const state = new SerfState(core);
  state.reset(rejoinAfterLeave);
  return new BinaryCodec(core, state);
}
