// Reading a snapshot record by record, in file order: what `snaplog dump` prints, for looking
// into a log, finding what a damaged region held, or feeding the records to another tool.
// Replay (replay.ts) is the fast path and keeps only the state; this builds an object per
// record, at a few hundred nanoseconds each, so it is for inspection, not start-up.
//
// Both formats say what replay would do with each record, by replay's own rules: a binary
// file is first replayed (so damage is classified exactly as `replaySnapshot` reports it: the
// same recovery modes, the same regions), then its frames are walked between the damage; a
// Go text line is parsed by serf's rules (assembly/gotext.ts is the fast twin of
// `parseGoTextLine`, and a test holds the two to the same answer on every fixture).
import { choiceOption, FORMAT_CHOICES, fsOption, knownOptionKeys, RECOVERY_MODES } from "../_options.ts";
import { FILE_HEADER_BYTES, FRAME_HEADER_BYTES, frameSize } from "../core/frame.ts";
import type { FileHandle, FileSystem } from "../fs/types.ts";
import {
  readFull,
  RecordType,
  type RecoveryMode,
  REPLAY_CHUNK_BYTES,
  replayBinaryFile,
  SERF_FRAME_SIZE_MAX,
} from "./binary.ts";
import { newBinaryCodec, type SnapshotFormat } from "./_codec.ts";
import {
  PositionalReader,
  WARN_ADDRESS,
  WARN_CLOCK_RANGE,
  WARN_CLOCK_SYNTAX,
  WARN_UNRECOGNIZED,
  warningReason,
} from "./gotext.ts";
import { decodeUtf8, isUint64, type SnapshotRecord, typeName } from "./records.ts";
import { checkRegularFile, missingSnapshot, resolveFormat } from "./snapshotter.ts";

/** Options of {@link readSnapshotRecords}. */
export interface ReadRecordsOptions {
  /**
   * The file's format; `"auto"` detects it (snaplog's binary header, else serf's text).
   * @default {"auto"}
   */
  format?: "auto" | SnapshotFormat;
  /**
   * Binary format only, as in `replaySnapshot`: `"truncate-tail"` yields a torn tail as a note
   * and throws `CorruptionError` on damage before it; `"strict"` throws on any damage;
   * `"salvage"` yields each damaged region as a note and goes on with the records after it.
   * @default {"truncate-tail"}
   */
  recovery?: RecoveryMode;
  /** The file system. @default {denoFs} */
  fs?: FileSystem;
}

/** One entry of {@link readSnapshotRecords}: a record, or a note about bytes replay applies nothing from. */
export interface SnapshotEntry {
  /** Byte offset in the file where the record's frame or line starts (or the noted bytes do). */
  offset: number;
  /** Go text: the line's number, 1-based, as replay warnings count lines; binary: null. */
  line: number | null;
  /**
   * The record, or null where replay applies nothing: a line serf skips, a region of damaged
   * bytes (`salvage`), a torn tail. Names, addresses and texts that are not UTF-8 are decoded
   * as serf's output shows them (each byte that begins no whole rune is one U+FFFD).
   */
  record: SnapshotRecord | null;
  /**
   * Why there is no record (serf's log wording for a line it skips; the damage `salvage`
   * skipped; a torn tail), or null for a record.
   */
  note: string | null;
}

