// The serf snapshot in snaplog's binary format: records in checksummed frames
// (src/core/frame.ts), encoded straight into Wasm memory and replayed by the Wasm scan
// into the Wasm alive set. The record layouts are drawn in assembly/serf_binary.ts and
// in the README ("Serf snapshot records").
import type { WasmCore } from "../_wasm/core.ts";
import {
  decodeFileHeader,
  FILE_HEADER_BYTES,
  FileKind,
  FRAME_HEADER_BYTES,
  type FrameEncoder,
  FrameScanner,
  frameSize,
  type ScanResult,
  ScanStatus,
  scanStatusReason,
} from "../core/frame.ts";
import { CorruptionError } from "../errors.ts";
import { WARNINGS_MAX_DEFAULT } from "./types.ts";
import type { FileHandle } from "../fs/types.ts";
import { ReadAhead } from "../fs/_read_ahead.ts";
import {
  checkClock,
  checkRecordShape,
  checkString,
  NAME_BYTES_MAX,
  type SnapshotRecord,
  utf8Length,
} from "./records.ts";

/** Frame types of the serf binary format. Values match assembly/serf_binary.ts. */
export const RecordType = {
  alive: 1,
  notAlive: 2,
  clock: 3,
  eventClock: 4,
  queryClock: 5,
  leave: 6,
  coordinate: 7,
  comment: 8,
} as const;

/** Types 1..8 allowed. */
export const SERF_TYPE_MASK = 0b1_1111_1110;
/** Largest payload: an alive record with a maximal name and address. */
export const SERF_RECORD_SIZE_MAX = 2 + 2 * NAME_BYTES_MAX;
/** Largest frame of the format. */
export const SERF_FRAME_SIZE_MAX = frameSize(SERF_RECORD_SIZE_MAX);
/** Frame limits for the serf binary format. */
export const SERF_LIMITS = { typeMask: SERF_TYPE_MASK, recordSizeMax: SERF_RECORD_SIZE_MAX } as const;

/** The exports of assembly/serf_binary.ts. */
export interface SerfBinaryExports {
  serf_seal_apply(ptr: number, len: number, recordSizeMax: number, salt: number): number;
  serf_scan_apply(ptr: number, len: number, recordSizeMax: number, limit: number, salt: number): number;
  serf_apply_status(): number;
  scan_offset(): number;
  scan_count(): number;
  scan_frame_end(): number;
  serf_apply_offset(): number;
}

/** Mirrors assembly/serf_binary.ts: the alive set could not grow. */
export const APPLY_NO_MEMORY = 2;
/** Mirrors assembly/serf_binary.ts: `serf_seal_apply` returns this plus an APPLY_* status. */
export const SEAL_APPLY_FAILED = 100;
/** Mirrors assembly/serf_binary.ts: a frame with a good CRC that could not be applied. */
const SCAN_APPLY_FAILED = 100;

const encoder = new TextEncoder();

/**
 * Writes `s` at `at` and returns true if it is all ASCII (one byte per UTF-16 unit); returns
 * false otherwise, having written garbage the caller overwrites. One pass, no allocation:
 * node names and addresses are almost always ASCII, and this is the hot path of every
 * append. Two units a step, with one test after the loop instead of a branch per unit
 * (~15 % faster on 18-character strings in a micro-benchmark; V8's charCodeAt alone costs
 * 3-4 ns a unit on this project's machine).
 */
function writeAscii(u8: Uint8Array, at: number, s: string): boolean {
  const n = s.length;
  let acc = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const c = s.charCodeAt(i);
    const d = s.charCodeAt(i + 1);
    acc |= c | d;
    u8[at + i] = c;
    u8[at + i + 1] = d;
  }
  if (i < n) {
    const c = s.charCodeAt(i);
    acc |= c;
    u8[at + i] = c;
  }
  return acc < 0x80;
}

/**
 * Throws RangeError for a string with a lone surrogate: it has no UTF-8 form, and
 * TextEncoder would write U+FFFD, so two different names could become one node.
 */
function checkWellFormed(type: string, field: string, s: string): void {
  if (!s.isWellFormed()) {
    throw new RangeError(`Cannot append ${type} record: ${field} contains a lone surrogate`);
  }
}

/** Writes `s` (whose UTF-8 length is `len`) at `at`: a plain loop for ASCII, TextEncoder otherwise. */
function writeUtf8(u8: Uint8Array, at: number, s: string, len: number): void {
  if (len === s.length) {
    for (let i = 0; i < len; i++) u8[at + i] = s.charCodeAt(i);
  } else {
    encoder.encodeInto(s, u8.subarray(at, at + len));
  }
}

/**
 * Validates `record` and encodes it as one frame in `enc` (payload written in place).
 * Returns false, with nothing written, when the batch has no room.
 *
 * @throws {TypeError} For a wrong shape or field type.
 * @throws {RangeError} For a name or address over 65535 UTF-8 bytes or a clock outside uint64.
 */
