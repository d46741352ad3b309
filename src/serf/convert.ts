// Converting a serf snapshot between snaplog's binary format and serf's Go text format.
//
// The conversion replays the input (streaming, through the same Wasm replay paths as
// `replaySnapshot`) and writes the replayed state in the target format, the way compaction
// does: alive records, then the clocks. Memory follows the alive set, not the file, and the
// output replays to exactly the state the input replays to, because it is written from that
// state rather than translated line by line.
//
// Leave modes. A `leave` record means "clear everything" to a reader with
// rejoinAfterLeave=false and nothing to one with rejoinAfterLeave=true, so one input has two
// states. The input is replayed in both modes at once (one read of the file) and, when they
// differ, the output is
//
//   alive* clock event-clock query-clock   the rejoinAfterLeave=true state
//   leave
//   alive* [clock] [event-clock] [query-clock]   the rejoinAfterLeave=false state, non-zero clocks only
//
// which replays to the source's state in both modes: the false-mode state F is what the
// records after the last leave build from nothing, and the true-mode state T is what they
// build on top of the earlier state, so every node of F is in T with the same address, and a
// non-zero clock of F was written after the last leave and so equals T's. README "Converting
// snapshots".
//
// Crash safety: the output is written to `<out>.convert` (free under the writer lock convert
// holds), fdatasynced and closed, then renamed over `<out>`, and the directory is fsynced so
// the rename survives a crash. A failure at any step before the rename removes the temporary
// file and leaves `<out>` as it was; a failed directory fsync after it is reported with `<out>`
// already replaced (the rename may not survive a crash); a crash leaves `<out>.convert`, which
// the next convert to `<out>` overwrites and the next open of `<out>` removes. (Not `<out>.compact`: with `<out>` missing,
// open takes that for a compaction cut short between serf's remove and rename, and finishes it,
// which must never happen to a half-written conversion.)
import { WasmCore } from "../_wasm/core.ts";
import { encodeFileHeader, FrameEncoder, newSalt } from "../core/frame.ts";
import { denoFs } from "../fs/deno_fs.ts";
import { acquireWriterLock, canonicalPath, modeOf } from "../fs/lock.ts";
import { dirOf } from "../fs/_path.ts";
import { choiceOption, FORMAT_CHOICES, fsOption, knownOptionKeys, RECOVERY_MODES } from "../_options.ts";
import type { FileHandle, FileSystem } from "../fs/types.ts";
import {
  FileKind,
  RecordType,
  type RecoveryMode,
  replayBinaryFile,
  SERF_FRAME_SIZE_MAX,
  SERF_LIMITS,
} from "./binary.ts";
import { newBinaryCodec, type SnapshotFormat } from "./_codec.ts";
import { GoTextReplayer } from "./gotext.ts";
import { decodeUtf8, NAME_BYTES_MAX, typeName } from "./records.ts";
import type { SerfState } from "./_state.ts";
import { checkRegularFile, convertPath, missingSnapshot, resolveFormat } from "./snapshotter.ts";
import type { ReplayWarning } from "./types.ts";

/** How far a conversion has read its input, for {@link ConvertOptions.onProgress}. */
export interface ConvertProgress {
  /** Bytes of the input read so far. */
  bytesRead: number;
  /** The input's size when the conversion started (bytes appended later are not read). */
  bytesTotal: number;
}

