// The serf membership snapshot: an append-only log of alive/not-alive/clock records that a
// node replays to rejoin its cluster after a restart. It does what HashiCorp serf's
// Snapshotter (serf/snapshot.go) does, on a checksummed binary log or on serf's own text
// format, and fixes what serf gets wrong: it flushes by timer, states its durability,
// never drops a record, never removes the old file before the compacted one replaces it,
// and refuses to write after an fsync failure. README "Serf snapshots" and "Crash safety".
import type { Clock } from "../clock.ts";
import {
  BackpressureError,
  ClosedError,
  CorruptionError,
  FileChangedError,
  LockedError,
  PoisonedError,
} from "../errors.ts";
import { acquireWriterLock, canonicalPath, modeOf } from "../fs/lock.ts";
import { rewrapError } from "../fs/deno_fs.ts";
import { dirOf } from "../fs/_path.ts";
import {
  choiceOption,
  clockOption,
  FORMAT_CHOICES,
  fsOption,
  knownOptionKeys,
  RECOVERY_MODES,
} from "../_options.ts";
import {
  decodeFileHeader,
  encodeFileHeader,
  FILE_HEADER_BYTES,
  FileKind,
  frameSize,
  newSalt,
} from "../core/frame.ts";
import type { FileHandle, FileInfo, FileSystem } from "../fs/types.ts";
import {
  readFull,
  RecordType,
  type RecoveryMode,
  SERF_FRAME_SIZE_MAX,
  soundHeaderLength,
  zerosToEnd,
} from "./binary.ts";
import { crc32c } from "../core/crc32c.ts";
import { WasmMemoryError } from "../_wasm/core.ts";
import { readBinary, readGoText, SplitPlanner } from "./_parallel.ts";
import { type Codec, GoTextCodec, newBinaryCodec, type SnapshotFormat } from "./_codec.ts";
import { GoTextReplayer, WARNINGS_CHARS_MAX } from "./gotext.ts";
import { checkClock, checkString, isUint64, ownRecord, type SnapshotRecord, typeName } from "./records.ts";
import { addWarnings, type AliveNode, type ReplayWarning, WARNINGS_MAX_DEFAULT } from "./types.ts";

export type { RecoveryMode, SnapshotFormat, SnapshotRecord };

/** Options of {@link Snapshotter.open}. Checked and defaulted in one place. */
export interface SnapshotterOptions {
  /**
   * Ignore `leave` records on replay (serf's `RejoinAfterLeave`), so a node that left keeps
   * its state; otherwise a `leave` clears the alive set and the clocks.
   * @default {false}
   */
  rejoinAfterLeave?: boolean;
  /**
   * Buffered records reach the operating system at least this often, driven by a timer
   * (serf flushes only when the next record arrives, so a quiet cluster can keep records in
   * memory for hours). Serf's own interval is 500 ms. 1..3,600,000.
   * @default {500}
   */
  flushIntervalMs?: number;
  /**
   * When data is fsynced: `"interval"` every `syncIntervalMs` after a flush, `"always"` on
   * every append (the returned promise resolves when the record is durable; concurrent appends
   * share one fsync), `"never"` only on `sync()`, `leave()`, compaction and `close()`.
   * @default {"interval"}
   */
  sync?: "interval" | "always" | "never";
  /**
   * With `sync: "interval"`, the longest time a flushed record waits for its fsync.
   * 1..3,600,000.
   * @default {1000}
   */
  syncIntervalMs?: number;
  /**
   * Compact when the file grows past `max(minCompactSizeBytes, aliveNodes × 256)` (serf's
   * rule: 128 bytes per node, times a compaction threshold of 2) and past twice its size right
   * after the last compaction (so a small minimum cannot make a compacted file that is itself
   * over the threshold compact again on every flush). An integer, 0..2^53-1.
   * @default {131072}
   */
  minCompactSizeBytes?: number;
  /**
   * How damage found on open is handled (RocksDB's WAL recovery modes):
   * `"truncate-tail"` cuts a torn last record off and reports it, and throws
   * {@link CorruptionError} for damage before the tail; `"strict"` throws for any damage;
   * `"salvage"` skips damaged regions, keeps every good record and rewrites the file.
   * Before any repair the damaged file is copied to `<path>.broken`.
   * @default {"truncate-tail"}
   */
  recovery?: RecoveryMode;
  /**
   * File format. `"auto"` detects an existing file's format and creates new files as binary;
   * an existing empty file is serf's (serf creates its snapshot empty) and opens as Go text.
   * A format the file plainly is not (Go text asked of a binary file, or binary of a serf text
   * file) is a TypeError.
   * @default {"auto"}
   */
  format?: "auto" | SnapshotFormat;
  /**
   * Most bytes buffered in memory before `append` throws {@link BackpressureError}
   * (nothing is ever dropped silently). An integer, 1 MiB..1 GiB.
   * @default {67108864}
   */
  bufferSizeMaxBytes?: number;
  /**
   * The member Lamport clock's current time (serf's `LamportClock.Time()`). When given, the
   * snapshotter writes `clock` records as serf does: after member events and every
   * `clockIntervalMs`, when the clock advanced, with the value `Time() - 1`. A time of 0 (a
   * clock that has not ticked yet; serf's starts at 1) records nothing.
   * @default {undefined}
   */
  lamportClock?: () => bigint;
  /**
   * Period of the member clock check (serf: 500 ms). Used only with `lamportClock`.
   * 1..3,600,000.
   * @default {500}
   */
  clockIntervalMs?: number;
  /**
   * Wait after a failed compaction before the next automatic try (serf-core: 30 s).
   * 0..86,400,000.
   * @default {30000}
   */
  compactRetryMs?: number;
  /** Timers; inject a {@link ManualClock} in tests. @default {systemClock} */
  clock?: Clock;
  /** The file system; inject a MemFs or FaultFs in tests. @default {denoFs} */
  fs?: FileSystem;
  /**
   * Replay a large file on two threads when opening it, if that pays (see
   * `replaySnapshot`'s `parallel`); the state is the same either way.
   * @default {true}
   */
  parallel?: boolean;
  /**
   * Called with each failure of work the log does on its own: a timer flush or fsync, an
   * automatic compaction, the member clock tick. None of them loses a record: a failed write
   * keeps its records buffered for the next write, a failed compaction keeps the old file and
   * retries after `compactRetryMs`, and a failed fsync poisons the log, which every later call
   * then reports. `sync()` and `close()` report their own outcome only: `sync()` resolves
   * exactly when the records appended before it are on disk. Serf logs these failures. The
   * handler's own failure is ignored, a thrown error or a rejected promise alike.
   * @default {logs the error with console.error}
   */
  onBackgroundError?: (error: unknown) => void;
}

/** A serf event, for {@link Snapshotter.handleEvent}; mirrors serf's MemberEvent, UserEvent and Query. */
export type SerfEvent =
  | { type: "member-join"; members: ReadonlyArray<{ name: string; addr: string }> }
  | {
    type: "member-leave" | "member-failed" | "member-update" | "member-reap";
    members: ReadonlyArray<{ name: string }>;
  }
  | { type: "user" | "query"; ltime: bigint };

/** What {@link Snapshotter.open} found and repaired. */
export interface OpenReport {
  /** The file's format. */
  format: SnapshotFormat;
  /** Records (binary: frames) or lines (go-text: complete lines, skipped ones included) replayed. */
  records: number;
  /** File size before any repair. */
  bytes: number;
  /** Bytes of a torn tail that were cut off (0 if none). */
  tornTailBytes: number;
  /**
   * What replay skipped: damaged regions in salvage mode (binary; `line` is the byte offset),
   * or the lines serf's rules skip (go-text; `line` is the line number, with serf's reason).
   */
  skipped: ReplayWarning[];
  /**
   * What replay skipped past the first 10,000 entries of `skipped` (and, in serf's text format,
   * past 1 Mi characters of their reasons): counted, not listed.
   */
  skippedOmitted: number;
  /** Where the damaged file was copied before a repair, or null. */
  brokenCopy: string | null;
  /** True if the file was compacted during open. */
  compactedOnOpen: boolean;
  /**
   * Why the compaction open tried (the file was over the threshold) failed, or null. The log
   * opens on the old file, which is intact, and retries after `compactRetryMs`.
   */
  compactionError: string | null;
  /** True if the file was created by this open. */
  created: boolean;
  /**
   * True if the snapshot was missing and this open finished a compaction that had removed it
   * before renaming its new file in: `<path>.compact` became the snapshot. Serf compacts that
   * way, so a serf that died between the two steps leaves its whole state only there.
   */
  finishedCompaction: boolean;
}

/** Counters of a live snapshotter. */
export interface SnapshotterStats {
  /** Bytes in the file (written to the operating system). */
  fileBytes: number;
  /** Bytes buffered in memory, not yet written. */
  bufferedBytes: number;
  /** Bytes known to be on stable storage. */
  durableBytes: number;
  /**
   * fdatasync calls made for the log's own writes since open (by `sync()`, the sync timer,
   * `sync: "always"`, `leave()` and `close()`), a failed one included; not those of open's
   * repair or of a compaction's new file.
   */
  fsyncs: number;
  /** Compactions completed. */
  compactions: number;
  /**
   * Records staged since open: each `append`, each record `handleEvent` makes, and the member
   * clock records the log writes itself (with `lamportClock`).
   */
  appended: number;
  /**
   * Bytes of memory the log holds: its WebAssembly memory (the alive set, the staging buffer
   * of the binary format) and its JavaScript buffers. A burst that outruns the disk grows
   * the buffers; once they drain the log gives the memory back (the binary format moves
   * its state to a fresh Wasm instance, as a Wasm memory cannot shrink), and the garbage
   * collector frees it.
   */
  memoryBytes: number;
}

const RESOLVED: Promise<void> = Promise.resolve();
/** How the record and event checks' errors begin (see #naming). */
const OWN_CHECKS =
  /^Cannot (append (\S+ )?record|write (\S+ )?record|handle (event|\S+ event|member-[a-z]+)|record the member clock|allocate \d+ bytes of Wasm memory): /;
/** Passed by `open` alone: `new Snapshotter()` from JavaScript gets a clear TypeError. */
const OPENING: unique symbol = Symbol("Snapshotter.open");
/** Start writing in the background once this much is buffered, without waiting for the timer. */
const FLUSH_THRESHOLD_BYTES = 1 << 20;
/**
 * A write of more than this is made in pieces of about this size, each sealed and applied just
 * before it is written, so a burst staged up to `bufferSizeMaxBytes` (64 MiB) pauses the event
 * loop for one piece at a time (~8 MiB, 70-160 ms), with a turn of the loop between pieces: the
 * flush after a 1M-member `handleEvent` (46 MB) paused it 198-541 ms at most, against 717-967
 * in one piece (`deno task bench:lag`; the rest is the collection of the caller's objects). Smaller pieces cost each write a trip through the event
 * loop and Deno's I/O threads: 1 MiB pieces made a sync of 262,144 records 10-15 % slower
 * (session 14). Everything stays buffered until the last piece is written, so a failure in any
 * piece undoes them all, as for one write. Tests make the pieces smaller.
 */