export function encodeBinaryRecord(core: WasmCore, enc: FrameEncoder, record: SnapshotRecord): boolean {
  checkRecordShape(record);
  switch (record.type) {
    case "alive": {
      const { name, addr } = record;
      checkString("alive", "name", name);
      checkString("alive", "addr", addr);
      // Fast path: both ASCII and short enough, so the UTF-8 lengths are the string lengths.
      if (name.length <= NAME_BYTES_MAX && addr.length <= NAME_BYTES_MAX) {
        const at = enc.reserve(RecordType.alive, 2 + name.length + addr.length);
        if (at < 0) return false;
        const u8 = core.u8;
        if (writeAscii(u8, at + 2, name) && writeAscii(u8, at + 2 + name.length, addr)) {
          u8[at] = name.length & 0xff;
          u8[at + 1] = name.length >>> 8;
          return true;
        }
        enc.unreserve(at);
      }
      checkWellFormed("alive", "name", name);
      checkWellFormed("alive", "address", addr);
      const nl = utf8Length(name);
      const al = utf8Length(addr);
      if (nl > NAME_BYTES_MAX) {
        throw new RangeError(
          `Cannot append alive record: name is ${nl} bytes, the limit is ${NAME_BYTES_MAX}`,
        );
      }
      if (al > NAME_BYTES_MAX) {
        throw new RangeError(
          `Cannot append alive record: address is ${al} bytes, the limit is ${NAME_BYTES_MAX}`,
        );
      }
      const at = enc.reserve(RecordType.alive, 2 + nl + al);
      if (at < 0) return false;
      const u8 = core.u8;
      u8[at] = nl & 0xff;
      u8[at + 1] = nl >>> 8;
      writeUtf8(u8, at + 2, name, nl);
      writeUtf8(u8, at + 2 + nl, addr, al);
      return true;
    }
    case "not-alive": {
      const { name } = record;
      checkString("not-alive", "name", name);
      if (name.length <= NAME_BYTES_MAX) {
        const at = enc.reserve(RecordType.notAlive, name.length);
        if (at < 0) return false;
        if (writeAscii(core.u8, at, name)) return true;
        enc.unreserve(at);
      }
      checkWellFormed("not-alive", "name", name);
      const nl = utf8Length(name);
      if (nl > NAME_BYTES_MAX) {
        throw new RangeError(
          `Cannot append not-alive record: name is ${nl} bytes, the limit is ${NAME_BYTES_MAX}`,
        );
      }
      const at = enc.reserve(RecordType.notAlive, nl);
      if (at < 0) return false;
      writeUtf8(core.u8, at, name, nl);
      return true;
    }
    case "clock":
    case "event-clock":
    case "query-clock": {
      checkClock(record.type, record.value);
      const type = record.type === "clock"
        ? RecordType.clock
        : record.type === "event-clock"
        ? RecordType.eventClock
        : RecordType.queryClock;
      const at = enc.reserve(type, 8);
      if (at < 0) return false;
      core.view.setBigUint64(at, record.value, true);
      return true;
    }
    case "leave":
      return enc.reserve(RecordType.leave, 0) >= 0;
    case "coordinate":
    case "comment": {
      checkString(record.type, "text", record.text);
      checkWellFormed(record.type, "text", record.text); // as names and addresses, and as go-text does
      const len = utf8Length(record.text);
      if (len > SERF_RECORD_SIZE_MAX) {
        throw new RangeError(
          `Cannot append ${record.type} record: text is ${len} bytes, the limit is ${SERF_RECORD_SIZE_MAX}`,
        );
      }
      const at = enc.reserve(record.type === "comment" ? RecordType.comment : RecordType.coordinate, len);
      if (at < 0) return false;
      writeUtf8(core.u8, at, record.text, len);
      return true;
    }
  }
}

/** A damaged region that salvage recovery skipped. */
export interface SkippedRegion {
  /** File offset where the damage starts. */
  offset: number;
  /** Bytes skipped. */
  bytes: number;
  /** What was wrong. */
  reason: string;
}

/** How a binary replay treats damage (RocksDB's WAL recovery modes). */
export type RecoveryMode = "truncate-tail" | "strict" | "salvage";

/** What {@link replayBinaryFile} found. The state itself is in the caller's Wasm state. */
export interface BinaryReplayResult {
  /** Frames applied. */
  records: number;
  /** File size. */
  bytes: number;
  /** End of the last good frame: where appends continue after a repair. */
  goodEnd: number;
  /** Bytes after `goodEnd` (a torn or zeroed tail). */
  tornTailBytes: number;
  /** Why the tail is torn, when it is. */
  tornReason: string | null;
  /** Regions skipped in salvage mode: the first `maxSkipped`. */
  skipped: SkippedRegion[];
  /** Regions skipped past the first `maxSkipped`: counted, not listed. */
  skippedOmitted: number;
  /** True when the file is shorter than a header (an empty new file, or a torn header). */
  headerMissing: boolean;
  /**
   * With `until`: the frame boundary at or past it where the replay stopped (the rest of the
   * file is not read); null when it read to the end (or stopped at damage first).
   */
  stoppedAt: number | null;
  /**
   * The salt the frames were checked under where the replay stopped: the header's (0 for a
   * version 1 file), the one recovered from the frames when the header is damaged (salvage),
   * `range.salt`, or the salt salvage read on under after frames of another salt.
   */
  salt: number;
  /** The header was damaged and its salt recovered from the frames (or `range.saltRecovered`). */
  saltRecovered: boolean;
  /** Switches to another salt so far (salvage), counting `range.saltSwitches`: at most SALT_SWITCHES_MAX. */
  saltSwitches: number;
}

/** Where {@link replayBinaryFile} starts and stops (a parallel replay's two halves), and what it lists. */
export interface ReplayRange {
  /** Skipped regions to list; more are counted in `skippedOmitted`. @default {10000} */
  maxSkipped?: number;
  /** Start at this frame boundary instead of after the file header (which is then not read). */
  from?: number;
  /** With `from`: the file's salt (its header is not read). @default {0} */
  salt?: number;
  /** With `from`: the salt was recovered from the frames (a damaged header; see BinaryReplayResult). */
  saltRecovered?: boolean;
  /** With `from`: switches to another salt the replay before this one made (see BinaryReplayResult). */
  saltSwitches?: number;
  /** Stop at the first frame boundary at or past this offset. */
  until?: number;
  /**
   * Stop (with `stoppedAt` set) at the frame where the replay resumes once `maxSkipped`
   * regions are listed, instead of counting more: a reader that walks the file in segments
   * holds one segment's list, not one entry per damaged region of the file.
   */
  stopWhenListed?: boolean;
  /**
   * Called before each chunk with the offset replayed so far and the file's salt, while no
   * `until` is set; a number it returns becomes `until` (a parallel replay's split point,
   * src/serf/_parallel.ts).
   */
  plan?: (offset: number, salt: number) => number | null;
}