/** Options of {@link convertSnapshot}. */
export interface ConvertOptions {
  /** The output format. */
  to: SnapshotFormat;
  /**
   * The input format; `"auto"` detects it (snaplog's binary header, else serf's text).
   * @default {"auto"}
   */
  from?: "auto" | SnapshotFormat;
  /**
   * The leave mode whose state the report describes (and whose warnings it lists). The
   * output replays to the input's state in both modes whatever this is.
   * @default {false}
   */
  rejoinAfterLeave?: boolean;
  /**
   * Called as the input is read: at least every 8 MiB, and once at the end with
   * `bytesRead === bytesTotal`.
   * @default {undefined}
   */
  onProgress?: (progress: ConvertProgress) => void;
  /**
   * Binary input only: `"truncate-tail"` leaves a torn tail out (reported) and throws on
   * damage before it; `"strict"` throws on any damage; `"salvage"` converts every good record
   * around damaged regions and lists them as warnings. The input is never modified.
   * @default {"truncate-tail"}
   */
  recovery?: RecoveryMode;
  /** The file system; every read and write goes through it. @default {denoFs} */
  fs?: FileSystem;
}

/** What {@link convertSnapshot} read and wrote. */
export interface ConvertReport {
  /** The input's format. */
  from: SnapshotFormat;
  /** The output's format. */
  to: SnapshotFormat;
  /** Records read (binary: frames; go-text: complete lines, skipped ones included). */
  records: number;
  /** Bytes of the input read. */
  bytesRead: number;
  /** Bytes of the output written. */
  bytesWritten: number;
  /** Alive nodes in the state (for the `rejoinAfterLeave` mode of the options). */
  aliveCount: number;
  /** The last member clock of that state. */
  lastClock: bigint;
  /** The last user-event clock of that state. */
  lastEventClock: bigint;
  /** The last query clock of that state. */
  lastQueryClock: bigint;
  /** Bytes after the input's last complete record (not converted: replay drops them too). */
  tornTailBytes: number;
  /**
   * What replay skipped in the input, in file order (go-text: serf's WARN wording): the first
   * 10,000, and in serf's text format no more than 1 Mi characters of `reason` in all.
   */
  warnings: ReplayWarning[];
  /** What replay skipped past those limits: counted, not listed. */
  warningsOmitted: number;
  /**
   * True when the input's `leave` changes its state (the two leave modes replay differently),
   * so the output holds both states around one `leave` record.
   */
  leaveRecorded: boolean;
}

/** Read size: large enough that per-call costs vanish, small enough to stay in cache. */
const READ_CHUNK_BYTES = 1 << 20;
/**
 * Progress is reported each time this much more has been read. Reads are at most about
 * 1 MiB (binary resync windows are two maximal frames, about 256 KiB), so the gap between
 * calls stays under the documented 8 MiB.
 */
const PROGRESS_STEP_BYTES = 4 << 20;
/** Output is written in pieces of this size: a bounded buffer, few system calls. */
const WRITE_CHUNK_BYTES = 1 << 20;
/**
 * Reads the two binary replays have not both taken yet. They read the same positions in
 * lockstep, so two would do; the bound only keeps a divergence (which costs a re-read, not
 * correctness) from growing the cache.
 */
const SHARED_READS_MAX = 8;

interface Resolved {
  to: SnapshotFormat;
  from: "auto" | SnapshotFormat;
  rejoinAfterLeave: boolean;
  onProgress: ((progress: ConvertProgress) => void) | null;
  recovery: RecoveryMode;
  fs: FileSystem;
}

/** Every key of {@link ConvertOptions}, for {@link knownOptionKeys}. */
const CONVERT_OPTION_KEYS = {
  to: true,
  from: true,
  rejoinAfterLeave: true,
  onProgress: true,
  recovery: true,
  fs: true,
} as const satisfies Record<keyof ConvertOptions, true>;