export const writePolicy: { pieceBytes: number } = { pieceBytes: 8 << 20 };
/** Bytes per alive node in serf's compaction rule (snapshotBytesPerNode 128 × threshold 2). */
const COMPACT_BYTES_PER_NODE = 256;
const MAGIC_BYTES = [0x53, 0x4e, 0x4c, 0x47]; // "SNLG"
/**
 * The first 16 bytes of every serf snapshot's header in the binary format, version 2 and 1
 * (magic, version, kind, base 0); the salt and the checksum follow.
 */
const SERF_HEADER_PREFIXES = [1, 0].map((salt) =>
  // (any salt: it lies past these 16 bytes)
  encodeFileHeader(FileKind.serfSnapshot, salt).subarray(0, 16)
);

interface Resolved {
  rejoinAfterLeave: boolean;
  flushIntervalMs: number;
  sync: "interval" | "always" | "never";
  syncIntervalMs: number;
  minCompactSizeBytes: number;
  recovery: RecoveryMode;
  format: "auto" | SnapshotFormat;
  bufferSizeMaxBytes: number;
  lamportClock: (() => bigint) | null;
  clockIntervalMs: number;
  compactRetryMs: number;
  clock: Clock;
  fs: FileSystem;
  parallel: boolean;
  onBackgroundError: (error: unknown) => void;
}

/** Every key of {@link SnapshotterOptions}, for {@link knownOptionKeys}. */
export const SNAPSHOTTER_OPTION_KEYS = {
  rejoinAfterLeave: true,
  flushIntervalMs: true,
  sync: true,
  syncIntervalMs: true,
  minCompactSizeBytes: true,
  recovery: true,
  format: true,
  bufferSizeMaxBytes: true,
  lamportClock: true,
  clockIntervalMs: true,
  compactRetryMs: true,
  clock: true,
  fs: true,
  parallel: true,
  onBackgroundError: true,
} as const satisfies Record<keyof SnapshotterOptions, true>;

function checkOptions(options: SnapshotterOptions): Resolved {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot open snapshot: options must be an object, got ${typeName(options)}`);
  }
  knownOptionKeys("open snapshot", options, SNAPSHOTTER_OPTION_KEYS);
  const bool = (name: keyof SnapshotterOptions, def: boolean): boolean => {
    const v = options[name];
    if (v === undefined) return def;
    if (typeof v !== "boolean") throw new TypeError(`Cannot open snapshot: ${name} must be a boolean`);
    return v;
  };
  const num = (
    name: keyof SnapshotterOptions,
    def: number,
    min: number,
    max: number,
    integer = false,
  ): number => {
    const v = options[name];
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      const got = typeof v === "number" ? String(v) : typeName(v); // NaN and Infinity say which
      throw new TypeError(`Cannot open snapshot: ${name} must be a finite number, got ${got}`);
    }
    // Byte counts: a fraction would fail later, in the middle of an append.
    if (integer && !Number.isInteger(v)) {
      throw new TypeError(`Cannot open snapshot: ${name} must be an integer, got ${v}`);
    }
    if (v < min || v > max) {
      throw new RangeError(`Cannot open snapshot: ${name} must be in ${min}..${max}, got ${v}`);
    }
    return v;
  };
  const oneOf = <T extends string>(name: keyof SnapshotterOptions, def: T, allowed: readonly T[]): T =>
    choiceOption("open snapshot", name, options[name], def, allowed);
  for (const name of ["lamportClock", "onBackgroundError"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(`Cannot open snapshot: ${name} must be a function`);
    }
  }
  return {
    rejoinAfterLeave: bool("rejoinAfterLeave", false),
    flushIntervalMs: num("flushIntervalMs", 500, 1, 3_600_000),
    sync: oneOf("sync", "interval", ["interval", "always", "never"] as const),
    syncIntervalMs: num("syncIntervalMs", 1000, 1, 3_600_000),
    minCompactSizeBytes: num("minCompactSizeBytes", 128 * 1024, 0, Number.MAX_SAFE_INTEGER, true),
    recovery: oneOf("recovery", "truncate-tail", RECOVERY_MODES),
    format: oneOf("format", "auto", FORMAT_CHOICES),
    bufferSizeMaxBytes: num("bufferSizeMaxBytes", 64 << 20, 1 << 20, 1 << 30, true),
    lamportClock: options.lamportClock ?? null,
    clockIntervalMs: num("clockIntervalMs", 500, 1, 3_600_000),
    compactRetryMs: num("compactRetryMs", 30_000, 0, 86_400_000),
    clock: clockOption("open snapshot", options.clock),
    fs: fsOption("open snapshot", options.fs),
    parallel: bool("parallel", true),
    onBackgroundError: options.onBackgroundError ?? logBackgroundError,
  };
}

function logBackgroundError(error: unknown): void {
  console.error(`snaplog: ${errorMessage(error)}`);
}

/**
 * The file's format by its first bytes (null: empty). Binary: a whole 24-byte header that
 * starts with snaplog's magic and either checks out or has a zero high byte in its version or
 * kind (a damaged header, for salvage: no line of serf's text has one there), or a file shorter
 * than a header that is the magic and what follows it in a serf snapshot's header (a header
 * cut short; it holds no newline, so serf would read no record from it either). "headerless":
 * a binary file known only by the frames it holds; "ambiguous": one that holds both serf's
 * lines and a frame (a node name can hold either). Anything else is serf's text, also a text
 * file whose first line happens to begin with "SNLG", or a file of one to three bytes.
 */
async function formatGuess(
  file: FileHandle,
  size: number,
  path: string,
): Promise<SnapshotFormat | "headerless" | "ambiguous" | null> {
  if (size === 0) return null;
  const head = new Uint8Array(Math.min(size, FILE_HEADER_BYTES));
  await readFull(file, head, 0, path);
  if (size < FILE_HEADER_BYTES) {
    const cutHeader = size >= MAGIC_BYTES.length &&
      SERF_HEADER_PREFIXES.some((prefix) => head.every((b, i) => i >= prefix.length || b === prefix[i]));
    return cutHeader ? "binary" : "go-text";
  }
  if (!MAGIC_BYTES.every((b, i) => head[i] === b)) {
    // A damaged magic on a header whose other 20 bytes, checksum included, are snaplog's: with
    // the magic put back, the header checks out (a text file would have to hold NUL bytes and a
    // matching CRC32C there). Binary with a bad header, not text: as text, the file would open
    // empty and be cut back to its last newline byte.
    const restored = Uint8Array.from(head);
    restored.set(MAGIC_BYTES, 0);
    if (typeof decodeFileHeader(restored) !== "string") return "binary";
    // A header lost whole (a zeroed first sector, a misdirected write over it): snaplog's
    // frames follow it. Serf's own files begin with a record's name (`alive: `, `clock: `,
    // `# ...`), and an edited one with whitespace or a byte-order mark, so a file that begins
    // with anything else (a NUL, say) and holds a valid frame in its first 384 KiB is a binary
    // snapshot with a bad header. As text it would replay to nothing, in every mode, and an
    // open would cut it back to its last newline byte and append text. (Go text asked of it is
    // still honoured: a crafted node name in a text file can hold a frame.) But a file that
    // also holds serf's lines may be serf's: serf never fsyncs its snapshot, so a crash can
    // zero its first page while later ones stay, and a crafted name can hold a frame as a
    // binary one can hold serf's lines (wherever the frames and lines lie: a name can make a
    // frame span lines, and a lost frame header leaves its name's lines bare). Reading such a
    // file either way would let a name decide: a serf file rewritten as a binary snapshot of
    // that name's node, or a snaplog file cut back to a newline inside its frames. So `auto`
    // refuses it, and the format must be asked for.
    if (beginsLikeText(head[0]!) || !(await holdsFrame(file, size, path, HEADERLESS_PROBE_BYTES))) {
      return "go-text";
    }
    return await holdsSerfLine(file, size, path) ? "ambiguous" : "headerless";
  }
  return typeof decodeFileHeader(head) !== "string" || head[5] === 0 || head[7] === 0 ? "binary" : "go-text";
}

/**
 * A first byte a text file may begin with: serf's records, and what an edited file may put
 * before them (a blank line, CRLF, spaces, a tab, a UTF-8 byte-order mark).
 */
function beginsLikeText(byte: number): boolean {
  return (byte >= 0x20 && byte < 0x7f) || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0xef;
}

/**
 * True if the file begins as a text file does ({@link beginsLikeText}): binary asked of such a
 * file that holds no frame is refused. A damaged binary file's start can be anything (zeros, a
 * stray block), and binary asked of it reads on, so salvage can find its frames anywhere.
 */
async function beginsAsText(file: FileHandle, path: string): Promise<boolean> {
  const first = new Uint8Array(1);
  await readFull(file, first, 0, path);
  return beginsLikeText(first[0]!);
}

/** What begins each of serf's records but `leave` (and a comment), after a newline. */
const SERF_LINE_STARTS = [
  "alive: ",
  "not-alive: ",
  "clock: ",
  "event-clock: ",
  "query-clock: ",
  "coordinate: ",
  "leave\n",
]
  .map((p) => new TextEncoder().encode(`\n${p}`));

/**
 * True if the file holds a newline followed by the start of one of serf's records: a whole
 * line of serf's, in a file whose start is lost. The whole file, in 1 MiB windows: a serf
 * line can be longer than the probe for frames (a name can be), and one that holds a frame
 * there must not hide the lines after it (session 16: a text file whose first 300 KB were
 * zeroed and whose next line ran past the probe was taken for binary, and salvage rewrote it).
 */
async function holdsSerfLine(file: FileHandle, size: number, path: string): Promise<boolean> {
  const overlap = Math.max(...SERF_LINE_STARTS.map((p) => p.length)) - 1;
  const buf = new Uint8Array(Math.min(size, 1 << 20));
  for (let pos = 0; pos < size; pos += buf.length - overlap) {
    const n = Math.min(buf.length, size - pos);
    await readFull(file, buf.subarray(0, n), pos, path);
    const view = buf.subarray(0, n);
    for (let at = view.indexOf(0x0a); at >= 0; at = view.indexOf(0x0a, at + 1)) {
      if (SERF_LINE_STARTS.some((p) => at + p.length <= n && p.every((b, k) => view[at + k] === b))) {
        return true;
      }
    }
    if (pos + n >= size) break;
  }
  return false;
}

/**
 * How far into a file without a header {@link holdsFrame} looks for a frame: three of the
 * largest frames after the header, so two whole ones in a row lie inside whatever the first
 * record's size.
 */
const HEADERLESS_PROBE_BYTES = FILE_HEADER_BYTES + 3 * SERF_FRAME_SIZE_MAX;