/** Default read size of a replay: big enough that per-call costs vanish. */
export const REPLAY_CHUNK_BYTES = 1 << 20;

/**
 * Replays a binary serf snapshot from `file` (of `size` bytes) into the serf state living in
 * `core`, streaming it in chunks, the next one read ahead while the Wasm scan works on this
 * one (ReadAhead). Memory follows the alive set.
 *
 * Damage handling: a damaged region with no valid frame after it is a torn tail (reported;
 * `strict` mode throws). A damaged region followed by a valid frame is corruption in the
 * middle: `truncate-tail` and `strict` throw {@link CorruptionError}, `salvage` skips it.
 */
export async function replayBinaryFile(
  core: WasmCore,
  file: FileHandle,
  size: number,
  path: string,
  recovery: RecoveryMode,
  chunkBytes: number = REPLAY_CHUNK_BYTES,
  range: ReplayRange = {},
): Promise<BinaryReplayResult> {
  const result: BinaryReplayResult = {
    records: 0,
    bytes: size,
    goodEnd: 0,
    tornTailBytes: 0,
    tornReason: null,
    skipped: [],
    skippedOmitted: 0,
    headerMissing: false,
    stoppedAt: null,
    salt: range.salt ?? 0,
    saltRecovered: range.from !== undefined && (range.saltRecovered ?? false),
    saltSwitches: range.saltSwitches ?? 0,
  };
  let until = range.until ?? Infinity;
  if (range.from === undefined && size < FILE_HEADER_BYTES) {
    result.headerMissing = true;
    result.tornTailBytes = size;
    if (size > 0) {
      result.tornReason = "torn file header";
      if (recovery === "strict") throw new CorruptionError(path, 0, "torn file header");
    }
    return result;
  }
  const skip = (region: SkippedRegion): void => {
    if (result.skipped.length < (range.maxSkipped ?? WARNINGS_MAX_DEFAULT)) result.skipped.push(region);
    else result.skippedOmitted++;
  };
  let damagedHeader = false;
  let headerSaltField = 0; // a damaged header's salt field, which may have survived
  if (range.from === undefined) {
    const header = new Uint8Array(FILE_HEADER_BYTES);
    await readFull(file, header, 0, path);
    const decoded = decodeFileHeader(header);
    if (typeof decoded === "string") {
      // Salvage keeps every frame that checks out, also after a damaged header: frames carry
      // their own checksums. (The repair on open writes a new header.)
      if (recovery !== "salvage") {
        throw new CorruptionError(path, 0, `${decoded}; recovery "salvage" keeps the valid records after it`);
      }
      skip({ offset: 0, bytes: FILE_HEADER_BYTES, reason: decoded });
      damagedHeader = true;
      headerSaltField = new DataView(header.buffer).getUint32(16, true);
    } else if (decoded.kind !== FileKind.serfSnapshot) {
      throw new CorruptionError(path, 0, `file kind ${decoded.kind} is not a serf snapshot`);
    } else {
      result.salt = decoded.salt;
    }
  }

  // What framesReachEnd found from each frame it walked from: salvage past many damaged
  // frames asks again from frames an earlier walk went through (each walk to the end again
  // was quadratic: 73 s for 5,400 damaged frames in a 128 KiB tail).
  const reaches = new Map<number, boolean>();
  // The same, for walks that must end exactly at the end of the file (not at a tail of zeros).
  const reachesExactly = new Map<number, boolean>();
  // The buffer must hold two maximal frames, so a resync window always overlaps enough.
  const cap = Math.max(chunkBytes, 2 * SERF_FRAME_SIZE_MAX);
  const scanner = new FrameScanner(core, SERF_LIMITS, cap, 0);
  try {
    // The salt of a file whose header is damaged: what its frames agree on.
    if (damagedHeader) {
      result.salt = await recoverSalt(scanner, file, size, path, headerSaltField);
      result.saltRecovered = true;
    }
    const saltRecovered = result.saltRecovered;
    let salt = result.salt;
    let switches = range.saltSwitches ?? 0; // salvage's switches to another salt (see decide)
    scanner.salt = salt;
    const x = core.exports as unknown as SerfBinaryExports;

    // The next chunk is read while this one is scanned (searches after damage read the file directly).
    const ahead = new ReadAhead(file, size, scanner.capacity);
    let pos = range.from ?? FILE_HEADER_BYTES; // file offset of buffer byte 0 (always 8-aligned)
    let have = 0; //                bytes in the buffer
    let start = 0; //               where the next frame starts in the buffer
    // Every pass either consumes bytes or reads more, so the loop is bounded by the file size.
    while (true) {
      if (range.stopWhenListed && result.skipped.length >= (range.maxSkipped ?? WARNINGS_MAX_DEFAULT)) {
        result.goodEnd = pos + start;
        result.stoppedAt = pos + start;
        return result;
      }
      if (pos + have < size && have < scanner.capacity) {
        const n = await ahead.read(scanner.buffer().subarray(have), pos + have);
        if (n === 0) {
          // The file got shorter while it was read (a log's open cut a torn tail under this
          // reader): it ends here now, and what it holds up to here is read as any file is.
          size = pos + have;
          result.bytes = size;
          ahead.forget(size);
        } else {
          have += Math.min(n, size - pos - have);
        }
      }
      const eof = pos + have >= size;
      if (until === Infinity && range.plan) until = range.plan(pos + start, salt) ?? Infinity;
      // One Wasm pass validates each frame and applies it while it is in cache
      // (serf_scan_apply); it stops where frames_scan would, for the same reasons.
      const limit = until === Infinity ? 0xffffffff : Math.max(0, until - (pos + start));
      const status = x.serf_scan_apply(
        scanner.pointer + start,
        have - start,
        SERF_RECORD_SIZE_MAX,
        limit,
        salt,
      );
      const applied = x.scan_count();
      result.records += applied;
      if (status === SCAN_APPLY_FAILED) {
        const at = pos + start + x.scan_offset();
        if (x.serf_apply_status() === APPLY_NO_MEMORY) {
          throw new RangeError(`Cannot replay "${path}": the alive set does not fit in Wasm memory`);
        }
        if (recovery !== "salvage") throw new CorruptionError(path, at, "malformed record payload");
        // Its checksum is good, so its header is: skip the whole frame (salvage reaches one
        // after damage, through a node name that holds a frame, as well as one written so).
        const frameAt = start + x.scan_offset();
        const length = new DataView(scanner.buffer().buffer, scanner.buffer().byteOffset + frameAt + 4, 4)
          .getUint32(0, true);
        skip({ offset: at, bytes: frameSize(length), reason: "malformed record payload" });
        start = frameAt + frameSize(length);
        continue;
      }
      const r: ScanResult = {
        status: status as ScanStatus,
        offset: start + x.scan_offset(),
        count: applied,
        frameEnd: start + x.scan_frame_end(),
      };
      start = r.offset;
      if (r.status === ScanStatus.end && pos + start >= until && pos + start < size) {
        result.goodEnd = pos + start;
        result.stoppedAt = pos + start;
        return result;
      }
      if (r.status === ScanStatus.end || (r.status === ScanStatus.incomplete && !eof)) {
        if (r.status === ScanStatus.end && eof) {
          result.goodEnd = pos + start;
          return result;
        }
        // Keep the unconsumed remainder (a frame cut by the chunk edge) and read on.
        const rest = have - start;
        scanner.compact(start, rest);
        pos += start;
        have = rest;
        start = 0;
        continue;
      }
      const damageAt = pos + start;
      let reason = scanStatusReason(r.status);
      // Where the damaged frame says it ends: past the end of the file for an incomplete frame;
      // for other damage, by its length if that is plausible (read before the searches below
      // reuse the buffer), whatever its type, flags or reserved bytes say.
      const claimedEnd = r.status === ScanStatus.incomplete
        ? r.frameEnd + pos
        : claimedFrameEnd(scanner.buffer().subarray(start, have), damageAt);
      if (r.status === ScanStatus.incomplete) reason = "incomplete last frame";
      if (r.status === ScanStatus.zero) reason = "zeroed bytes";
      // What the buffer holds: file bytes [win.at, win.at + win.n), or nothing known (-1).
      // A search starts in it, and the scan goes on from a hit in it: reading a window again
      // for every damaged region cost 2 MiB of reads each, 170 KB/s on a file damaged
      // every other frame.
      const win: FindWindow = { at: pos, n: have };
      const nextFrame = async (from: number): Promise<number> => {
        if (win.at >= 0 && from >= win.at && from < win.at + win.n) {
          const hit = scanner.resync(from - win.at, win.n);
          const cut = scanner.resyncCut(); // a candidate before `hit` that runs past the bytes held
          // Held to the end of the file: a candidate cut there is no frame, and there is no more.
          if (win.at + win.n >= size) return hit >= 0 ? win.at + hit : -1;
          if (hit >= 0 && cut < 0) return win.at + hit;
        }
        return await findNextFrame(scanner, file, from, size, win, path);
      };
      // Where valid records resume after the damage (-1: none, a torn tail), and for a zeroed
      // frame header whether zeros run to the end. Reads only: a file that gets shorter meanwhile
      // throws FileShrankError before anything is decided.
      const decide = async (): Promise<{ next: number; zeroed: boolean; otherSalt: number | null }> => {
        const first = await nextFrame(damageAt + 8);
        let next = first;
        if (next >= 0 && claimedEnd !== null && next < claimedEnd) {
          // A valid frame inside the damaged frame's own extent may be bytes of its payload: a
          // node name can hold anything, a whole frame included. A valid frame at or past that
          // extent proves records after the damage.
          next = await nextFrame(claimedEnd);
          // None there (the extent runs to or past the end of the file, or ends inside the
          // last frame). A frame whose header word is sound (type, flags, reserved and length
          // as a writer writes them: the scan stopped at its checksum or at the end of the file)
          // and whose extent reaches the end of the file is the torn last append, whatever its
          // payload holds: a node name can hold frames that end where the file ends, and where
          // it ends is not chance (a crash or a reader's look at a growing file cuts at a page
          // boundary, which a crafted name can aim at: a reader reported corruption, and salvage
          // a node the log never had). A damaged header word, which no tear leaves (the word is
          // aligned), proves damage: then the frames inside its extent are records if they run
          // on to the very end of the file (or to zeros), past any further damage. So does a
          // sound one whose extent ends inside the file (a damaged length), except where its
          // extent ends in a tail of zeros: a crash that zeroes the sectors after a tear leaves
          // a sound torn frame like that, and a name's frames that end where the zeros start.
          // There, they count only if they run to the very end of the file.
          const sound = r.status === ScanStatus.incomplete || r.status === ScanStatus.badCrc;
          if (next < 0 && !(sound && claimedEnd >= size)) {
            const exact = sound && await zerosToEnd(file, claimedEnd, size, path);
            if (await framesReachEnd(scanner, file, first, size, exact ? reachesExactly : reaches, !exact)) {
              next = first;
              win.at = -1; // the walk reused the buffer
              reason = `${reason}, and a length that runs over the frames after it`;
            }
          }
        }
        // A zeroed tail is how a preallocated or extended-but-unwritten file ends, in every
        // mode; a type byte of 0 before bytes that are not is damage.
        const zeroed = next < 0 && r.status === ScanStatus.zero &&
          await zerosToEnd(file, damageAt, size, path);
        // No frame of this file's salt after the damage: if frames of one other salt begin right
        // after it (past the damaged frame's own extent, inside which a node name's bytes prove
        // nothing), run to the end of the file, take more than one record can and more than all
        // that comes before the damage, then the part before it is more likely another file's
        // (a misdirected write of its first blocks, header included: session 16 saw a default
        // open cut every record after one as a torn tail) than the rest a tear. Else a torn tail
        // it stays: a crash can leave stale blocks, or junk of any shape, in an unsynced tail,
        // and a faulty sector can hide the extent a name's frames lie in.
        // At most SALT_SWITCHES_MAX times in one replay.
        if (next < 0 && !zeroed && switches < SALT_SWITCHES_MAX) {
          const from = claimedEnd !== null && claimedEnd > damageAt ? claimedEnd : damageAt + 8;
          const other = from < size
            ? await findChain(
              scanner,
              file,
              from,
              Math.min(size, from + SERF_FRAME_SIZE_MAX + 16),
              size,
              path,
            )
            : null;
          win.at = -1; // the search reused the buffer
          // More frames than one record holds (a node name's can fill one record, no more), and
          // than the part before them; but where the header was damaged its salt was a guess, and
          // salvage reads on under any other salt that runs to the end.
          // Under salt 0 (a version 1 header) a member can compute the checksums of the writer's
          // own frame headers, so its names' frames can run on over one into the next record
          // (any complete writer's frame in between would be a record of salt 0 after the
          // damage, and a torn one ends the file): two records' worth, not one (a review forged
          // such a run over two records).
          const oneRun = (salt === 0 ? 2 : 1) * SERF_FRAME_SIZE_MAX + 1;
          const minBytes = saltRecovered ? 0 : Math.max(oneRun, damageAt - FILE_HEADER_BYTES + 1);
          if (
            other !== null && await chainReachesEnd(scanner, file, other.at, size, path, other.salt, minBytes)
          ) {
            return { next: other.at, zeroed, otherSalt: other.salt };
          }
        }
        return { next, zeroed, otherSalt: null };
      };
      let decided: { next: number; zeroed: boolean; otherSalt: number | null };
      try {
        decided = await decide();
      } catch (e) {
        if (!(e instanceof FileShrankError)) throw e;
        // The file got shorter (a log's open cut a torn tail under this reader): scan again
        // from the damage with the new end, as a replay of the shorter file would.
        size = Math.min(size, e.at);
        result.bytes = size;
        pos = damageAt;
        have = 0;
        start = 0;
        ahead.forget(size); // chunks read before the cut hold what the cut took
        continue;
      }
      const { next, zeroed, otherSalt } = decided;
      if (next < 0) {
        if (r.status === ScanStatus.zero && !zeroed) reason = "type 0 before bytes that are not zero";
        result.goodEnd = damageAt;
        result.tornTailBytes = size - damageAt;
        result.tornReason = zeroed
          ? "zeroed tail"
          : r.status === ScanStatus.incomplete
          ? reason
          : `torn last frame (${reason})`;
        if (recovery === "strict" && !zeroed) throw new CorruptionError(path, damageAt, reason);
        return result;
      }
      if (recovery !== "salvage") {
        throw new CorruptionError(
          path,
          damageAt,
          otherSalt === null
            ? `${reason}; valid records resume at offset ${next}`
            : `${reason}; records of another salt resume at offset ${next} (a block of another file written here, or a header that is another file's)`,
        );
      }
      skip({
        offset: damageAt,
        bytes: next - damageAt,
        reason: otherSalt === null ? reason : `${reason}, then another salt`,
      });
      if (otherSalt !== null) {
        // Salvage reads on under the salt the frames after the damage agree on (the answers
        // cached under the old one no longer hold).
        switches++;
        result.saltSwitches = switches;
        salt = otherSalt;
        scanner.salt = salt;
        result.salt = salt; // where a replay in segments goes on from (read_records.ts, _parallel.ts)
        reaches.clear();
        reachesExactly.clear();
      }
      if (win.at >= 0 && next >= win.at && next < win.at + win.n) {
        pos = win.at;
        have = win.n;
        start = next - win.at;
      } else {
        pos = next;
        have = 0;
        start = 0;
      }
    }
  } finally {
    scanner.free();
  }
}