function checkOptions(options: ConvertOptions): Resolved {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot convert snapshot: options must be an object, got ${typeName(options)}`);
  }
  knownOptionKeys("convert snapshot", options, CONVERT_OPTION_KEYS);
  // Required, so undefined is refused here: choiceOption would take it for its default.
  if (options.to === undefined) {
    throw new TypeError(`Cannot convert snapshot: to must be "binary" or "go-text", got undefined`);
  }
  choiceOption("convert snapshot", "to", options.to, "binary", ["binary", "go-text"]); // throws if not one
  const from = choiceOption("convert snapshot", "from", options.from, "auto", FORMAT_CHOICES);
  const rejoinAfterLeave = options.rejoinAfterLeave === undefined ? false : options.rejoinAfterLeave;
  if (typeof rejoinAfterLeave !== "boolean") {
    throw new TypeError(`Cannot convert snapshot: rejoinAfterLeave must be a boolean`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    throw new TypeError(`Cannot convert snapshot: onProgress must be a function`);
  }
  const recovery = choiceOption(
    "convert snapshot",
    "recovery",
    options.recovery,
    "truncate-tail",
    RECOVERY_MODES,
  );
  return {
    to: options.to,
    from,
    rejoinAfterLeave,
    onProgress: options.onProgress ?? null,
    recovery,
    fs: fsOption("convert snapshot", options.fs),
  };
}

/**
 * Converts a serf snapshot between snaplog's binary format and serf's Go text format,
 * streaming: the input is replayed through the Wasm scan and the replayed state is written
 * in the target format (alive records, then the clocks, like a compaction), so memory
 * follows the alive set, not the file. The output replays to exactly the input's state (alive
 * set and the three clocks) in both leave modes: when a `leave` in the input changes the
 * state, the output keeps one `leave` record between the two states (see the module notes).
 * Skipped lines and a torn tail of the input are not converted, as replay drops them too; the
 * report lists them.
 *
 * The output is written atomically: to `<output>.convert`, fdatasynced, renamed over
 * `output`, and its directory fsynced. On a failure before the rename the temporary file is
 * removed and `output` is left as it was; if the directory fsync after the rename fails, the
 * error says so and `output` already holds the new file (a crash may still bring back the old
 * one). The output's writer lock (the one {@link Snapshotter.open}
 * takes) is held meanwhile, so a live log on `output` is never replaced under it; a symlink
 * `output` keeps pointing at the file, which is what is replaced.
 *
 * @example Convert serf's text snapshot to the binary format
 * ```ts
 * import { convertSnapshot } from "@snaplog/snaplog";
 * import { replaySnapshot } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/serf.snapshot`, "alive: a 10.0.0.1:7946\nclock: 3\n");
 * const report = await convertSnapshot(`${dir}/serf.snapshot`, `${dir}/serf.snap`, { to: "binary" });
 * assert.equal(report.from, "go-text");
 * assert.equal(report.aliveCount, 1);
 *
 * const state = await replaySnapshot(`${dir}/serf.snap`);
 * assert.equal(state.format, "binary");
 * assert.deepEqual(state.aliveNodes, [{ name: "a", addr: "10.0.0.1:7946" }]);
 * assert.equal(state.lastClock, 3n);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param input The snapshot to read; it is never modified.
 * @param output Where to write the converted snapshot; replaced if it exists.
 * @param options The target format (required), the source format, the leave mode the report
 *   describes, a progress callback, the recovery mode for a damaged binary input and the file
 *   system.
 * @returns What was read and written, and the replayed state's size and clocks.
 * @throws {Deno.errors.NotFound} If the input does not exist.
 * @throws {Error} If `output` names the input file (also through `..`, symlinks or hard links).
 * @throws {LockedError} If a live snapshotter (or another conversion) is writing `output`.
 * @throws {RangeError} If a node cannot be written in the target format: for go-text a name
 *   holding `\n` or an address holding `\n` or a space; for binary a name or address over
 *   65535 bytes.
 * @throws {CorruptionError} If a binary input is damaged before its tail (anywhere, with
 *   `recovery: "strict"`; never with `"salvage"`).
 * @throws {TypeError} For options of the wrong type or an unknown option, a `from` the input plainly is not
 * (Go text asked of a binary file, binary of a serf text file), or an input that is not a regular file (a
 * pipe, a directory).
 */
export async function convertSnapshot(
  input: string,
  output: string,
  options: ConvertOptions,
): Promise<ConvertReport> {
  if (typeof input !== "string" || input === "") {
    throw new TypeError(`Cannot convert snapshot: input must be a non-empty string, got ${typeName(input)}`);
  }
  if (typeof output !== "string" || output === "") {
    throw new TypeError(
      `Cannot convert snapshot: output must be a non-empty string, got ${typeName(output)}`,
    );
  }
  const o = checkOptions(options);
  const fs = o.fs;
  const info = await fs.stat(input);
  if (info === null) throw await missingSnapshot(fs, input, "convert");
  checkRegularFile(info, input, "convert");
  if (await sameFile(fs, input, output)) {
    throw new Error(`Cannot convert "${input}": the output "${output}" is the input file`);
  }
  // The output is written to <OUT>.convert first: an input of that name would be truncated by
  // it and removed with it on failure. And a directory cannot be replaced: say so before writing.
  const target = await canonicalPath(fs, output);
  const tmp = convertPath(target);
  if (await sameFile(fs, input, tmp)) {
    throw new Error(
      `Cannot convert "${input}" to "${output}": the input is the temporary file the output is written to first`,
    );
  }
  const existing = await fs.stat(target);
  if (existing !== null && !existing.isFile) {
    throw new Error(`Cannot convert "${input}": the output "${output}" exists and is not a regular file`);
  }
  // One handle for the detection and the replay, and its size: a live log's compaction may
  // rename a smaller file over the path between a stat and an open.
  const source = await fs.open(input, { read: true });
  let size: number;
  let from: SnapshotFormat;
  let replayed: { leaving: Replayed; staying: Replayed };
  try {
    size = await source.size();
    from = await resolveFormat(source, size, input, o.from);
    const progress = new Progress(size, o.onProgress);
    replayed = from === "go-text"
      ? await replayGoTextBoth(source, input, size, progress)
      : await replayBinaryBoth(source, input, size, progress, o.recovery);
    progress.end();
  } finally {
    await source.close();
  }

  const { leaving, staying } = replayed; // rejoinAfterLeave false / true
  const leaveRecorded = !sameState(leaving.state, staying.state);
  const check = o.to === "go-text" ? checkGoText : checkBinary;
  // Collected (and checked) before the output is created: a node that cannot be written
  // fails the conversion without touching the file system.
  const parts = leaveRecorded
    ? [collect(staying.state, check), collect(leaving.state, check)]
    : [collect(leaving.state, check)];

  const lock = await acquireWriterLock(fs, target, output);
  let file: FileHandle | null = null;
  let bytesWritten = 0;
  let renamed = false;
  try {
    // A new file is 0644; one that replaces an existing OUT keeps OUT's permission bits.
    // (A leftover of a crashed convert or compaction is overwritten: truncate.)
    file = await fs.open(tmp, { write: true, create: true, truncate: true, mode: await modeOf(fs, target) });
    const sink = o.to === "go-text" ? new TextSink(file) : new BinarySink(file);
    await sink.header();
    await writeNodes(sink, parts[0]!);
    const c0 = clocksOf(leaveRecorded ? staying.state : leaving.state);
    for (let k = 0; k < 3; k++) await sink.clock(k as 0 | 1 | 2, c0[k]!);
    if (leaveRecorded) {
      await sink.leave();
      await writeNodes(sink, parts[1]!);
      // A zero clock is left out: writing it would reset the other mode's clock.
      const c1 = clocksOf(leaving.state);
      for (let k = 0; k < 3; k++) if (c1[k] !== 0n) await sink.clock(k as 0 | 1 | 2, c1[k]!);
    }
    bytesWritten = await sink.flush();
    // The data must be on disk before the rename makes it the output: otherwise a crash
    // could leave an output that is renamed but empty.
    await file.datasync();
    const f = file;
    file = null;
    await f.close();
    await fs.rename(tmp, target);
    renamed = true;
    // The rename is durable only once the directory is: README "Crash safety".
    await fs.syncDir(dirOf(target));
  } catch (err) {
    if (renamed) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(
        `Cannot convert "${input}": "${output}" was replaced, but fsyncing its directory failed (a crash may bring back the old file): ${why}`,
        { cause: err },
      );
    }
    if (file !== null) await file.close().catch(() => {});
    await fs.remove(tmp).catch(() => {});
    throw err;
  } finally {
    await lock.close();
  }

  const chosen = o.rejoinAfterLeave ? staying : leaving;
  const clocks = chosen.state.clocks;
  return {
    from,
    to: o.to,
    records: chosen.records,
    bytesRead: size,
    bytesWritten,
    aliveCount: chosen.state.count,
    lastClock: clocks.lastClock,
    lastEventClock: clocks.lastEventClock,
    lastQueryClock: clocks.lastQueryClock,
    tornTailBytes: chosen.tornTailBytes,
    warnings: chosen.warnings,
    warningsOmitted: chosen.warningsOmitted,
    leaveRecorded,
  };
}

// ---- same-file check -------------------------------------------------------------------

/** True if `output` names the file `input` names: same canonical path, or the same inode. */
async function sameFile(fs: FileSystem, input: string, output: string): Promise<boolean> {
  if ((await canonicalPath(fs, input)) === (await canonicalPath(fs, output))) return true;
  if (fs !== denoFs) return false;
  // A hard link has its own path but is the same file: replacing it would not touch the
  // input, yet the user almost certainly meant the input.
  try {
    const [a, b] = await Promise.all([Deno.stat(input), Deno.stat(output)]);
    return a.ino !== null && a.dev === b.dev && a.ino === b.ino;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

// ---- replay in both leave modes ----------------------------------------------------------

interface Replayed {
  state: SerfState;
  records: number;
  tornTailBytes: number;
  warnings: ReplayWarning[];
  warningsOmitted: number;
}

/** Reports progress at most every PROGRESS_STEP_BYTES, and once at the end. */
class Progress {
  readonly #total: number;
  readonly #fn: ((progress: ConvertProgress) => void) | null;
  #read = 0;
  #reported = 0;

  constructor(total: number, fn: ((progress: ConvertProgress) => void) | null) {
    this.#total = total;
    this.#fn = fn;
  }

  /** The input has been read up to `position`. */
  at(position: number): void {
    if (position <= this.#read) return;
    this.#read = Math.min(position, this.#total);
    if (this.#fn !== null && this.#read - this.#reported >= PROGRESS_STEP_BYTES && this.#read < this.#total) {
      this.#reported = this.#read;
      this.#fn({ bytesRead: this.#read, bytesTotal: this.#total });
    }
  }

  end(): void {
    this.#read = this.#total;
    this.#fn?.({ bytesRead: this.#total, bytesTotal: this.#total });
  }
}

/** Serf's text format: one read of the file, pushed into a replayer per leave mode. */
async function replayGoTextBoth(
  file: FileHandle,
  path: string,
  size: number,
  progress: Progress,
): Promise<{ leaving: Replayed; staying: Replayed }> {
  const leaving = new GoTextReplayer({ rejoinAfterLeave: false });
  const staying = new GoTextReplayer({ rejoinAfterLeave: true });
  const buf = new Uint8Array(Math.min(READ_CHUNK_BYTES, Math.max(size, 1)));
  let pos = 0;
  // Only the bytes present at the start are read: a writer appending meanwhile cannot
  // make the conversion chase the end of the file. Each pass reads at least one byte or
  // stops, so the loop is bounded by `size`.
  while (pos < size) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, size - pos)), pos);
    if (n === 0) throw new Error(`Cannot read "${path}": file shrank during conversion at offset ${pos}`);
    leaving.push(buf.subarray(0, n));
    staying.push(buf.subarray(0, n));
    pos += n;
    progress.at(pos);
  }
  const done = (r: GoTextReplayer): Replayed => {
    // finish() frees the read buffer; the state stays in the replayer's Wasm instance.
    const s = r.finish();
    return {
      state: r.state,
      records: s.records,
      tornTailBytes: s.tornTailBytes,
      warnings: s.warnings,
      warningsOmitted: s.warningsOmitted,
    };
  };
  return { leaving: done(leaving), staying: done(staying) };
}

/** The binary format: two replays over one handle whose reads they share. */
async function replayBinaryBoth(
  file: FileHandle,
  path: string,
  size: number,
  progress: Progress,
  recovery: RecoveryMode,
): Promise<{ leaving: Replayed; staying: Replayed }> {
  const shared = new SharedReads(file, progress);
  const run = async (rejoin: boolean): Promise<Replayed> => {
    const codec = newBinaryCodec(rejoin);
    const r = await replayBinaryFile(codec.core, shared, size, path, recovery);
    return {
      state: codec.state,
      records: r.records,
      tornTailBytes: r.tornTailBytes,
      warnings: r.skipped.map((s) => ({ line: s.offset, reason: `skipped ${s.bytes} bytes: ${s.reason}` })),
      warningsOmitted: r.skippedOmitted,
    };
  };
  // Both settle before the file closes: a replay that fails must not leave the other reading.
  const [leaving, staying] = await Promise.allSettled([run(false), run(true)]);
  if (leaving.status === "rejected") throw leaving.reason;
  if (staying.status === "rejected") throw staying.reason;
  return { leaving: leaving.value, staying: staying.value };
}

/**
 * A read-only handle over `inner` for two replays that read the same positions: the first
 * read of a (position, length) goes to the file, the second is served from memory.
 */
class SharedReads implements FileHandle {
  readonly #inner: FileHandle;
  readonly #progress: Progress;
  readonly #pending = new Map<string, { data: Promise<Uint8Array>; readers: number }>();

  constructor(inner: FileHandle, progress: Progress) {
    this.#inner = inner;
    this.#progress = progress;
  }

  async read(buf: Uint8Array, position: number): Promise<number> {
    const key = `${position}:${buf.length}`;
    let entry = this.#pending.get(key);
    if (entry === undefined) {
      const data = (async (): Promise<Uint8Array> => {
        const b = new Uint8Array(buf.length);
        const n = await this.#inner.read(b, position);
        this.#progress.at(position + n);
        return b.subarray(0, n);
      })();
      entry = { data, readers: 0 };
      this.#pending.set(key, entry);
      if (this.#pending.size > SHARED_READS_MAX) {
        this.#pending.delete(this.#pending.keys().next().value!);
      }
    }
    entry.readers++;
    if (entry.readers === 2) this.#pending.delete(key);
    const data = await entry.data;
    buf.set(data);
    return data.length;
  }
  write(): Promise<void> {
    return Promise.reject(new TypeError("Cannot write: the conversion input is read-only"));
  }
  truncate(): Promise<void> {
    return Promise.reject(new TypeError("Cannot truncate: the conversion input is read-only"));
  }
  datasync(): Promise<void> {
    return Promise.resolve();
  }
  size(): Promise<number> {
    return this.#inner.size();
  }
  tryLock(): Promise<boolean> {
    return Promise.resolve(false);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

// ---- the state, collected and checked ------------------------------------------------------

function clocksOf(state: SerfState): [bigint, bigint, bigint] {
  const c = state.clocks;
  return [c.lastClock, c.lastEventClock, c.lastQueryClock];
}

/** Same alive count and clocks. Enough here: the false-mode state is a subset of the true-mode one. */
function sameState(a: SerfState, b: SerfState): boolean {
  const ca = clocksOf(a);
  const cb = clocksOf(b);
  return a.count === b.count && ca.every((v, i) => v === cb[i]);
}

/** The alive set as raw bytes (names and addresses as replay stored them), sorted by name. */
interface Nodes {
  bytes: Uint8Array;
  /** Per node, in name order: name start, address start, address end. */
  offsets: Uint32Array;
  count: number;
}

type Check = (bytes: Uint8Array, nameStart: number, addrStart: number, addrEnd: number) => void;

function nodeName(bytes: Uint8Array, start: number, end: number): string {
  return JSON.stringify(decodeUtf8(bytes.subarray(start, end)));
}

/**
 * What serf's text replay reads back exactly: `alive: NAME ADDR\n` splits at the last space,
 * so the address may hold no space, and neither field a `\n`. Anything else (`\r`, an empty
 * name, invalid UTF-8) replays byte for byte, so it is written as is.
 */
const checkGoText: Check = (bytes, nameStart, addrStart, addrEnd) => {
  const nl = bytes.subarray(nameStart, addrStart).indexOf(0x0a);
  if (nl >= 0) {
    throw new RangeError(
      `Cannot write node ${nodeName(bytes, nameStart, addrStart)} in go-text format: its name contains "\\n"`,
    );
  }
  const addr = bytes.subarray(addrStart, addrEnd);
  if (addr.indexOf(0x0a) >= 0 || addr.indexOf(0x20) >= 0) {
    const what = addr.indexOf(0x0a) >= 0 ? '"\\n"' : '" "';
    throw new RangeError(
      `Cannot write node ${nodeName(bytes, nameStart, addrStart)} in go-text format: its address ${
        JSON.stringify(decodeUtf8(addr))
      } contains ${what}`,
    );
  }
};

/** The binary format stores each length in 16 bits. */
const checkBinary: Check = (bytes, nameStart, addrStart, addrEnd) => {
  if (addrStart - nameStart > NAME_BYTES_MAX || addrEnd - addrStart > NAME_BYTES_MAX) {
    const field = addrStart - nameStart > NAME_BYTES_MAX ? "name" : "address";
    const len = field === "name" ? addrStart - nameStart : addrEnd - addrStart;
    throw new RangeError(
      `Cannot write node ${
        nodeName(bytes, nameStart, Math.min(addrStart, nameStart + 64))
      } in binary format: its ${field} is ${len} bytes, the limit is ${NAME_BYTES_MAX}`,
    );
  }
};

/**
 * The alive set sorted by name (so the output is deterministic), copied out of Wasm in one
 * call (SerfState.exportSorted), with every node checked against the target format.
 */
function collect(state: SerfState, check: Check): Nodes {
  const nodes = state.exportSorted();
  const { bytes, offsets } = nodes;
  for (let k = 0; k < nodes.count; k++) {
    check(bytes, offsets[k * 3]!, offsets[k * 3 + 1]!, offsets[k * 3 + 2]!);
  }
  return nodes;
}

// ---- writing ---------------------------------------------------------------------------------

interface Sink {
  header(): Promise<void>;
  alive(name: Uint8Array, addr: Uint8Array): Promise<void>;
  clock(kind: 0 | 1 | 2, value: bigint): Promise<void>;
  leave(): Promise<void>;
  /** Writes what is buffered; returns the bytes written in all. */
  flush(): Promise<number>;
}

async function writeNodes(sink: Sink, nodes: Nodes): Promise<void> {
  const { bytes, offsets } = nodes;
  for (let k = 0; k < nodes.count; k++) {
    const n = offsets[k * 3]!;
    const a = offsets[k * 3 + 1]!;
    const e = offsets[k * 3 + 2]!;
    await sink.alive(bytes.subarray(n, a), bytes.subarray(a, e));
  }
}

const encoder = new TextEncoder();
const ALIVE_PREFIX = encoder.encode("alive: ");
const CLOCK_PREFIXES = [
  encoder.encode("clock: "),
  encoder.encode("event-clock: "),
  encoder.encode("query-clock: "),
];
const SPACE = encoder.encode(" ");
const NEWLINE = encoder.encode("\n");
const LEAVE = encoder.encode("leave\n");

/** Serf's text format, written as serf writes it; fields go out as the bytes replay stored. */
class TextSink implements Sink {
  readonly #file: FileHandle;
  readonly #buf = new Uint8Array(WRITE_CHUNK_BYTES);
  #len = 0;
  #pos = 0;

  constructor(file: FileHandle) {
    this.#file = file;
  }
  header(): Promise<void> {
    return Promise.resolve(); // serf's format has no header
  }
  async alive(name: Uint8Array, addr: Uint8Array): Promise<void> {
    for (const part of [ALIVE_PREFIX, name, SPACE, addr, NEWLINE]) await this.#put(part);
  }
  async clock(kind: 0 | 1 | 2, value: bigint): Promise<void> {
    await this.#put(CLOCK_PREFIXES[kind]!);
    await this.#put(encoder.encode(`${value}\n`));
  }
  leave(): Promise<void> {
    return this.#put(LEAVE);
  }
  async flush(): Promise<number> {
    await this.#drain();
    return this.#pos;
  }
  async #put(bytes: Uint8Array): Promise<void> {
    if (this.#len + bytes.length > this.#buf.length) await this.#drain();
    if (bytes.length > this.#buf.length) {
      await this.#file.write(bytes, this.#pos);
      this.#pos += bytes.length;
      return;
    }
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }
  async #drain(): Promise<void> {
    if (this.#len === 0) return;
    await this.#file.write(this.#buf.subarray(0, this.#len), this.#pos);
    this.#pos += this.#len;
    this.#len = 0;
  }
}

/** snaplog's binary format: frames encoded and sealed (CRC32C) in a Wasm instance of its own. */
class BinarySink implements Sink {
  readonly #file: FileHandle;
  readonly #core = new WasmCore();
  readonly #enc: FrameEncoder;
  #pos = 0;

  constructor(file: FileHandle) {
    this.#file = file;
    // Room for at least one maximal frame, so every record fits in an empty batch.
    this.#enc = new FrameEncoder(
      this.#core,
      SERF_LIMITS,
      Math.max(WRITE_CHUNK_BYTES, 2 * SERF_FRAME_SIZE_MAX),
    );
  }
  async header(): Promise<void> {
    const salt = newSalt(); // a new file's own
    this.#enc.useSalt(salt);
    const h = encodeFileHeader(FileKind.serfSnapshot, salt);
    await this.#file.write(h, 0);
    this.#pos = h.length;
  }
  async alive(name: Uint8Array, addr: Uint8Array): Promise<void> {
    const at = await this.#reserve(RecordType.alive, 2 + name.length + addr.length);
    const u8 = this.#core.u8;
    u8[at] = name.length & 0xff;
    u8[at + 1] = name.length >>> 8;
    u8.set(name, at + 2);
    u8.set(addr, at + 2 + name.length);
  }
  async clock(kind: 0 | 1 | 2, value: bigint): Promise<void> {
    const at = await this.#reserve(RecordType.clock + kind, 8);
    this.#core.view.setBigUint64(at, value, true);
  }
  async leave(): Promise<void> {
    await this.#reserve(RecordType.leave, 0);
  }
  async flush(): Promise<number> {
    await this.#drain();
    return this.#pos;
  }
  async #reserve(type: number, length: number): Promise<number> {
    let at = this.#enc.reserve(type, length);
    if (at < 0) {
      await this.#drain();
      at = this.#enc.reserve(type, length);
    }
    return at;
  }
  async #drain(): Promise<void> {
    if (this.#enc.length === 0) return;
    // A copy: the write is asynchronous and the batch lives in Wasm memory.
    const bytes = this.#enc.bytes().slice();
    await this.#file.write(bytes, this.#pos);
    this.#pos += bytes.length;
    this.#enc.clear();
  }
}