/**
 * True if the file's first `upTo` bytes, after where the header would be, hold a whole serf
 * frame (zero padding, at an 8-aligned offset) whose checksum holds: under salt 0 (a version 1
 * file), or under the same salt as the frame right after it (version 2: the salt was in the
 * lost header, and two frames agree on one by chance once in 2^32), or under any salt when it
 * is the last frame of the file (the end of the file, zeros to it, or a torn frame follow).
 * A text file with serf's lines as well is refused by the caller as ambiguous, so a crafted
 * name that ends the file cannot make a serf file binary. Runs only on a file
 * without a snaplog header that `auto` does not take for serf's (its first byte), or that binary
 * is asked of: JavaScript is fast enough, in windows, with a bounded amount of checksumming
 * (not binary.ts's findNextFrame, whose Wasm resync checksums every candidate, without bound).
 */
async function holdsFrame(file: FileHandle, size: number, path: string, upTo: number): Promise<boolean> {
  const end = Math.min(size, upTo);
  const buf = new Uint8Array(Math.min(end, Math.max(1 << 20, 3 * SERF_FRAME_SIZE_MAX)));
  const view = new DataView(buf.buffer);
  // Bytes of checksums this may compute: a file built so that every 8-aligned slot looks like
  // the header of a long frame would otherwise cost a checksum of up to 128 KiB per slot (6.6 s
  // for 256 KiB). Real frames are found at the first plausible header or soon after.
  let budget = FRAME_CHECK_BUDGET_BYTES;
  let pos = 0; // file offset of buf[0]
  let have = 0;
  /**
   * True if what follows a frame that ends at buf[i] is the end of a log: nothing (the end of
   * the file), zeros to the end of the file, or a torn last frame (a header word a writer
   * writes, whose frame runs past the end of the file or is zeros to the end after its first
   * 16 bytes: a tear that kept the size).
   */
  const endsLogAt = (i: number): boolean => {
    const zerosFrom = (j: number): boolean =>
      pos + have === size && buf.subarray(j, have).every((b) => b === 0);
    if (pos + i === size || zerosFrom(i)) return true;
    if (i + 8 > have) return false;
    const length = soundHeaderLength(view, i);
    return length >= 0 && (pos + i + frameSize(length) > size || zerosFrom(Math.min(have, i + 16)));
  };
  /** The salt the frame at buf[i] checks out under, or -1 (no frame there, or out of budget). */
  const saltAt = (i: number): number => {
    if (i + 16 > have) return -1;
    const length = soundHeaderLength(view, i);
    const stop = i + frameSize(length);
    if (length < 0 || stop > have) return -1;
    for (let p = i + 12 + length; p < stop; p++) if (buf[p] !== 0) return -1; // zero padding
    budget -= stop - i;
    if (budget < 0) return -1;
    // The checksum covers the frame with its own field read as zero; the field holds it XOR the salt.
    const sum = crc32c(buf.subarray(i + 12, stop), crc32c(ZERO_WORD, crc32c(buf.subarray(i, i + 8))));
    return (sum ^ view.getUint32(i + 8, true)) >>> 0;
  };
  for (let at = FILE_HEADER_BYTES; at + 16 <= end && budget >= 0; at += 8) {
    if (at + 2 * SERF_FRAME_SIZE_MAX > pos + have && pos + have < end) {
      pos = at; // read on, so the window holds the two largest frames that could start here
      have = Math.min(buf.length, end - pos);
      await readFull(file, buf.subarray(0, have), pos, path);
    }
    const i = at - pos;
    const salt = saltAt(i);
    if (salt < 0) continue;
    if (salt === 0) return true;
    const next = i + frameSize(view.getUint32(i + 4, true));
    // A frame the same byte for byte as the bytes after it or before it is a repeated pattern
    // (junk), and two such imply one salt whatever it is: no evidence under a salt.
    const n = next - i;
    const same = (j: number): boolean =>
      j >= 0 && j + n <= have && buf.subarray(i, next).every((b, k) => b === buf[j + k]);
    if (same(next) || same(i - n)) continue;
    if (pos + next < end && saltAt(next) === salt) return true;
    if (endsLogAt(next)) return true;
  }
  return false;
}

const ZERO_WORD = new Uint8Array(4);
/** See {@link holdsFrame}: 8 MiB of checksums, ~10-20 ms. */
const FRAME_CHECK_BUDGET_BYTES = 8 << 20;

/**
 * The record a member event writes for `m` (serf: join → alive, leave/failed → not-alive),
 * or null for update and reap, which record nothing (their member's name is still checked).
 */
function memberRecord(type: SerfEvent["type"], m: unknown): SnapshotRecord | null {
  if (typeof m !== "object" || m === null) {
    throw new TypeError(`Cannot handle ${type}: a member must be an object, got ${typeName(m)}`);
  }
  const { name, addr } = m as { name?: unknown; addr?: unknown };
  if (type === "member-join") return { type: "alive", name, addr } as SnapshotRecord;
  if (type === "member-leave" || type === "member-failed") {
    return { type: "not-alive", name } as SnapshotRecord;
  }
  checkString(type, "name", name);
  return null;
}

/**
 * Locks the snapshot file itself, besides `<path>.lock`: flock locks the file, not the name, so
 * a second writer that reaches it through another name (a hard link, which has a lock file of
 * its own) is refused too. Not on Windows, where the lock would be mandatory and keep
 * readers (`replaySnapshot`, a backup) out; there it returns true.
 */
function lockDataFile(file: FileHandle): Promise<boolean> {
  return Deno.build.os === "windows" ? Promise.resolve(true) : file.tryLock();
}

/**
 * Creates the binary snapshot `path` with its file header, atomically: the header goes to
 * `<path>.compact` (the name a crash's leftover is removed under on open), is fdatasynced,
 * and the file is renamed into place and its directory fsynced. A crash leaves no file or a
 * complete header, never an empty file.
 */