/**
 * Checksum bytes {@link recoverSalt} computes on slots outside chains at full size (64 MiB,
 * plus twice the file); past that it tries only slots whose frame is at most
 * {@link SALT_CHEAP_FRAME_BYTES}, so hostile or damaged bytes cannot make it slow.
 */
const SALT_CHECK_BUDGET_BYTES = 64 << 20;
const SALT_CHEAP_FRAME_BYTES = 4096;

/**
 * The salt of a file whose header is damaged or lost, from its frames, each of which gives its
 * salt back (stored field XOR checksum). One pass over the file, slot by slot: a slot that
 * could hold a frame implies a salt, and the frames that run on from it back to back under
 * that salt form a chain, whose bytes count for the salt and are skipped. The file's salt is
 * the header's own salt field where some frame checks out under it (most damage to a header
 * leaves that field; a random field matches one in 2^32), else the salt with the most bytes
 * in chains of two frames or more, else the one with the most bytes of frames alone (a file
 * of one record), else 0 (version 1). A node name can hold a chain under a salt its author
 * picked, but it is found only where damage took the name's own frame's start (else the
 * chain around it covers it), and it holds at most the name's bytes; a damaged frame
 * implies a salt of its own, for itself alone. So the file's frames outweigh both but in a
 * file of little more than one hostile record. Stops early once one salt holds more than
 * half the file's bytes.
 */