/**
 * Reads a serf snapshot record by record, in file order, without modifying it: each record
 * as the object `Snapshotter.append` takes, with its offset (and line, in serf's text format),
 * and a note for every line serf skips, every damaged region `salvage` steps over, and a torn
 * tail. Streams the file: memory follows the longest record and the alive set (a binary file is
 * replayed first, so damage is reported exactly as `replaySnapshot` reports it), not the file. Replaying the
 * records in order gives the state `replaySnapshot` returns (`leave` applies per the reader's
 * own `rejoinAfterLeave`), for names and addresses that are UTF-8: other bytes (a serf file can
 * hold any) decode as serf shows them, one U+FFFD each, so two such names can read alike.
 *
 * @example List what a serf snapshot holds, skipped lines included
 * ```ts
 * import { readSnapshotRecords } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/serf.snapshot`;
 * await Deno.writeTextFile(path, "alive: a 10.0.0.1:7946\nclock: x\nleave\n");
 * const entries = [];
 * for await (const e of readSnapshotRecords(path)) entries.push(e);
 * assert.deepEqual(entries, [
 *   { offset: 0, line: 1, record: { type: "alive", name: "a", addr: "10.0.0.1:7946" }, note: null },
 *   {
 *     offset: 23,
 *     line: 2,
 *     record: null,
 *     note: 'Failed to convert clock time: strconv.ParseUint: parsing "x": invalid syntax',
 *   },
 *   { offset: 32, line: 3, record: { type: "leave" }, note: null },
 * ]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The snapshot file.
 * @param options Format, recovery mode, file system.
 * @returns The entries, read as they are iterated; the file is closed when the iteration ends
 *   (also when it is left early).
 * @throws {TypeError} For options of the wrong type or an unknown option (at the call); for a path that is not a regular file (a pipe, a directory), or a `format` the file plainly is not (Go text asked of a binary file, binary of a serf text file), on the first step.
 * @throws {Deno.errors.NotFound} If the file does not exist (on the first iteration).
 * @throws {CorruptionError} For damage the recovery mode does not accept (binary format).
 */