async function createBinaryFile(fs: FileSystem, path: string): Promise<void> {
  const tmp = compactPath(path);
  const h = await fs.open(tmp, { write: true, create: true, truncate: true, mode: 0o644 });
  try {
    await h.write(encodeFileHeader(FileKind.serfSnapshot, newSalt()), 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, path);
  await fs.syncDir(dirOf(path));
}

/**
 * The format to read the open `file` (`size` bytes) in: the detected one for `"auto"` (Go text
 * for an empty file), else the one asked for, refused with TypeError where the file is plainly
 * the other one. Go text asked of a file with a snaplog header: serf's rules would read it as
 * nothing at all (an empty state, and a conversion would replace its output with that); of a
 * file `auto` calls binary only for the frames it holds, it is honoured (a node name in a text
 * file can hold a frame). Binary asked of a file that begins as serf's do and holds no snaplog
 * frame anywhere: salvage would rewrite a serf snapshot as an empty binary one. Binary asked of
 * any other file goes on, to a CorruptionError for its header: a damaged binary file is read
 * that way, salvage included.
 */
export async function resolveFormat(
  file: FileHandle,
  size: number,
  path: string,
  want: "auto" | SnapshotFormat,
): Promise<SnapshotFormat> {
  const verdict = await formatGuess(file, size, path);
  if (verdict === "ambiguous") {
    if (want !== "auto") return want;
    throw new CorruptionError(
      path,
      0,
      `no snaplog header, a snaplog frame in its first ${HEADERLESS_PROBE_BYTES} bytes, and serf's lines (a node name can hold either): ask for format "go-text" (a serf file whose start a crash lost) or format "binary" with recovery "salvage" (a snaplog file whose header was damaged; the CLI's --format, or --from for convert)`,
    );
  }
  if (want === "auto") return verdict === null ? "go-text" : verdict === "headerless" ? "binary" : verdict;
  if (want === "go-text" && verdict === "binary") {
    throw new TypeError(`Cannot read "${path}" as go-text: the file is in snaplog's binary format`);
  }
  if (
    want === "binary" && verdict === "go-text" && await beginsAsText(file, path) &&
    !(await holdsFrame(file, size, path, Infinity))
  ) {
    throw new TypeError(
      `Cannot read "${path}" as binary: the file is in serf's go-text format (no snaplog header, and no snaplog frame)`,
    );
  }
  return want;
}

/**
 * A live serf snapshot: appends are synchronous and buffered, a timer flushes them, fsync
 * follows the `sync` policy, and the file is compacted when it grows past serf's threshold.
 * One writer per file: a second open, from this or another process, throws {@link LockedError}.
 *
 * @example Record members and read them back after a restart
 * ```ts
 * import { Snapshotter } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const snap = await Snapshotter.open(`${dir}/serf.snap`);
 * snap.append({ type: "alive", name: "node-1", addr: "10.0.0.1:7946" });
 * snap.append({ type: "alive", name: "node-2", addr: "10.0.0.2:7946" });
 * snap.append({ type: "not-alive", name: "node-1" });
 * snap.append({ type: "clock", value: 42n });
 * await snap.close();
 *
 * const again = await Snapshotter.open(`${dir}/serf.snap`);
 * assert.deepEqual(again.aliveNodes(), [{ name: "node-2", addr: "10.0.0.2:7946" }]);
 * assert.equal(again.lastClock, 42n);
 * await again.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class Snapshotter {
  readonly #path: string;
  readonly #o: Resolved;
  readonly #codec: Codec;
  readonly #lock: FileHandle;
  #file: FileHandle;
  /** The identity (`FileInfo.id`) of the file this log writes, where the file system has one. */
  #fileId: string | undefined;
  #fileSize: number;
  #durableSize: number;
  #report: OpenReport;

  #closed = false;
  #closing = false;
  #leaving = false;
  #poison: unknown = null;
  /** The poisoning failure has gone to onBackgroundError (once is enough). */
  #poisonReported = false;
  /** What the first close() returns, to every later call too. */
  #closeResult: Promise<void> | null = null;

  #ioTail: Promise<void> = RESOLVED;
  /** The sync that will take the next snapshot of the buffer (not running yet), or null. */
  #syncPending: Promise<void> | null = null;
  /** The sync that is writing or fsyncing, and the append count its snapshot covers. */
  #syncWriting: { promise: Promise<void>; coveredSeq: number } | null = null;
  /** Appends staged since open (deferred clocks included): what a sync covers. */
  #appendSeq = 0;
  #flushTimer: unknown = null;
  #syncTimer: unknown = null;
  #clockTimer: unknown = null;
  #flushing = false;
  #compactNotBefore = -Infinity;
  #compactQueued = false;
  readonly #background = new Set<Promise<void>>();
  /** The last compaction's background removal of `<path>.replaced` (never rejects). */
  #dropReplaced: Promise<void> = Promise.resolve();

  #fsyncs = 0;
  #compactions = 0;
  #appended = 0;
  // The three clocks mirrored in JS, so serf's per-event clock checks cost no Wasm call.
  // Kept equal to the Wasm state: set from it at open, then updated on every append.
  #clocks: [bigint, bigint, bigint] = [0n, 0n, 0n];
  /**
   * The member clock last recorded, which a `leave` does not reset: serf's live Leave empties
   * only its alive set, so its updateClock goes on comparing with the clock it had (the
   * clocks a replay sees are reset; the next clock line is written only if the clock moved).
   */
  #memberClockSeen = 0n;
  /** A member clock record not yet staged (see #updateClock), or null. */
  #pendingClock: bigint | null = null;
  /** File size right after the last compaction (0 before any). */
  #compactedSize = 0;

  private constructor(
    token: typeof OPENING,
    path: string,
    o: Resolved,
    codec: Codec,
    lock: FileHandle,
    file: FileHandle,
    fileId: string | undefined,
    size: number,
    report: OpenReport,
  ) {
    if (token !== OPENING) {
      throw new TypeError("Cannot construct a Snapshotter: use `await Snapshotter.open(path, options)`");
    }
    this.#path = path;
    this.#o = o;
    this.#codec = codec;
    this.#lock = lock;
    this.#file = file;
    this.#fileId = fileId;
    this.#fileSize = size;
    this.#durableSize = size;
    this.#report = report;
    const c = codec.state.clocks;
    this.#clocks = [c.lastClock, c.lastEventClock, c.lastQueryClock];
    this.#memberClockSeen = c.lastClock;
  }

  /**
   * Opens (or creates) the snapshot at `path`, takes its writer lock, replays it, repairs a
   * torn tail per `recovery`, removes a crash's leftover `<path>.compact`, `<path>.replaced` and
   * `<path>.convert` (names snaplog owns beside the snapshot: the last is a `convert` to this
   * path that did not finish), and compacts if the file is over the threshold.
   *
   * @param path The snapshot file.
   * @param options Behaviour; see {@link SnapshotterOptions}.
   * @returns The open snapshotter.
   * @throws {LockedError} If another writer holds the file.
   * @throws {CorruptionError} If the file is damaged beyond what `recovery` repairs.
   * @throws {TypeError} For options of the wrong type or an unknown option, a `format` that does not match the file, or a path that is not a regular file (a pipe, a directory).
   * @throws {RangeError} For option values out of range.
   */
  static async open(path: string, options: SnapshotterOptions = {}): Promise<Snapshotter> {
    if (typeof path !== "string" || path === "") {
      throw new TypeError(`Cannot open snapshot: path must be a non-empty string, got ${typeName(path)}`);
    }
    const o = checkOptions(options);
    // Every file operation uses the file's canonical path: a symlink to a snapshot takes the
    // snapshot's own lock, and a compaction renames over the file, not over the link.
    const real = await canonicalPath(o.fs, path);
    checkRegularFile(await o.fs.stat(real), path, "open snapshot"); // before its lock file is made
    const lock = await acquireWriterLock(o.fs, real, path);
    try {
      return await Snapshotter.#openLocked(real, o, lock);
    } catch (e) {
      await lock.close();
      throw e;
    }
  }

  static async #openLocked(path: string, o: Resolved, lock: FileHandle): Promise<Snapshotter> {
    const fs = o.fs;
    // Serf compacts by removing the snapshot and then renaming its new file in; a serf that
    // died between the two left its whole state in <path>.compact (written and fsynced before
    // the removal) and no snapshot. Finish that rename rather than take the file for a
    // leftover. (snaplog's own compaction renames over the snapshot, so it never leaves that;
    // a file that is not a whole compacted snapshot is a leftover: see wholeCompactionBeside.)
    let info = await fs.stat(path);
    const finishedCompaction = info === null && await wholeCompactionBeside(fs, path);
    if (finishedCompaction) {
      await fs.rename(compactPath(path), path);
      await fs.syncDir(dirOf(path));
      info = await fs.stat(path);
    }
    // A crash during compaction can leave the temporary file and the replaced file's second
    // name (see #setAside), and a crashed convert its output; the snapshot itself is intact.
    await fs.remove(compactPath(path));
    await fs.remove(replacedPath(path));
    await fs.remove(convertPath(path));
    const created = info === null;
    // A new binary file appears with its header in place (written beside it and renamed), so
    // an existing empty file is never a snaplog file: it is serf's (serf creates its snapshot
    // empty at start), and "auto" opens it as Go text.
    if (created && o.format !== "go-text") await createBinaryFile(fs, path);
    const file = await fs.open(path, { read: true, write: true, create: true, mode: 0o644 });
    let snap: Snapshotter | null = null;
    try {
      if (!(await lockDataFile(file))) {
        throw new LockedError(
          path,
          "a lock on the file itself: another writer through another name (a hard link), or a tool that locked it",
        );
      }
      const size = created && o.format !== "go-text" ? FILE_HEADER_BYTES : info?.size ?? 0;
      // As the readers: go-text asked of a binary file is refused, and so is binary asked of a
      // serf text file; binary asked of a file with a damaged header but frames after it is
      // read as binary (refused but by salvage, which keeps the frames and writes a new header).
      const format = await resolveFormat(file, size, path, o.format);
      const report: OpenReport = {
        format,
        records: 0,
        bytes: size,
        tornTailBytes: 0,
        skipped: [],
        skippedOmitted: 0,
        brokenCopy: null,
        compactedOnOpen: false,
        compactionError: null,
        created,
        finishedCompaction,
      };
      let codec: Codec;
      let end: number;
      let rewrite = false;
      if (format === "binary") {
        const binary = newBinaryCodec(o.rejoinAfterLeave);
        codec = binary;
        const par = SplitPlanner.create(path, size, "binary", o.rejoinAfterLeave, {
          parallel: o.parallel,
          fs,
        });
        const r = await readBinary(binary.state, file, size, path, o.recovery, par);
        // Appends go on under the file's salt (0: a version 1 file, until its next compaction
        // writes version 2); a header written below, for want of one, takes the codec's fresh one.
        if (!r.headerMissing) binary.useSalt(r.salt);
        report.records = r.records;
        report.tornTailBytes = r.tornTailBytes;
        report.skipped = r.skipped.map((s) => ({
          line: s.offset,
          reason: `skipped ${s.bytes} bytes: ${s.reason}`,
        }));
        report.skippedOmitted = r.skippedOmitted;
        end = r.goodEnd;
        if (r.skipped.length + r.skippedOmitted > 0) rewrite = true;
        if (r.tornTailBytes > 0 || rewrite) report.brokenCopy = await copyBroken(fs, file, size, path);
        if (r.headerMissing) {
          // Over what is there (fewer bytes than a header), not after a truncate to 0: a crash
          // between the two would leave an empty file, which "auto" opens as Go text.
          const header = codec.header();
          await file.write(header, 0);
          await file.datasync();
          end = header.length;
        } else if (r.tornTailBytes > 0) {
          await file.truncate(end);
          await file.datasync();
        }
      } else {
        const replayer = new GoTextReplayer({ rejoinAfterLeave: o.rejoinAfterLeave });
        end = await lastNewlineEnd(file, size, path);
        const par = SplitPlanner.create(path, end, "go-text", o.rejoinAfterLeave, {
          parallel: o.parallel,
          fs,
        });
        const rest = await readGoText(replayer, file, end, par);
        report.records = replayer.lines + (rest?.lines ?? 0);
        report.skipped = [...replayer.warnings];
        report.skippedOmitted = addWarnings(
          report.skipped,
          replayer.warningsOmitted,
          rest?.warnings ?? [],
          rest?.warningsOmitted ?? 0,
          WARNINGS_MAX_DEFAULT,
          WARNINGS_CHARS_MAX,
        );
        report.tornTailBytes = size - end;
        codec = new GoTextCodec(replayer);
        if (size > end) {
          // Serf appends straight after a torn line, gluing two records into one bogus node.
          // A tail of zeros is unwritten space (a crash that extended the file, preallocation),
          // cut off in every mode as in the binary format; anything else is a torn line.
          if (o.recovery === "strict" && !(await zerosToEnd(file, end, size, path))) {
            throw new CorruptionError(path, end, "last line has no newline");
          }
          report.brokenCopy = await copyBroken(fs, file, size, path);
          await file.truncate(end);
          await file.datasync();
        }
      }
      if (created) {
        await fs.syncDir(dirOf(path)); // make the new file's directory entry durable
      } else {
        // What replay just read may be only in the page cache: a writer before us may have
        // died (or failed an fsync) between a write and its fdatasync. Counting it durable
        // without this would let sync() skip the fsync and a power loss take it.
        await file.datasync();
      }
      // Its identity, checked with every fsync (#checkFile); taken under the lock, after the
      // repairs above, which write in place.
      const fileId = (await fs.stat(path))?.id;
      snap = new Snapshotter(OPENING, path, o, codec, lock, file, fileId, end, report);
      if (rewrite) {
        // Salvage's repair: the damaged regions must go, so a failure here fails the open.
        await snap.#compactLocked();
        report.compactedOnOpen = true;
      } else if (snap.#overThreshold()) {
        // Only size: a failed compaction (a full disk, a refused rename) leaves the old file
        // intact, and the log opens on it and retries later, as a live log does.
        try {
          await snap.#compactLocked();
          report.compactedOnOpen = true;
        } catch (e) {
          if (snap.#poison !== null) throw e;
          report.compactionError = errorMessage(e);
        }
      }
      snap.#armClockTimer();
      return snap;
    } catch (e) {
      // A compaction that failed after its rename may have closed `file` already and opened
      // the new file (then failed to lock it): close both, and let no close hide the error.
      await file.close().catch(noop);
      if (snap !== null && snap.#file !== file) await snap.#file.close().catch(noop);
      throw e;
    }
  }

  /** The snapshot file's canonical path (on the real file system: absolute, symlinks resolved). */
  get path(): string {
    return this.#path;
  }
  /** The file format in use. */
  get format(): SnapshotFormat {
    return this.#codec.format;
  }
  /** What open found and repaired. */
  get openReport(): OpenReport {
    return this.#report;
  }
  /** Counters: file, buffered and durable bytes, fsyncs, compactions, appends. */
  get stats(): SnapshotterStats {
    return {
      fileBytes: this.#fileSize,
      bufferedBytes: this.#codec.staged,
      durableBytes: this.#durableSize,
      fsyncs: this.#fsyncs,
      compactions: this.#compactions,
      appended: this.#appended,
      memoryBytes: this.#codec.memoryBytes,
    };
  }
  /** The last member clock written (uint64), buffered records included. */
  get lastClock(): bigint {
    return this.#clocks[0];
  }
  /** The last user-event clock written (uint64), buffered records included. */
  get lastEventClock(): bigint {
    return this.#clocks[1];
  }
  /** The last query clock written (uint64), buffered records included. */
  get lastQueryClock(): bigint {
    return this.#clocks[2];
  }

  /**
   * How many nodes are alive, buffered records included: `aliveNodes().length` without
   * building the list (a cluster-size gauge can read it as often as it likes).
   */
  get aliveCount(): number {
    this.#applyStaged();
    return this.#codec.state.count;
  }

  /**
   * The alive set, sorted by name (byte-wise on the bytes the file holds: UTF-8 for every
   * name `append` wrote), buffered records included.
   *
   * @returns The alive nodes.
   */
  aliveNodes(): AliveNode[] {
    this.#applyStaged();
    return this.#codec.state.aliveNodes();
  }

  /**
   * Applies the staged records to the state. If the alive set no longer fits in Wasm memory,
   * the record it stopped at can never be applied: the log is poisoned, as a write would
   * poison it, and the state so far is what there is (a gauge reading aliveCount must not
   * throw). Any other failure (a stack overflow is a RangeError too) goes to the caller.
   */
  #applyStaged(): void {
    try {
      this.#codec.apply();
    } catch (e) {
      if (!(e instanceof WasmMemoryError)) throw e;
      this.#poison ??= e;
    }
  }

  /**
   * Appends one record to the buffer. The record is validated and buffered before this returns;
   * a timer writes it to the file within `flushIntervalMs`.
   *
   * @example Append and wait until it is durable
   * ```ts
   * import { Snapshotter } from "@snaplog/snaplog";
   *
   * const dir = await Deno.makeTempDir();
   * const snap = await Snapshotter.open(`${dir}/s.snap`, { sync: "always" });
   * await snap.append({ type: "alive", name: "node-1", addr: "10.0.0.1:7946" }); // durable here
   * await snap.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @param record The record.
   * @returns With `sync: "always"`, a promise that resolves when the record is on disk
   *   (appends made together share one fsync); otherwise an already resolved promise.
   * @throws {TypeError} For a record of the wrong shape or field types.
   * @throws {RangeError} For a name or address too long for the format, a clock outside
   *   0..2^64-1, a name or address with a lone surrogate (it has no UTF-8 form), or (go-text) a
   *   name or address that would inject lines.
   * @throws {BackpressureError} If `bufferSizeMaxBytes` are already waiting for the disk.
   * @throws {ClosedError} After `close()`.
   * @throws {PoisonedError} After a failed fsync, once the file changed behind the log, or once
   *   the alive set stopped fitting in Wasm memory (reopen the log).
   */
  append(record: SnapshotRecord): Promise<void> {
    try {
      return this.#append(record);
    } catch (e) {
      throw this.#naming(e, "to");
    }
  }

  #append(record: SnapshotRecord): Promise<void> {
    this.#checkWritable("append to");
    record = ownRecord(record); // each field read once: what is checked is what is written
    // A deferred member clock (see #updateClock) must keep its order against the records it
    // interacts with: a leave must come after it, and an explicit clock supersedes it, once
    // staged (a clock refused for back-pressure must not take the deferred one with it).
    if (this.#pendingClock !== null && record.type === "leave") this.#materializeClock();
    this.#stage(record);
    if (record.type === "clock") this.#pendingClock = null;
    return this.#afterStage();
  }

  /** Encodes `record` into the staging buffer (growing it, or refusing past the limit). */
  #stage(record: SnapshotRecord): void {
    const codec = this.#codec;
    const max = this.#o.bufferSizeMaxBytes;
    // Grow (doubling, up to the limit) until the record fits. A record that does not fit an
    // empty buffer of the whole limit (a Go text line over it) never will: RangeError.
    while (!codec.encode(record)) {
      if (codec.capacity >= max) {
        if (codec.staged === 0 || codec.sizeOf(record) > max) {
          throw new RangeError(
            `Cannot append ${record.type} record to "${this.#path}": it is larger than bufferSizeMaxBytes (${max})`,
          );
        }
        throw new BackpressureError(this.#path, codec.staged);
      }
      codec.grow(Math.min(codec.capacity * 2, max));
    }
    this.#appended++;
    this.#appendSeq++;
    switch (record.type) {
      case "clock":
        this.#clocks[0] = record.value;
        this.#memberClockSeen = record.value;
        break;
      case "event-clock":
        this.#clocks[1] = record.value;
        break;
      case "query-clock":
        this.#clocks[2] = record.value;
        break;
      case "leave":
        if (!this.#o.rejoinAfterLeave) this.#clocks = [0n, 0n, 0n];
        break;
    }
  }

  /** After staging: the sync policy, the flush timer, and an early flush past 1 MiB. */
  #afterStage(): Promise<void> {
    if (this.#o.sync === "always") return this.sync();
    this.#armFlushTimer();
    if (this.#codec.staged >= FLUSH_THRESHOLD_BYTES && !this.#flushing) this.#spawn(this.#timedFlush());
    return RESOLVED;
  }

  /** Arms the flush timer unless it is armed (or the log is closing, closed or poisoned). */
  #armFlushTimer(): void {
    if (this.#flushTimer !== null || this.#closing || this.#closed || this.#poison !== null) return;
    try {
      this.#flushTimer = this.#o.clock.setTimeout(() => {
        this.#flushTimer = null;
        this.#spawn(this.#timedFlush());
      }, this.#o.flushIntervalMs);
    } catch (e) {
      // An injected clock that throws must not fail the append whose record is already
      // staged (the caller would retry it and write it twice): the record waits for the next
      // append, sync() or close(), and the failure goes where background failures go.
      this.#reportBackground(e);
    }
  }

  /** Stages the deferred member clock record, if there is one. */
  #materializeClock(): void {
    const value = this.#pendingClock;
    if (value === null) return;
    this.#stage({ type: "clock", value }); // may throw BackpressureError: then it stays pending
    this.#pendingClock = null;
  }

  /**
   * Applies serf's event rules: a member join records `alive` for each member, a leave or
   * failure `not-alive`, update and reap record nothing; after any member event the member
   * clock is recorded if it advanced (needs `lamportClock`). A user event or query is recorded
   * (`event-clock` / `query-clock`) only if its Lamport time is newer than the last one.
   * After {@link leave} events are ignored, as serf stops recording.
   *
   * @example
   * ```ts
   * import { Snapshotter } from "@snaplog/snaplog";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * let clock = 1n;
   * const snap = await Snapshotter.open(`${dir}/s.snap`, { lamportClock: () => clock });
   * clock++;
   * await snap.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
   * await snap.handleEvent({ type: "user", ltime: 5n });
   * await snap.handleEvent({ type: "user", ltime: 3n }); // stale: not recorded
   * assert.equal(snap.lastClock, 1n);
   * assert.equal(snap.lastEventClock, 5n);
   * await snap.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   *
   * @param event The serf event.
   * @returns As {@link append}: durable on resolve with `sync: "always"`.
   * @throws {TypeError} For an event of the wrong shape.
   * @throws {RangeError} As {@link append}.
   * @throws {BackpressureError} If `bufferSizeMaxBytes` are already waiting for the disk (none
   *   of the event's records is staged).
   * @throws {ClosedError} After `close()`.
   * @throws {PoisonedError} After a failed fsync, once the file changed behind the log, or once
   *   the alive set stopped fitting in Wasm memory.
   */
  handleEvent(event: SerfEvent): Promise<void> {
    try {
      return this.#handleEvent(event);
    } catch (e) {
      throw this.#naming(e, "for");
    }
  }

  /**
   * A bad-input error (TypeError, RangeError) from the record and event checks, which know no
   * file, with this log's path put in (`Cannot append alive record to "<path>": ...`): a
   * service with several logs can tell which one refused. Other errors name it already.
   */
  #naming(e: unknown, preposition: string): unknown {
    // Exactly the classes and wordings of snaplog's checks: a caller's error (a lamportClock
    // that throws its own TypeError subclass) passes through as it is.
    if (!(e instanceof Error) || (e.constructor !== TypeError && e.constructor !== RangeError)) return e;
    const quoted = `"${this.#path}"`;
    const colon = e.message.indexOf(": ");
    if (e.message.includes(quoted) || colon < 0 || !OWN_CHECKS.test(e.message)) return e;
    const message = `${e.message.slice(0, colon)} ${preposition} ${quoted}${e.message.slice(colon)}`;
    return e instanceof RangeError
      ? new RangeError(message, { cause: e })
      : new TypeError(message, { cause: e });
  }

  #handleEvent(event: SerfEvent): Promise<void> {
    if (typeof event !== "object" || event === null) {
      throw new TypeError(`Cannot handle event: event must be an object, got ${typeName(event)}`);
    }
    this.#checkWritable("handle an event for");
    let last = RESOLVED;
    switch (event.type) {
      case "member-join":
      case "member-leave":
      case "member-failed":
      case "member-update":
      case "member-reap": {
        if (!Array.isArray(event.members)) {
          throw new TypeError(`Cannot handle ${event.type}: members must be an array`);
        }
        if (this.#leaving) return RESOLVED;
        const records = event.members.map((m) => memberRecord(event.type, m));
        const now = this.#lamportTime(); // a bad clock is refused before anything is staged
        // All or nothing: a member that is refused (bad input, or no room) takes back the
        // ones staged before it.
        const staged = this.#codec.staged;
        const appended = this.#appended;
        const seq = this.#appendSeq;
        try {
          for (const r of records) if (r !== null) last = this.append(r);
        } catch (e) {
          this.#codec.rollback(staged);
          this.#appended = appended;
          this.#appendSeq = seq;
          throw e;
        }
        const c = this.#updateClock(now);
        return c ?? last;
      }
      case "user":
      case "query": {
        const ltime = event.ltime; // read once: what is checked is what is compared and written
        checkClock(event.type, ltime, "event");
        if (this.#leaving) return RESOLVED;
        if (event.type === "user") {
          if (ltime <= this.lastEventClock) return RESOLVED;
          return this.append({ type: "event-clock", value: ltime });
        }
        if (ltime <= this.lastQueryClock) return RESOLVED;
        return this.append({ type: "query-clock", value: ltime });
      }
      default:
        throw new TypeError(
          `Cannot handle event: unknown type ${JSON.stringify((event as { type?: unknown }).type)}`,
        );
    }
  }

  /**
   * Serf's updateClock: records `clock: Time()-1` when that is newer than the last clock.
   * Time()-1 wraps at 0 exactly as serf's uint64 does.
   */
  #updateClock(now: bigint | null = this.#lamportTime()): Promise<void> | null {
    // Serf records Time() - 1 in uint64 arithmetic, and its clock is never 0 there (serf.Create
    // increments it first). A caller's clock that starts at 0 has seen nothing yet: 0 - 1 would
    // wrap to 2^64-1 and pin the member clock at its maximum for good.
    if (now === null || now === 0n) return null;
    const seen = now - 1n;
    if (seen <= this.#memberClockSeen) return null;
    // Deferred to the next write: a burst of member events costs one clock record per
    // flush instead of one per event (serf coalesces the same way when its writer lags).
    // It is staged before the batch reaches the file, so it never precedes its data.
    this.#clocks[0] = seen;
    this.#memberClockSeen = seen;
    this.#pendingClock = seen;
    this.#appendSeq++; // a sync from now on must stage it
    return this.#afterStage();
  }

  /**
   * The `lamportClock` option's current time, checked (null without the option).
   *
   * @throws {TypeError} If it is not a bigint.
   * @throws {RangeError} If it is outside 0..2^64-1.
   */
  #lamportTime(): bigint | null {
    if (this.#o.lamportClock === null) return null;
    const now: unknown = this.#o.lamportClock();
    if (typeof now !== "bigint") {
      throw new TypeError(
        `Cannot record the member clock: lamportClock returned ${typeName(now)}, not a bigint`,
      );
    }
    if (!isUint64(now)) {
      throw new RangeError(`Cannot record the member clock: lamportClock returned ${now}, outside 0..2^64-1`);
    }
    return now;
  }

  #armClockTimer(): void {
    if (this.#o.lamportClock === null || this.#closed || this.#closing) return;
    this.#clockTimer = this.#o.clock.setTimeout(() => {
      this.#clockTimer = null;
      if (this.#closed || this.#closing || this.#poison !== null) return;
      try {
        // Backpressure keeps the clock pending for the next write. With sync: "always" the
        // tick's sync is background work: its failure goes where the others' go.
        const staged = this.#updateClock();
        if (staged !== null) this.#spawn(staged);
      } catch (e) {
        this.#reportBackground(e);
      }
      this.#armClockTimer();
    }, this.#o.clockIntervalMs);
  }

  /**
   * Writes everything buffered and fdatasyncs it. Concurrent calls share the work: while one
   * fsync runs, every caller that arrives joins the single next one (group commit).
   *
   * @returns A promise that resolves when everything appended before the call is on disk. It
   *   reports this sync's own outcome only (background failures go to `onBackgroundError`).
   * @throws {Error} If its write fails (a full disk): the records stay buffered for the next try.
   * @throws {PoisonedError} If its fsync or an earlier one failed (or a failed write could not be
   *   undone), or the snapshot's path no longer names the file this log writes (`cause`: a
   *   `FileChangedError`; removed, renamed away, replaced).
   * @throws {ClosedError} After `close()`.
   */
  sync(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError(this.#path, "sync"));
    if (this.#poison !== null) return Promise.reject(new PoisonedError(this.#path, "sync", this.#poison));
    // Group commit. A sync that has not taken its snapshot of the buffer yet covers every
    // append made so far: join it. A sync that is already writing covers the appends made
    // before it took its snapshot: join it if that includes all of ours. Otherwise start
    // the next one, which runs after it (the exclusive I/O turn orders them).
    if (this.#syncPending !== null) return this.#syncPending;
    const writing = this.#syncWriting;
    if (writing !== null && this.#appendSeq <= writing.coveredSeq) return writing.promise;
    const p: Promise<void> = this.#exclusive(async () => {
      this.#syncPending = null;
      this.#syncWriting = { promise: p, coveredSeq: this.#appendSeq };
      try {
        await this.#writeStaged(); // takes the whole buffer (and the deferred clock) first
        await this.#datasync();
      } finally {
        // Before its promise settles: a caller that retries in its catch must start a new
        // sync, not join this one and get its rejection again without a try.
        if (this.#syncWriting?.promise === p) this.#syncWriting = null;
      }
      // With sync: "always" no timer flush runs, so the file's growth is checked here too.
      this.#maybeCompact();
    });
    this.#syncPending = p;
    p.then(noop, noop).then(() => {
      if (this.#syncWriting?.promise === p) this.#syncWriting = null;
      if (this.#syncPending === p) this.#syncPending = null; // failed before it ran
    });
    return p;
  }

  /**
   * Compacts now: writes the live state (alive records, then the clocks) to
   * `<path>.compact`, fdatasyncs it, renames it over the snapshot and fsyncs the directory;
   * appends go on in the new file. A failure leaves the old file intact and appending working.
   * See the README, "Crash safety: Compaction".
   *
   * @throws {Error} If a step before the rename fails (the old snapshot is untouched).
   * @throws {PoisonedError} If the directory fsync after the rename fails, or the snapshot changed behind the
   *   log (`FileChangedError`: then nothing is renamed over it).
   * @throws {ClosedError} After `close()`, or once it has begun.
   */
  compact(): Promise<void> {
    if (this.#closed || this.#closing) return Promise.reject(new ClosedError(this.#path, "compact"));
    if (this.#poison !== null) return Promise.reject(new PoisonedError(this.#path, "compact", this.#poison));
    return this.#exclusive(() => {
      // Checked again in its turn: a compaction must never run once close() has begun (the
      // lock may be gone by then, and a new writer's file would be renamed over).
      if (this.#closed || this.#closing) throw new ClosedError(this.#path, "compact");
      return this.#compactLocked();
    });
  }

  /**
   * Records that this node left the cluster (serf's `Snapshotter.Leave`): appends `leave`,
   * syncs, and stops recording member, user and query events. With `rejoinAfterLeave` the
   * state is kept; otherwise it is cleared, as replay would. Each call records a `leave`, as
   * serf's does: a retry after a failed sync adds a second one behind the first, still
   * buffered (two leaves in a row replay as one).
   *
   * @throws {Error} If the sync's write fails (a full disk): the `leave` stays buffered.
   * @throws {PoisonedError} If the sync's fsync fails, or the log was poisoned before.
   * @throws {BackpressureError} If `bufferSizeMaxBytes` are already waiting for the disk (no
   *   `leave` is recorded).
   * @throws {ClosedError} After `close()`.
   */
  async leave(): Promise<void> {
    this.append({ type: "leave" });
    this.#leaving = true;
    await this.sync();
  }

  /**
   * Flushes, records the final member clock (with `lamportClock`), fsyncs, and releases the
   * lock. Calling it again returns the first call's promise: the same outcome, no more work.
   * Afterwards every write (`append`, `handleEvent`, `sync`, `compact`, `leave`) throws
   * {@link ClosedError}; the final state (`aliveNodes()`, the clocks, `stats`) stays readable.
   *
   * @param options `timeoutMs`: give up waiting for the disk after this long (0..2^31-1 ms, or
   *   Infinity: wait, as without it) and report what was not flushed. The lock is released when the stuck write or fsync settles (at once
   *   otherwise), so a new writer cannot open the file while it may still change.
   * @throws {PoisonedError} If the log is poisoned (a failed fsync, its file changed behind it), before
   *   or during the close; it names the bytes that were not written or fsynced.
   * @throws {Error} Naming the bytes that could not be flushed, with the cause (a full disk, a timeout).
   * @throws {TypeError} For options that are not an object, an unknown option, or a `timeoutMs` that is
   *   not a number.
   * @throws {RangeError} For a `timeoutMs` outside its range.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    // A second close (two shutdown paths, `await using` and an explicit close) gets the
    // first one's outcome: it must not report a clean close while the first one fails.
    if (this.#closeResult !== null) return this.#closeResult;
    if (typeof options !== "object" || options === null) {
      return Promise.reject(
        new TypeError(`Cannot close "${this.#path}": options must be an object, got ${typeName(options)}`),
      );
    }
    try {
      knownOptionKeys(`close "${this.#path}"`, options, { timeoutMs: true });
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = options.timeoutMs;
    if (timeoutMs !== undefined && (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs))) {
      return Promise.reject(
        new TypeError(
          `Cannot close "${this.#path}": timeoutMs must be a number, got ${
            typeof timeoutMs === "number" ? "NaN" : typeName(timeoutMs)
          }`,
        ),
      );
    }
    if (timeoutMs !== undefined && (timeoutMs < 0 || (timeoutMs > TIMER_MAX_MS && timeoutMs !== Infinity))) {
      // Timers fire at once past 2^31-1 ms: a long wait would become none.
      return Promise.reject(
        new RangeError(
          `Cannot close "${this.#path}": timeoutMs must be in 0..${TIMER_MAX_MS} or Infinity, got ${timeoutMs}`,
        ),
      );
    }
    this.#closeResult = this.#close(timeoutMs === Infinity ? undefined : timeoutMs);
    return this.#closeResult;
  }

  async #close(timeoutMs: number | undefined): Promise<void> {
    let failure: unknown = null;
    if (this.#poison === null) {
      try {
        // Serf's shutdown writes the final clock even after leave (fixture 05-serf-leave-then-restart).
        this.#updateClock();
      } catch (e) {
        failure = e;
      }
    }
    this.#closing = true;
    this.#clearTimers();
    const work = this.#poison !== null ? Promise.reject(this.#poison) : this.#exclusive(async () => {
      // An earlier background failure (a timer flush on a full disk) left its records
      // buffered: try them now, and report only what still fails. There is no later retry.
      await this.#writeStaged();
      await this.#datasync();
    });
    let settled = false;
    work.then(() => settled = true, () => settled = true);
    let timer: unknown = null;
    try {
      if (timeoutMs === undefined) await work;
      else {
        await Promise.race([
          work,
          new Promise<void>((_, reject) => {
            timer = this.#o.clock.setTimeout(
              () => reject(new Error(`timed out after ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
      }
    } catch (e) {
      failure ??= e;
      work.catch(noop);
    } finally {
      if (timer !== null) this.#o.clock.clearTimeout(timer);
    }
    const unflushed = this.#codec.staged;
    const unsynced = this.#fileSize - this.#durableSize;
    this.#closed = true;
    const release = async (): Promise<void> => {
      await this.#dropReplaced;
      await this.#file.close().catch(noop);
      await this.#lock.close().catch(noop);
    };
    // A write or fsync that timed out may still complete: the file and its lock stay held
    // until it settles, so no new writer can open the file under it.
    if (settled) await release();
    else work.then(release, release);
    if (failure !== null) {
      // A poisoned log (a failed fsync, its file changed behind it, before or during this
      // close) says so as every other call does.
      const undone = `${unflushed} buffered bytes not written and ${unsynced} bytes not fsynced`;
      if (this.#poison !== null) throw new PoisonedError(this.#path, "close", this.#poison, undone);
      const reason = failure instanceof Error ? failure.message : String(failure);
      throw new Error(
        `Cannot close "${this.#path}" cleanly: ${unflushed} buffered bytes not written and ${unsynced} bytes not fsynced: ${reason}`,
        { cause: failure },
      );
    }
  }

  /**
   * Closes the snapshotter as {@link close} does (no timeout) when an `await using`
   * declaration that holds it goes out of scope, also when the scope is left by a throw.
   *
   * @example Closed at the end of the block
   * ```ts
   * import { replaySnapshot, Snapshotter } from "@snaplog/snaplog";
   * import assert from "node:assert/strict";
   *
   * const path = `${await Deno.makeTempDir()}/serf.snap`;
   * {
   *   await using snap = await Snapshotter.open(path);
   *   snap.append({ type: "alive", name: "node-1", addr: "10.0.0.1:7946" });
   * } // flushed, fsynced, lock released
   * const state = await replaySnapshot(path);
   * assert.deepEqual(state.aliveNodes, [{ name: "node-1", addr: "10.0.0.1:7946" }]);
   * ```
   *
   * @throws {Error} As {@link close}: naming the bytes that could not be flushed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Resolves when the background work started so far (timer flushes, automatic
   * compactions, the removal of a compaction's replaced file) has finished. For tests that
   * drive the clock by hand, and benchmarks that time one operation at a time.
   */
  async settled(): Promise<void> {
    // Bounded: each pass awaits the work that existed at its start.
    for (let i = 0; i < 100 && this.#background.size > 0; i++) {
      await Promise.allSettled([...this.#background]);
    }
    await this.#ioTail.then(noop, noop);
    await this.#dropReplaced;
  }

  // ---- internals -------------------------------------------------------------------------

  #checkWritable(action: string): void {
    if (this.#closed || this.#closing) throw new ClosedError(this.#path, action);
    if (this.#poison !== null) throw new PoisonedError(this.#path, action, this.#poison);
  }

  /**
   * Runs `fn` after every earlier exclusive operation: file writes never interleave. A turn
   * that comes up after an earlier one poisoned the log does nothing and throws: a sync queued
   * behind a compaction that failed after its rename would otherwise write to the replaced
   * file, which has no name any more, and acknowledge records a crash loses.
   */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#ioTail.then(() => {
      if (this.#poison !== null) throw new PoisonedError(this.#path, "write to", this.#poison);
      return fn();
    });
    this.#ioTail = run.then(noop, noop);
    return run;
  }

  /** Background work: tracked for settled(); a failure goes to onBackgroundError. */
  #spawn(p: Promise<void>): void {
    const tracked = p.catch((e) => this.#reportBackground(e)).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  /** Hands a background failure to onBackgroundError; of a poisoned log's, only the first. */
  #reportBackground(e: unknown): void {
    if (this.#poison !== null) {
      if (this.#poisonReported) return;
      this.#poisonReported = true;
    }
    try {
      const r: unknown = this.#o.onBackgroundError(e);
      // An async handler (`async (e) => await logger.send(e)`) fits the type too: its
      // rejection would be unhandled, and Deno ends the process on one.
      if (typeof (r as PromiseLike<unknown> | null)?.then === "function") {
        Promise.resolve(r).catch(noop);
      }
    } catch {
      // The handler's own failure must not become the log's.
    }
  }

  async #timedFlush(): Promise<void> {
    if (this.#flushing || this.#closed || this.#poison !== null) return;
    this.#flushing = true;
    try {
      // A timer armed before an fsync failed must not write after it. With no fsync to come
      // (sync: "never") a flush is where a file changed behind the log is noticed.
      await this.#exclusive(async () => {
        if (this.#poison !== null) return;
        await this.#writeStaged();
        this.#checkFile(await this.#statFile(), "flush");
      });
    } finally {
      this.#flushing = false;
      // Records staged while this flush wrote (a timer that fired meanwhile found it busy and
      // did nothing), or kept by a failed write, get the next timer: buffered records reach
      // the file within flushIntervalMs, not at the next append or close.
      if (this.#o.sync !== "always" && (this.#codec.staged > 0 || this.#pendingClock !== null)) {
        this.#armFlushTimer();
      }
    }
    // Not once close() has begun: it cleared the timers, and one armed now would outlive it.
    if (
      this.#o.sync === "interval" && this.#syncTimer === null && !this.#closing && !this.#closed &&
      this.#fileSize > this.#durableSize
    ) {
      this.#syncTimer = this.#o.clock.setTimeout(() => {
        this.#syncTimer = null;
        if (!this.#closed && !this.#closing && this.#poison === null) this.#spawn(this.sync());
      }, this.#o.syncIntervalMs);
    }
    this.#maybeCompact();
  }

  #overThreshold(): boolean {
    const threshold = Math.max(this.#o.minCompactSizeBytes, this.#codec.state.count * COMPACT_BYTES_PER_NODE);
    // Serf's rule, plus one guard: the file must be at least twice its size right after the
    // last compaction. Without it a tiny minimum (or none) with few alive nodes would leave
    // the compacted file itself over the threshold and recompact on every flush.
    return this.#fileSize > threshold && this.#fileSize > 2 * this.#compactedSize;
  }

  #maybeCompact(): void {
    if (this.#compactQueued || this.#closed || this.#closing || this.#poison !== null) return;
    if (!this.#overThreshold() || this.#o.clock.now() < this.#compactNotBefore) return;
    this.#compactQueued = true;
    this.#spawn(this.#exclusive(async () => {
      this.#compactQueued = false;
      if (this.#closed || this.#closing || this.#poison !== null || !this.#overThreshold()) return;
      await this.#compactLocked();
    }));
  }

  /**
   * Stages the deferred member clock and writes everything staged. With the buffer too full
   * for the clock record, what is staged goes first and the clock after it.
   */
  async #writeStaged(): Promise<void> {
    try {
      this.#materializeClock();
    } catch (e) {
      // No room for the clock record: the staged bytes first, then the clock. (A buffer that
      // cannot grow for want of Wasm memory is no room either: the write empties it.)
      if (!(e instanceof BackpressureError) && !(e instanceof WasmMemoryError)) throw e;
      await this.#writeBuffer();
      try {
        this.#materializeClock();
      } catch (e2) {
        if (!(e2 instanceof WasmMemoryError)) throw e2;
        this.#poison = e2;
        throw new PoisonedError(this.#path, "write", e2);
      }
    }
    await this.#writeBuffer();
  }

  /** Writes the staged bytes at the end of the file. A failed write is undone by truncation. */
  async #writeBuffer(): Promise<void> {
    if (this.#codec.staged === 0) return;
    // The file must be as this log left it: a shorter file copied over it (same inode) would
    // otherwise be extended by this write to the very size the checks after it expect, with
    // a hole of zeros before it, where a replay stops: the records after it acknowledged and
    // lost. One statSync (3.5-4 us) per write.
    this.#checkFile(await this.#statFile(), "write");
    // What is staged now; appends made while this writes wait for the next write. A burst is
    // written in pieces: each one's seal-and-apply is a pause of this thread (~0.4 us a
    // record), and the write after it lets the event loop run.
    const end = this.#codec.staged;
    try {
      for (let done = 0; done < end;) {
        let upTo: number;
        try {
          upTo = this.#codec.prepare(done, Math.min(end, done + writePolicy.pieceBytes));
        } catch (e) {
          // The alive set no longer fits in Wasm memory: the record it stopped at can never be
          // applied, so every retry would fail on it while appends pile up behind. Keep what
          // was written before this write, and refuse from now on. (Anything else goes on to
          // the write failure's path.)
          if (!(e instanceof WasmMemoryError)) throw e;
          await this.#file.truncate(this.#fileSize).catch(() => {});
          this.#poison = e;
          throw new PoisonedError(this.#path, "write", e);
        }
        await this.#file.write(this.#codec.bytesAt(done, upTo), this.#fileSize + done);
        done = upTo;
      }
    } catch (e) {
      if (e instanceof PoisonedError) throw e;
      // A partial write (a full disk) leaves a torn frame: cut it off so the file ends on a
      // record boundary again, keep the records buffered, and let the caller retry. If even
      // that fails, nothing about the file can be promised any more.
      try {
        await this.#file.truncate(this.#fileSize);
      } catch {
        this.#poison = e;
        throw new PoisonedError(this.#path, "write", e);
      }
      // denoFs's errors already begin with what failed and where ("Cannot write "<path>": ...").
      const detail = errorMessage(e).replace(`Cannot write "${this.#path}": `, "");
      throw new Error(`Cannot write "${this.#path}": ${detail}; the records stay buffered`, {
        cause: e,
      });
    }
    this.#fileSize += end;
    this.#codec.consume(end);
    this.#codec.trim(end);
  }

  async #datasync(): Promise<void> {
    if (this.#durableSize === this.#fileSize) return;
    const upTo = this.#fileSize;
    // The file check's stat is taken after the write and checked after the fsync (denoFs's is
    // a statSync: 3.5-4 us, against 27-35 us of this thread for Deno's async stat op).
    const info = this.#statFile();
    try {
      this.#fsyncs++;
      await this.#file.datasync();
    } catch (e) {
      // After a failed fsync the kernel may have dropped the dirty pages and cleared the
      // error: a retry could "succeed" without the data (fsyncgate). Refuse from now on.
      this.#poison = e;
      throw new PoisonedError(this.#path, "fsync", e);
    }
    this.#checkFile(await info, "sync");
    this.#durableSize = upTo;
  }

  /** The snapshot path's metadata for {@link #checkFile}; undefined if it cannot be had. */
  #statFile(): Promise<FileInfo | null | undefined> {
    return this.#o.fs.stat(this.#path).catch(() => undefined);
  }

  /**
   * Poisons the log and throws if the snapshot's path no longer names the file this log
   * writes (removed, or another file renamed into its place), or if that file's size is not
   * what this log wrote. Records synced to a file no reopen reads would be acknowledged and
   * lost, and a compaction would rename over a file someone put there: SQLite refuses writes
   * to a moved database (SQLITE_READONLY_DBMOVED) for the same reason. Every caller holds the
   * exclusive I/O turn, so no write of this log's is in flight: after a write, the size must
   * be its end. That catches a file left longer than the log's (another writer appending:
   * serf takes no lock on a go-text file), and, before each write and each compaction, any
   * change since the last write (a copy over the file, a truncation). A change between that
   * check and the write it precedes goes unseen until the file is replayed. A stat that
   * failed (`undefined`) proves nothing and passes.
   */
  #checkFile(info: FileInfo | null | undefined, action: string): void {
    if (info === undefined) return;
    let reason: string | null = null;
    if (info === null) reason = "it was removed or renamed away";
    else if (this.#fileId !== undefined && info.id !== undefined && info.id !== this.#fileId) {
      reason = "another file was put in its place";
    } else if (info.size !== this.#fileSize) {
      reason = `it is ${info.size} bytes long where this log wrote ${this.#fileSize}: ` +
        `something else wrote to it or truncated it`;
    }
    if (reason === null) return;
    const e = new FileChangedError(
      this.#path,
      `${reason}; what this log wrote since is not in the file a reopen reads`,
    );
    this.#poison = e;
    throw new PoisonedError(this.#path, action, e);
  }

  /** Compaction, with the exclusive I/O turn held. See the README, "Crash safety: compaction". */
  async #compactLocked(): Promise<void> {
    const fs = this.#o.fs;
    try {
      this.#materializeClock();
    } catch (e) {
      // No room for the deferred clock: it stays pending for the write after the compaction,
      // which frees the buffer (the staged records go into the image).
      if (!(e instanceof BackpressureError)) throw e;
    }
    const tmp = compactPath(this.#path);
    let h: FileHandle | null = null;
    let size = 0;
    let includedStaged = 0;
    let aside = false;
    let newId: string | undefined;
    const writes: Promise<void>[] = [];
    try {
      // 1. Write the live state to <path>.compact; the snapshot itself is untouched. Chunks
      //    are built synchronously (the state cannot change in between) and each write is
      //    issued at once, so the file system copies one chunk while Wasm builds the next.
      // The new file keeps the snapshot's permission bits (0644 for one snaplog created): a
      // user who narrowed them to 0600 must not find them widened by a compaction.
      const mode = await modeOf(fs, this.#path);
      h = await fs.open(tmp, { write: true, create: true, truncate: true, mode });
      const file = h;
      let at = 0;
      size = this.#codec.compactInto((chunk) => {
        writes.push(file.write(chunk, at));
        at += chunk.length;
      });
      includedStaged = this.#codec.staged; // every staged record is in the image
      for (const r of await Promise.allSettled(writes)) if (r.status === "rejected") throw r.reason;
      // 2. fdatasync it: the rename below must never expose a file whose data is not on disk.
      await h.datasync();
      newId = (await fs.stat(tmp))?.id;
      // 3. Atomically replace the snapshot, if it is still this log's file: a file someone
      //    put in its place must not be renamed over (#checkFile). Before this step a crash
      //    leaves the old file. The old file gets a second name first (see #setAside), so
      //    the rename leaves it one and closing it below frees nothing.
      this.#checkFile(await this.#statFile(), "compact");
      aside = await this.#setAside();
      await fs.rename(tmp, this.#path);
    } catch (e) {
      // Writes already issued settle first (none is left to reject unobserved), then the file goes.
      await Promise.allSettled(writes);
      if (h !== null) await h.close().catch(noop);
      await fs.remove(tmp).catch(noop);
      if (aside) await fs.remove(replacedPath(this.#path)).catch(noop);
      if (e instanceof PoisonedError) throw e; // the file changed behind the log (#checkFile)
      this.#compactNotBefore = this.#o.clock.now() + this.#o.compactRetryMs;
      throw new Error(`Cannot compact "${this.#path}": ${errorMessage(e)}; the old snapshot is intact`, {
        cause: e,
      });
    }
    const replaced = this.#file;
    try {
      // 4. fsync the directory so the rename itself survives a power loss.
      await fs.syncDir(dirOf(this.#path));
      // 5. Append to the new file from now on, through a handle opened under its own name
      //    (errors name the snapshot, not <path>.compact).
      this.#file = await fs.open(this.#path, { read: true, write: true });
      if (!(await lockDataFile(this.#file))) {
        throw new Error("the compacted file is locked by another process");
      }
    } catch (e) {
      this.#poison = e;
      throw new PoisonedError(this.#path, "compact", e);
    } finally {
      // Neither file's close can change what is on disk any more: the new file is synced, and
      // the replaced one is not the snapshot now.
      await h.close().catch(noop);
      if (this.#file !== replaced) await replaced.close().catch(noop);
      if (aside) this.#dropReplaced = fs.remove(replacedPath(this.#path)).catch(noop);
    }
    this.#fileId = newId;
    this.#fileSize = size;
    this.#durableSize = size;
    this.#codec.consume(includedStaged);
    this.#codec.compacted(); // staged frames go to the new file: under its salt
    this.#codec.trim(0);
    this.#compactions++;
    this.#compactedSize = size;
    this.#compactNotBefore = -Infinity;
  }

  /**
   * Links the snapshot to `<path>.replaced` before compaction renames over it; true if it did.
   * Whoever drops a file's last name frees its blocks, in that call: closing the replaced
   * file took 2-5 ms for 4.6 MB and 55 ms for 144 MiB on ext4 here, and close is synchronous
   * in Deno, so the event loop stalled and the compaction waited. With the second name the
   * close is cheap and a background `remove` frees the blocks on Deno's I/O threads (awaited
   * by the next compaction and by `close()`; a crash's leftover is removed on open). Without
   * `link` (a file system without hard links, or a custom FileSystem) the close does it.
   */
  async #setAside(): Promise<boolean> {
    const fs = this.#o.fs;
    if (fs.link === undefined) return false;
    await this.#dropReplaced;
    try {
      await fs.link(this.#path, replacedPath(this.#path));
      return true;
    } catch {
      return false;
    }
  }

  #clearTimers(): void {
    for (const t of [this.#flushTimer, this.#syncTimer, this.#clockTimer]) {
      if (t !== null) this.#o.clock.clearTimeout(t);
    }
    this.#flushTimer = this.#syncTimer = this.#clockTimer = null;
  }
}

function noop(): void {}

/**
 * For a missing snapshot `path`: true if `<path>.compact` is a whole compacted snapshot, that is,
 * a compaction that removed the snapshot before renaming its new file in (serf's way) was cut
 * short between the two. Anything less (empty, a bare header from a creation cut short, a
 * compaction's file cut short mid-write) is a leftover, not a state.
 */
export async function wholeCompactionBeside(fs: FileSystem, path: string): Promise<boolean> {
  const leftover = await fs.stat(compactPath(path));
  if (leftover === null || !leftover.isFile || leftover.size === 0) return false;
  return await endsLikeCompaction(fs, compactPath(path), leftover.size);
}

/**
 * True if the `size`-byte file at `path` ends as every whole compacted snapshot ends, serf's
 * and snaplog's, in either format: with its query clock, the last record a compaction writes
 * (a `query-clock: N` line; a query-clock frame whose checksum holds).
 */
async function endsLikeCompaction(fs: FileSystem, path: string, size: number): Promise<boolean> {
  const h = await fs.open(path, { read: true });
  try {
    const head = new Uint8Array(Math.min(size, FILE_HEADER_BYTES));
    await readFull(h, head, 0, path);
    const header = decodeFileHeader(head);
    if (typeof header !== "string") {
      const frame = frameSize(8); // a clock frame: header, u64, padding
      if (size < FILE_HEADER_BYTES + frame) return false;
      const tail = new Uint8Array(frame);
      await readFull(h, tail, size - frame, path);
      const view = new DataView(tail.buffer);
      if (view.getUint32(0, true) !== RecordType.queryClock || view.getUint32(4, true) !== 8) return false;
      const crc = view.getUint32(8, true);
      view.setUint32(8, 0, true); // the checksum covers the frame with its own field as zero
      return (crc32c(tail) ^ header.salt) >>> 0 === crc;
    }
    const n = Math.min(size, 64);
    const tail = new Uint8Array(n);
    await readFull(h, tail, size - n, path);
    return /(^|\n)query-clock: [0-9]+\n$/.test(new TextDecoder().decode(tail));
  } finally {
    await h.close();
  }
}

/**
 * Refuses a path that names something other than a regular file: a directory, and above all
 * a named pipe or a device, whose size reads 0 (a FIFO would replay as an empty snapshot,
 * and `convert` would write that out) and whose open may block until a writer comes.
 */
export function checkRegularFile(info: FileInfo | null, path: string, what: string): void {
  if (info !== null && !info.isFile) {
    throw new TypeError(`Cannot ${what} "${path}": not a regular file (a directory, a pipe or a device)`);
  }
}

/** The NotFound a read-only command throws for a missing snapshot (naming such a file). */
export async function missingSnapshot(fs: FileSystem, path: string, what: string): Promise<Error> {
  return new Deno.errors.NotFound(
    (await wholeCompactionBeside(fs, path))
      ? `Cannot ${what} "${path}": no such file, but "${path}.compact" exists: a compaction that removed the snapshot before renaming its new file in (serf does) was cut short; Snapshotter.open finishes it`
      : `Cannot ${what} "${path}": no such file`,
  );
}

/**
 * Where a compaction writes the file that replaces `path` (snaplog's and serf's name), and
 * where the copy before a repair and a new binary file are written before their renames.
 */
function compactPath(path: string): string {
  return `${path}.compact`;
}

/** Where `convert` writes its output before renaming it over `path` (under its writer lock). */
export function convertPath(path: string): string {
  return `${path}.convert`;
}

/** The second name a compaction gives the file it replaces (see #setAside). */
function replacedPath(path: string): string {
  return `${path}.replaced`;
}

/** The longest delay a timer holds (setTimeout fires at once past it). */
const TIMER_MAX_MS = 2 ** 31 - 1;

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** End of the last complete line (just past its `\n`), reading backwards from the end. */
async function lastNewlineEnd(file: FileHandle, size: number, path: string): Promise<number> {
  const chunk = new Uint8Array(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const view = chunk.subarray(0, end - start);
    await readFull(file, view, start, path);
    const i = view.lastIndexOf(10);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/** Whether the file at `copy` holds the first `size` bytes of `src` (`size` bytes long). */
async function sameBytes(
  fs: FileSystem,
  copy: string,
  src: FileHandle,
  size: number,
  path: string,
): Promise<boolean> {
  const file = await fs.open(copy, { read: true });
  try {
    const a = new Uint8Array(Math.min(size, 1 << 20));
    const b = new Uint8Array(a.length);
    for (let pos = 0; pos < size; pos += a.length) {
      const n = Math.min(a.length, size - pos);
      await readFull(src, a.subarray(0, n), pos, path);
      await readFull(file, b.subarray(0, n), pos, copy);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
    }
    return true;
  } finally {
    await file.close();
  }
}

/**
 * Copies a damaged file to `<path>.broken` (or `.broken.N` if that exists, unless that one
 * holds the same bytes) before a repair,
 * so the evidence is kept (etcd's Repair does the same). The copy is written to
 * `<path>.compact` and renamed into place once whole, so a `.broken` file is never a partial
 * copy: a failure removes the temporary file, and a crash leaves it to the next open, which
 * removes it.
 */
async function copyBroken(fs: FileSystem, src: FileHandle, size: number, path: string): Promise<string> {
  const self = await src.id?.(); // the file being repaired, from its handle: no second path lookup
  let target = `${path}.broken`;
  for (let n = 1;; n++) {
    const info = await fs.stat(target);
    if (info === null) break;
    // An open whose repair failed after its copy (an I/O error, a full disk) and is retried
    // (a service restarted in a loop) finds that copy: one of the same bytes is kept, not
    // made again, so the retries do not fill the disk with copies of one file. Only a
    // regular file that is not the snapshot itself (a link to it) and reads back whole.
    if (
      info.isFile && info.size === size && (self === undefined || info.id !== self) &&
      await sameBytes(fs, target, src, size, path).catch(() => false)
    ) {
      await fs.syncDir(dirOf(path));
      return target;
    }
    target = `${path}.broken.${n}`;
  }
  const tmp = compactPath(path);
  // The copy holds what the snapshot held: it gets the snapshot's permission bits.
  const out = await fs.open(tmp, { write: true, create: true, truncate: true, mode: await modeOf(fs, path) });
  let open = true;
  try {
    const buf = new Uint8Array(1 << 20);
    for (let pos = 0; pos < size; pos += buf.length) {
      const view = buf.subarray(0, Math.min(buf.length, size - pos));
      await readFull(src, view, pos, path);
      await out.write(view, pos);
    }
    await out.datasync();
    open = false;
    await out.close();
    await fs.rename(tmp, target);
    // FIX (snapshotter tests): the copy's directory entry must be durable before the caller
    // truncates the damaged file and fsyncs that, or a crash right after the repair keeps the
    // truncation and loses the evidence (test "Snapshotter keeps the .broken copy of a torn
    // tail across a crash").
    await fs.syncDir(dirOf(path));
  } catch (e) {
    // A copy cut short (a full disk) must not pass for the evidence; the open fails before
    // any repair, and the next one copies again.
    if (open) await out.close().catch(noop);
    await fs.remove(tmp).catch(noop);
    // Say what was being done: the bare error names `<path>.compact`, a file the caller
    // never asked for, and not that a repair was needed.
    throw rewrapError(
      e,
      `Cannot repair "${path}": its copy to "${target}", taken before any repair, failed (${
        errorMessage(e)
      }); the snapshot is untouched`,
    );
  }
  return target;
}