async function recoverSalt(
  scanner: FrameScanner,
  file: FileHandle,
  size: number,
  path: string,
  headerSalt: number,
): Promise<number> {
  if (size < FILE_HEADER_BYTES + 16) return headerSalt;
  // The header's own salt field, where the frame after the header checks out under it (one
  // window: the replay that follows walks the rest; a walk here read the whole file twice).
  if (headerSalt !== 0) {
    const len = Math.min(scanner.capacity, size - FILE_HEADER_BYTES);
    await readFull(file, scanner.buffer().subarray(0, len), FILE_HEADER_BYTES, path);
    const saved = scanner.salt;
    scanner.salt = headerSalt;
    const first = scanner.scan(0, len, false);
    scanner.salt = saved;
    if (first.count > 0) return headerSalt;
  }
  const inChains = new Map<number, number>();
  const alone = new Map<number, number>();
  const add = (m: Map<number, number>, salt: number, bytes: number): number => {
    const total = (m.get(salt) ?? 0) + bytes;
    m.set(salt, total);
    return total;
  };
  let budget = SALT_CHECK_BUDGET_BYTES + 2 * size;
  const saved = scanner.salt;
  const win = new SlotWindow(scanner, file, size, path);
  let pos = FILE_HEADER_BYTES; // the next slot
  try {
    while (pos + 16 <= size) {
      const i = await win.hold(pos);
      if (win.zerosToEnd(i)) {
        pos = win.at + win.len;
        continue;
      }
      const buf = scanner.buffer();
      const length = soundHeaderLength(win.view, i);
      const fsz = frameSize(length);
      if (length < 0 || i + fsz > win.len || (budget < 0 && fsz > SALT_CHEAP_FRAME_BYTES)) {
        pos += 8;
        continue;
      }
      budget -= fsz;
      const salt = scanner.saltOf(i, win.len);
      if (salt < 0) {
        pos += 8;
        continue;
      }
      // A frame the same byte for byte as the next or the one before implies one salt whatever
      // it is (repeated junk): no evidence at all, neither a chain nor a frame alone.
      const same = (j: number): boolean =>
        j >= 0 && j + fsz <= win.len && buf.subarray(i, i + fsz).every((b, k) => b === buf[j + k]);
      if (same(i + fsz) || same(i - fsz)) {
        pos += 8;
        continue;
      }
      // Walk on under that salt: in the window, then (for a chain the window cuts) read on.
      // The walk's checksums count against the budget too; past it, only short frames.
      scanner.salt = salt;
      const limit = budget < 0 ? SALT_CHEAP_FRAME_BYTES - FRAME_HEADER_BYTES : SERF_RECORD_SIZE_MAX; // payloads
      const r = scanner.scan(i, win.len, false, limit);
      let frames = r.count;
      let end = win.at + r.offset;
      const cut = (r.status === ScanStatus.end || r.status === ScanStatus.incomplete) &&
        win.at + win.len < size;
      if (cut) {
        const more = await chainFrom(scanner, file, end, size, path, limit);
        frames += more.frames;
        end = more.end;
        win.drop(); // the walk reused the buffer
      }
      budget -= end - pos - fsz;
      if (frames >= 2) {
        // Early answers, but not past a header salt field that some frame may still check out under.
        const early = headerSalt === 0 || salt === headerSalt;
        if (early && pos === FILE_HEADER_BYTES && end === size) return salt; // one chain: the whole file
        if (2 * add(inChains, salt, end - pos) > size && early) return salt;
        pos = end;
      } else {
        add(alone, salt, end - pos);
        pos += 8; // one frame alone may be chance (damage): look inside it too
      }
    }
  } finally {
    scanner.salt = saved;
  }
  if (headerSalt !== 0 && (inChains.has(headerSalt) || alone.has(headerSalt))) return headerSalt;
  for (const m of [inChains, alone]) {
    let best = -1;
    let most = 0;
    for (const [salt, bytes] of m) {
      if (bytes > most) {
        best = salt;
        most = bytes;
      }
    }
    if (best >= 0) return best;
  }
  return 0;
}