export function readSnapshotRecords(
  path: string,
  options: ReadRecordsOptions = {},
): AsyncGenerator<SnapshotEntry, void, undefined> {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(
      `Cannot read snapshot records: path must be a non-empty string, got ${typeName(path)}`,
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot read snapshot records: options must be an object, got ${typeName(options)}`);
  }
  knownOptionKeys(
    "read snapshot records",
    options,
    { format: true, recovery: true, fs: true } satisfies Record<
      keyof ReadRecordsOptions,
      true
    >,
  );
  const fs = fsOption("read snapshot records", options.fs);
  const recovery = choiceOption(
    "read snapshot records",
    "recovery",
    options.recovery,
    "truncate-tail",
    RECOVERY_MODES,
  );
  const want = choiceOption("read snapshot records", "format", options.format, "auto", FORMAT_CHOICES);
  return entries(fs, path, want, recovery);
}

async function* entries(
  fs: FileSystem,
  path: string,
  want: "auto" | SnapshotFormat,
  recovery: RecoveryMode,
): AsyncGenerator<SnapshotEntry, void, undefined> {
  const info = await fs.stat(path);
  if (info === null) throw await missingSnapshot(fs, path, "read records of");
  checkRegularFile(info, path, "read records of");
  const file = await fs.open(path, { read: true });
  try {
    const size = await file.size(); // the opened file's: see replaySnapshot
    const format = await resolveFormat(file, size, path, want);
    if (format === "go-text") yield* goTextEntries(file, size);
    else yield* binaryEntries(file, size, path, recovery);
  } finally {
    await file.close();
  }
}

// ---- binary ------------------------------------------------------------------------------

/** A binary file's entries: replayed first, for its damage, then walked frame by frame between it. */
async function* binaryEntries(
  file: FileHandle,
  size: number,
  path: string,
  recovery: RecoveryMode,
): AsyncGenerator<SnapshotEntry, void, undefined> {
  // First the replay itself: it throws for damage the mode does not accept and lists the
  // regions salvage skips, exactly as replaySnapshot reports them. In segments of at most
  // SEGMENT_REGIONS regions (each replay stops where it resumes after the last it lists), so
  // a file damaged every other frame is not held as one entry per damaged region.
  const codec = newBinaryCodec(false);
  let pos = FILE_HEADER_BYTES;
  let from: number | undefined = undefined;
  let salt = 0;
  let saltRecovered = false;
  let saltSwitches = 0;
  for (;;) {
    readRecordsStats.segments++;
    const r = await replayBinaryFile(codec.state.core, file, size, path, recovery, REPLAY_CHUNK_BYTES, {
      ...(from === undefined ? {} : { from, salt, saltRecovered, saltSwitches }),
      maxSkipped: Math.max(1, readRecordsPolicy.segmentRegions),
      stopWhenListed: true,
    });
    if (r.headerMissing) {
      if (size > 0) yield note(0, null, `torn file header: ${size} bytes (no record)`);
      return;
    }
    for (const region of r.skipped) {
      yield* framesBetween(file, pos, region.offset, path);
      yield note(region.offset, null, `skipped ${region.bytes} bytes: ${region.reason}`);
      pos = Math.max(pos, region.offset + region.bytes);
    }
    if (r.stoppedAt !== null) {
      from = r.stoppedAt;
      salt = r.salt;
      saltRecovered = r.saltRecovered;
      saltSwitches = r.saltSwitches;
      continue;
    }
    yield* framesBetween(file, pos, r.goodEnd, path);
    if (r.tornTailBytes > 0) {
      yield note(
        r.goodEnd,
        null,
        `torn tail: ${r.tornTailBytes} bytes (${r.tornReason}); replay ignores them`,
      );
    }
    return;
  }
}

const READ_BYTES = 1 << 20;

/** Damaged regions one replay of {@link binaryEntries} lists before it stops (tests lower it). */
export const readRecordsPolicy: { segmentRegions: number } = { segmentRegions: 4096 };
/** Replays {@link binaryEntries} ran, in all (tests check that a long list is walked in segments). */
export const readRecordsStats: { segments: number } = { segments: 0 };

/** Yields the records of the frames in `[from, to)`, which the replay found whole and valid; reads in chunks. */
async function* framesBetween(
  file: FileHandle,
  from: number,
  to: number,
  path: string,
): AsyncGenerator<SnapshotEntry, void, undefined> {
  // No larger than the span: salvage's regions can be a frame apart, each span its own call.
  const buf = new Uint8Array(Math.min(READ_BYTES + SERF_FRAME_SIZE_MAX, Math.max(0, to - from)));
  const view = new DataView(buf.buffer);
  let pos = from; // file offset of buf[0]
  let have = 0;
  let at = 0; // next frame in buf
  while (pos + at < to) {
    if (at + FRAME_HEADER_BYTES > have || at + frameSize(view.getUint32(at + 4, true)) > have) {
      // Keep the partial frame, read on.
      buf.copyWithin(0, at, have);
      pos += at;
      have -= at;
      at = 0;
      const n = Math.min(buf.length - have, to - pos - have);
      if (n <= 0) {
        throw new Error(`Cannot read "${path}": the file changed while it was read (offset ${pos})`);
      }
      await readFull(file, buf.subarray(have, have + n), pos + have, path);
      have += n;
      continue;
    }
    const type = buf[at]!;
    const length = view.getUint32(at + 4, true);
    const end = at + frameSize(length);
    if (end > have || pos + end > to) {
      throw new Error(`Cannot read "${path}": the file changed while it was read (offset ${pos + at})`);
    }
    yield {
      offset: pos + at,
      line: null,
      record: decodeFrame(
        type,
        buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length),
        view,
        at + FRAME_HEADER_BYTES,
      ),
      note: null,
    };
    at = end;
  }
}

function decodeFrame(type: number, payload: Uint8Array, view: DataView, at: number): SnapshotRecord {
  switch (type) {
    case RecordType.alive: {
      const n = view.getUint16(at, true);
      return {
        type: "alive",
        name: decodeUtf8(payload.subarray(2, 2 + n)),
        addr: decodeUtf8(payload.subarray(2 + n)),
      };
    }
    case RecordType.notAlive:
      return { type: "not-alive", name: decodeUtf8(payload) };
    case RecordType.clock:
      return { type: "clock", value: view.getBigUint64(at, true) };
    case RecordType.eventClock:
      return { type: "event-clock", value: view.getBigUint64(at, true) };
    case RecordType.queryClock:
      return { type: "query-clock", value: view.getBigUint64(at, true) };
    case RecordType.leave:
      return { type: "leave" };
    case RecordType.coordinate:
      return { type: "coordinate", text: decodeUtf8(payload) };
    default:
      return { type: "comment", text: decodeUtf8(payload) };
  }
}

function note(offset: number, line: number | null, text: string): SnapshotEntry {
  return { offset, line, record: null, note: text };
}

// ---- Go text -----------------------------------------------------------------------------

/** Splits the file at '\n' (only: CRLF leaves '\r' in the line, as serf does) and parses each line. */
async function* goTextEntries(
  file: FileHandle,
  size: number,
): AsyncGenerator<SnapshotEntry, void, undefined> {
  const reader = new PositionalReader(file, 0, size);
  let buf = new Uint8Array(READ_BYTES);
  let pos = 0; // file offset of buf[0]
  let have = 0;
  let lineNo = 0;
  while (true) {
    if (have === buf.length) {
      // One line longer than the buffer: serf has no limit, so neither does this.
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await reader.read(buf.subarray(have));
    if (n === null) break;
    have += n;
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl >= 0 && nl < have; nl = buf.indexOf(0x0a, start)) {
      lineNo++;
      const line = buf.subarray(start, nl);
      const parsed = parseGoTextLine(line);
      yield typeof parsed === "string"
        ? note(pos + start, lineNo, parsed)
        : { offset: pos + start, line: lineNo, record: parsed, note: null };
      start = nl + 1;
    }
    buf.copyWithin(0, start, have);
    pos += start;
    have -= start;
  }
  if (have > 0) {
    // Serf drops a last line without its '\n' (ReadString's error ends its loop).
    yield note(pos, lineNo + 1, `last line has no newline: ${have} bytes; serf ignores them`);
  }
}

const encoder = new TextEncoder();
const ascii = (s: string): Uint8Array => encoder.encode(s);
const ALIVE = ascii("alive: ");
const NOT_ALIVE = ascii("not-alive: ");
const CLOCKS = [ascii("clock: "), ascii("event-clock: "), ascii("query-clock: ")] as const;
const CLOCK_TYPES = ["clock", "event-clock", "query-clock"] as const;
const COORDINATE = ascii("coordinate: ");
const LEAVE = ascii("leave");

function startsWith(line: Uint8Array, prefix: Uint8Array): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix[i]) return false;
  return true;
}

/**
 * One line of serf's text snapshot (without its '\n') by serf v0.9.4's `replay` rules: the
 * record it applies, or the reason it skips the line (serf's log wording), in serf's order
 * of checks. `#` comments and `coordinate:` lines are records that replay ignores.
 */
export function parseGoTextLine(line: Uint8Array): SnapshotRecord | string {
  if (startsWith(line, ALIVE)) {
    const rest = line.subarray(ALIVE.length);
    const space = rest.lastIndexOf(0x20);
    if (space < 0) return warningReason(WARN_ADDRESS, line);
    return {
      type: "alive",
      name: decodeUtf8(rest.subarray(0, space)),
      addr: decodeUtf8(rest.subarray(space + 1)),
    };
  }
  if (startsWith(line, NOT_ALIVE)) {
    return { type: "not-alive", name: decodeUtf8(line.subarray(NOT_ALIVE.length)) };
  }
  for (let kind = 0; kind < 3; kind++) {
    const prefix = CLOCKS[kind]!;
    if (!startsWith(line, prefix)) continue;
    const r = parseUint64(line.subarray(prefix.length));
    if (typeof r === "bigint") return { type: CLOCK_TYPES[kind]!, value: r };
    return warningReason((r === "range" ? WARN_CLOCK_RANGE : WARN_CLOCK_SYNTAX) + 2 * kind, line);
  }
  if (startsWith(line, COORDINATE)) {
    return { type: "coordinate", text: decodeUtf8(line.subarray(COORDINATE.length)) };
  }
  if (line.length === LEAVE.length && startsWith(line, LEAVE)) return { type: "leave" };
  if (line[0] === 0x23) {
    // snaplog writes a comment as "# text"; serf ignores what follows the '#'.
    return { type: "comment", text: decodeUtf8(line.subarray(line[1] === 0x20 ? 2 : 1)) };
  }
  return warningReason(WARN_UNRECOGNIZED, line);
}

/**
 * Go's `strconv.ParseUint(s, 10, 64)`: the value, or which error it returns. A non-digit is a
 * syntax error where it stands and an overflow a range error where it happens, whichever
 * comes first; an empty string is a syntax error.
 */
function parseUint64(s: Uint8Array): bigint | "syntax" | "range" {
  if (s.length === 0) return "syntax";
  let n = 0n;
  for (const c of s) {
    if (c < 0x30 || c > 0x39) return "syntax";
    n = n * 10n + BigInt(c - 0x30);
    if (!isUint64(n)) return "range";
  }
  return n;
}