/**
 * The payload length in the header word at `view[i]` if a writer could have written that word
 * (a serf record type, flags and reserved 0, a length within the limit), else -1.
 */
export function soundHeaderLength(view: DataView, i: number): number {
  const word = view.getUint32(i, true);
  const type = word & 0xff;
  const length = view.getUint32(i + 4, true);
  const sound = type !== 0 && type <= RecordType.comment && (word & 0xffffff00) === 0 &&
    length <= SERF_RECORD_SIZE_MAX;
  return sound ? length : -1;
}

/**
 * File bytes read slot by slot into the scanner's buffer ({@link recoverSalt}, findChain): a
 * window that holds the largest frame a slot could start, read again only when a slot needs it.
 */
class SlotWindow {
  /** File offset of the buffer's first byte (-1: nothing held). */
  at = -1;
  /** Bytes held. */
  len = 0;
  #zerosChecked = -1;
  #view: DataView | null = null;
  readonly #scanner: FrameScanner;
  readonly #file: FileHandle;
  readonly #size: number;
  readonly #path: string;
  constructor(scanner: FrameScanner, file: FileHandle, size: number, path: string) {
    this.#scanner = scanner;
    this.#file = file;
    this.#size = size;
    this.#path = path;
  }
  /** Reads on where the largest frame that could start at `pos` is not held; returns `pos`'s index. */
  async hold(pos: number): Promise<number> {
    if (this.at < 0 || pos + SERF_FRAME_SIZE_MAX > this.at + this.len && this.at + this.len < this.#size) {
      this.at = pos;
      this.len = Math.min(this.#scanner.capacity, this.#size - pos);
      await readFull(this.#file, this.#scanner.buffer().subarray(0, this.len), pos, this.#path);
      this.#view = null;
    }
    return pos - this.at;
  }
  /** The held bytes (a view into Wasm memory, made again after a read or the memory's growth). */
  get view(): DataView {
    if (this.#view === null || this.#view.buffer.byteLength === 0 || this.#view.byteLength !== this.len) {
      const buf = this.#scanner.buffer();
      this.#view = new DataView(buf.buffer, buf.byteOffset, this.len);
    }
    return this.#view;
  }
  /**
   * True if the held bytes are zeros from index `i` to the window's end, where a slot of zeros
   * starts; checked once a window, so a zero region before data costs no scan per slot.
   */
  zerosToEnd(i: number): boolean {
    const v = this.view;
    if (v.getUint32(i, true) !== 0 || v.getUint32(i + 4, true) !== 0 || this.#zerosChecked === this.at) {
      return false;
    }
    this.#zerosChecked = this.at;
    return this.#scanner.allZero(i, this.len);
  }
  /** Forgets what is held (another reader used the buffer). */
  drop(): void {
    this.at = -1;
  }
}

/**
 * Walks the frames from `at` (8-aligned) that check out under the scanner's salt, back to
 * back, reading the file in windows: how many, and where they stop.
 */
async function chainFrom(
  scanner: FrameScanner,
  file: FileHandle,
  at: number,
  size: number,
  path: string,
  recordSizeMax: number,
): Promise<{ frames: number; end: number }> {
  let frames = 0;
  let pos = at;
  while (true) {
    const len = Math.min(scanner.capacity, size - pos);
    if (len <= 0) return { frames, end: pos };
    await readFull(file, scanner.buffer().subarray(0, len), pos, path);
    const r = scanner.scan(0, len, false, recordSizeMax);
    frames += r.count;
    const last = pos + len === size;
    if ((r.status === ScanStatus.end || r.status === ScanStatus.incomplete) && !last && r.offset > 0) {
      pos += r.offset; // a frame cut by the window: read on from it
      continue;
    }
    return { frames, end: pos + r.offset };
  }
}

/**
 * The first place at or after `from` where two frames in a row check out under one salt, and
 * that salt; null if there is none. After damage with no frame of the file's own salt behind
 * it: frames of another salt (a block of another file written here, a header that is another
 * file's) are no torn tail, and cutting them would cut whatever follows them. Checksums
 * bounded as in {@link recoverSalt}.
 */
async function findChain(
  scanner: FrameScanner,
  file: FileHandle,
  from: number,
  limit: number,
  size: number,
  path: string,
): Promise<{ at: number; salt: number } | null> {
  let budget = SALT_CHECK_BUDGET_BYTES;
  const win = new SlotWindow(scanner, file, size, path);
  let pos = from + ((8 - (from % 8)) % 8);
  while (pos + 16 <= size && pos < limit) {
    const i = await win.hold(pos);
    if (win.zerosToEnd(i)) {
      pos = win.at + win.len;
      continue;
    }
    const buf = scanner.buffer();
    /** The salt the frame at buf[j] checks out under, or -1. */
    const saltAt = (j: number): number => {
      if (j + 16 > win.len) return -1;
      const length = soundHeaderLength(win.view, j);
      const fsz = frameSize(length);
      if (length < 0 || j + fsz > win.len || (budget < 0 && fsz > SALT_CHEAP_FRAME_BYTES)) return -1;
      budget -= fsz;
      return scanner.saltOf(j, win.len);
    };
    const salt = saltAt(i);
    if (salt >= 0) {
      const next = i + frameSize(win.view.getUint32(i + 4, true));
      if (next + SERF_FRAME_SIZE_MAX > win.len && win.at + win.len < size && i > 0) {
        win.drop(); // the window may cut the next frame: read again from here
        continue;
      }
      // Two byte-identical frames imply one salt whatever it is: repeated junk is no evidence.
      const sameBytes = next + (next - i) <= win.len &&
        buf.subarray(i, next).every((b, k) => b === buf[next + k]);
      if (!sameBytes && saltAt(next) === salt) return { at: pos, salt };
    }
    pos += 8;
  }
  return null;
}

/** Switches to another salt one salvage replay makes at most (each one a walk to the end). */
const SALT_SWITCHES_MAX = 8;

/** Damaged stretches {@link chainReachesEnd} walks past before it gives up. */
const CHAIN_GAPS_MAX = 64;

/** True if the file ends at `end`: exactly, in a tail of zeros, or in a torn last frame. */
async function endsLog(file: FileHandle, end: number, size: number, path: string): Promise<boolean> {
  if (end >= size) return true;
  if (end + 8 <= size) {
    const word = new Uint8Array(8);
    await readFull(file, word, end, path);
    const length = soundHeaderLength(new DataView(word.buffer), 0);
    if (length >= 0 && end + frameSize(length) > size) return true; // a torn last frame
  }
  return await zerosToEnd(file, end, size, path);
}

/**
 * True if frames under `salt` run from `at` to the end of the file (exactly, to a tail of
 * zeros, or to a torn last frame: a header word a writer writes, running past the end), in
 * runs back to back with damaged stretches between them, one of which takes `minBytes`.
 */
async function chainReachesEnd(
  scanner: FrameScanner,
  file: FileHandle,
  at: number,
  size: number,
  path: string,
  salt: number,
  minBytes: number,
): Promise<boolean> {
  const saved = scanner.salt;
  scanner.salt = salt;
  try {
    // Runs of frames back to back, damaged stretches between them (a second fault after
    // another file's blocks must not make their salt's records a torn tail: a review lost a
    // 700 KB file to one bit flip that way), but one run alone must take `minBytes`: runs that
    // only add up past it can be several records' names, each with a faulty sector over its
    // own frame. At most CHAIN_GAPS_MAX stretches: each costs a window's read.
    let longest = 0;
    let pos = at;
    for (let gaps = 0;; gaps++) {
      const { end } = await chainFrom(scanner, file, pos, size, path, SERF_RECORD_SIZE_MAX);
      longest = Math.max(longest, end - pos);
      if (await endsLog(file, end, size, path)) return longest >= minBytes;
      if (gaps === CHAIN_GAPS_MAX) return false;
      const next = await findNextFrame(scanner, file, end + 8, size);
      if (next < 0) {
        // Nothing of this salt after it: the end, if a torn last frame (a header word a writer
        // writes, cut off) stops the run, followed by junk near the end of the file or by zeros
        // to it (a crash can leave megabytes of an extended file unwritten). Not junk far from
        // the end: a salvage then switched salts once a region, each switch a scan to the end.
        const word = new Uint8Array(8);
        if (end + 8 > size) return false;
        await readFull(file, word, end, path);
        if (soundHeaderLength(new DataView(word.buffer), 0) < 0 || longest < minBytes) return false;
        if (size - end <= 2 * SERF_FRAME_SIZE_MAX) return true;
        return await zerosToEnd(file, end + SERF_FRAME_SIZE_MAX + 16, size, path);
      }
      pos = next;
    }
  } finally {
    scanner.salt = saved;
  }
}

/**
 * File offset where the frame whose bytes start `head` (at file offset `at`) ends by the length
 * in its header, or null if that length is over the record limit (or fewer than 8 bytes are at
 * hand). The type, flags and reserved bytes are not consulted: when one of them is the damaged
 * byte the length is still the frame's, and without it the search for the next frame would
 * land inside this frame's payload, where a node name can hold a whole valid frame.
 */
function claimedFrameEnd(head: Uint8Array, at: number): number | null {
  if (head.length < 8) return null;
  const length = new DataView(head.buffer, head.byteOffset, 8).getUint32(4, true);
  return length > SERF_RECORD_SIZE_MAX ? null : at + frameSize(length);
}

/**
 * True if valid frames from `from` (where one starts) reach the end of the file: back to back,
 * but for stretches of damage each followed by a valid frame, with the last one ending exactly
 * at the end of the file or (if `zerosEnd`) at a tail of zeros. `known` caches answers by
 * start, one map for each value of `zerosEnd`.
 */
async function framesReachEnd(
  scanner: FrameScanner,
  file: FileHandle,
  from: number,
  size: number,
  known: Map<number, boolean>,
  zerosEnd: boolean,
): Promise<boolean> {
  // Every frame a stretch starts from reaches the end exactly when the walk does: remember
  // them all with the answer.
  const starts: number[] = [];
  const answer = (reaches: boolean): boolean => {
    for (const s of starts) known.set(s, reaches);
    return reaches;
  };
  let pos = from; // 8-aligned: where a frame starts
  while (pos < size) {
    const seen = known.get(pos);
    if (seen !== undefined) return answer(seen);
    starts.push(pos);
    const len = Math.min(scanner.capacity, size - pos);
    await readFull(file, scanner.buffer().subarray(0, len), pos, "");
    const r = scanner.scan(0, len, false);
    const last = pos + len === size;
    if (r.status === ScanStatus.end && last) return answer(true);
    if (r.status === ScanStatus.zero && zerosEnd && await zerosToEnd(file, pos + r.offset, size, "")) {
      return answer(true);
    }
    // A window that ends on a frame boundary, or cuts a frame (the buffer holds two maximal
    // frames, so one was whole before it): read on from there.
    if ((r.status === ScanStatus.end || r.status === ScanStatus.incomplete) && !last && r.offset > 0) {
      pos += r.offset;
      continue;
    }
    // Damage (or a torn frame at the very end): frames after it, if any, decide.
    const next = await findNextFrame(scanner, file, pos + r.offset + 8, size);
    if (next < 0) return answer(false);
    pos = next;
  }
  return answer(true);
}

/** True if bytes `from` to `size` of `file` are all zero (a tail of unwritten space). */
export async function zerosToEnd(
  file: FileHandle,
  from: number,
  size: number,
  path: string,
): Promise<boolean> {
  const buf = new Uint8Array(Math.min(64 << 10, Math.max(0, size - from)));
  for (let at = from; at < size; at += buf.length) {
    const chunk = buf.subarray(0, Math.min(buf.length, size - at));
    await readFull(file, chunk, at, path);
    if (chunk.some((b) => b !== 0)) return false;
  }
  return true;
}

/** The first window findNextFrame reads: the next frame is usually a few bytes away. */
const FIND_WINDOW_MIN = 4096;

/** Where findNextFrame's last hit was read: the scanner's buffer holds file bytes `[at, at + n)`. */
export interface FindWindow {
  at: number;
  n: number;
}

/**
 * The file offset of the first valid frame at or after `from` (8-aligned), or -1. Reads a
 * small window first and doubles it (up to the scanner's capacity) while it finds nothing,
 * so a frame a few bytes on costs a few KiB, not a MiB; a candidate cut by a window's end is
 * read again from its start before any later hit is taken. On a hit, `win` (if given) says
 * where the buffer's bytes are from, so the caller can scan on from them; `win.at` is -1
 * otherwise.
 */
export async function findNextFrame(
  scanner: FrameScanner,
  file: FileHandle,
  from: number,
  size: number,
  win?: FindWindow,
  path = "",
): Promise<number> {
  if (win) win.at = -1;
  let w = from + ((8 - (from % 8)) % 8);
  const cap = scanner.capacity;
  let want = Math.min(FIND_WINDOW_MIN, cap);
  while (w + FRAME_HEADER_BYTES <= size) {
    const len = Math.min(want, size - w);
    const buf = scanner.buffer();
    await readFull(file, buf.subarray(0, len), w, path);
    const hit = scanner.resync(0, len);
    const cut = scanner.resyncCut(); // before `hit`, if both
    const last = w + len >= size;
    if (hit >= 0 && (cut < 0 || last)) {
      if (win) {
        win.at = w;
        win.n = len;
      }
      return w + hit;
    }
    if (last) break;
    // Nothing whole in the window: read on from the first candidate it cut (with more room
    // if that is where it began), or from its end.
    if (cut > 0) w += cut;
    else if (cut < 0) w += len; // stays 8-aligned: len = want, a multiple of 8
    else if (want >= cap) w += 8; // (cannot happen: a whole frame fits the capacity twice)
    want = Math.min(cap, want * 2);
  }
  return -1;
}

/** A read met the end of the file before the size it was known to have: it got shorter. */
export class FileShrankError extends Error {
  /** Where the read found the end. */
  readonly at: number;
  constructor(path: string, at: number) {
    super(`Cannot read "${path}": unexpected end of file at offset ${at}`);
    this.name = "FileShrankError";
    this.at = at;
  }
}

/** Reads exactly `buf.length` bytes at `position`; {@link FileShrankError} if the file ends first. */
export async function readFull(
  file: FileHandle,
  buf: Uint8Array,
  position: number,
  path: string,
): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off), position + off);
    if (n === 0) throw new FileShrankError(path, position + off);
    off += n;
  }
}

export { FileKind };
