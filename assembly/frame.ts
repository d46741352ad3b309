// Record frames: the unit of every snaplog log file (README "Frame format").
//
//   0      1      2      3      4      5      6      7      8
//   +------+------+------+------+------+------+------+------+
//   | type | flags| reserved    | length (u32 LE)           |
//   +------+------+------+------+------+------+------+------+
//   | crc32c (u32 LE)           | payload (length bytes) ...
//   +------+------+------+------+------ ... ------+----------+
//   | ... payload              | zero padding to 8 bytes    |
//   +------ ... ---------------+----------------------------+
//
// - type 0 is invalid: a zeroed or preallocated tail reads as the end of the log.
// - flags and reserved are 0 in format version 1; anything else is a bad header.
// - crc32c covers the whole frame, padding included, with its own field read as zero,
//   so a flipped type, length or padding byte is caught as well as flipped payload bytes,
//   and the checksum runs over whole 8-byte words: no byte-at-a-time tail per record.
// - The stored field is that checksum XOR the file's salt (a random u32 in the version 2
//   file header; 0 in version 1): a frame that a node name holds, or one left by another
//   file, fails against a salt its author could not know. Every function that checks or
//   writes a checksum takes the salt as its last argument.
// - Every frame starts on an 8-byte boundary (as etcd's WAL): type and length
//   share one aligned 8-byte word, which a torn sector write cannot split.

import { crcRaw, crcStep16Z } from "./crc32c";
import { copyBytes, zeroSmall } from "./mem";

export const FRAME_HEADER: u32 = 12;

// Scan statuses. The host mirrors these in src/core/frame.ts.
export const SCAN_END: u32 = 0; //        consumed the whole buffer, stopped on a frame boundary
export const SCAN_INCOMPLETE: u32 = 1; // the frame at the stop offset runs past the buffer end
export const SCAN_ZERO: u32 = 2; //       type 0 at the stop offset (end of log, or a zeroed region)
export const SCAN_BAD_CRC: u32 = 3; //    checksum mismatch
export const SCAN_BAD_LENGTH: u32 = 4; // length above the maximum record size
export const SCAN_BAD_TYPE: u32 = 5; //   type not in the caller's type mask
export const SCAN_BAD_HEADER: u32 = 6; // non-zero flags or reserved bytes
export const SCAN_INDEX_FULL: u32 = 7; // the index output is full; resume at the stop offset

let scanOffset: u32 = 0;
let scanCount: u32 = 0;
let scanFrameEnd: u32 = 0;

/** Offset (relative to the scanned buffer) where the last scan stopped. */
export function scan_offset(): u32 {
  return scanOffset;
}
/** Number of good frames the last scan accepted. */
export function scan_count(): u32 {
  return scanCount;
}
/**
 * For SCAN_BAD_CRC and SCAN_INCOMPLETE: the offset just past the damaged or incomplete
 * frame as its (untrusted) length field claims. Lets the host tell a torn tail
 * (nothing valid after it) from corruption in the middle.
 */
export function scan_frame_end(): u32 {
  return scanFrameEnd;
}

// @ts-ignore: decorator
@inline export function frame_size(length: u32): u32 {
  return (FRAME_HEADER + length + 7) & ~7;
}

/** The checksum of the `frame_size(length)`-byte frame at `frame`, its CRC field read as zero. */
// @ts-ignore: decorator
@inline function frameCrc(frame: usize, length: u32): u32 {
  // Bytes 0..16 in one step: type/flags/reserved, length, the CRC field (as zero), and the
  // first four bytes of payload or padding. Then whole 16- and 8-byte steps to the end.
  const c = crcStep16Z(0xffffffff, load<u32>(frame), load<u32>(frame, 4), load<u32>(frame, 12));
  return ~crcRaw(c, frame + 16, frame_size(length) - 16);
}

/**
 * Validates frames in `[ptr, ptr + len)` in one pass, writing one index entry per good frame
 * (three u32: payload offset relative to `ptr`, payload length, type) to `indexPtr`, at most
 * `indexCap` entries (0 = validate only, no index). `typeMask` bit `t` allows type `t`
 * (types 1..31). Returns a SCAN_* status; `scan_offset()` and `scan_count()` say where and how far.
 * `ptr` must be 8-byte aligned relative to the start of the frame region.
 */
export function frames_scan(
  ptr: usize,
  len: u32,
  typeMask: u32,
  recordSizeMax: u32,
  indexPtr: usize,
  indexCap: u32,
  salt: u32,
): u32 {
  let off: u32 = 0;
  let count: u32 = 0;
  let status = SCAN_END;
  const wantIndex = indexCap != 0;
  while (off != len) {
    const size = frame_check(ptr, off, len, typeMask, recordSizeMax, salt);
    if (size < 0) {
      status = <u32> -size;
      break;
    }
    if (wantIndex) {
      if (count == indexCap) {
        status = SCAN_INDEX_FULL;
        break;
      }
      const word = load<u64>(ptr + off);
      const e = indexPtr + (<usize> count) * 12;
      store<u32>(e, off + FRAME_HEADER);
      store<u32>(e, <u32> (word >>> 32), 4);
      store<u32>(e, <u32> (word & 0xff), 8);
    }
    count++;
    off += <u32> size;
  }
  scanOffset = off;
  scanCount = count;
  return status;
}

/**
 * Checks the frame at `ptr + off` (with `len - off` bytes present): header, type, length
 * against the limit and the bytes present, then the CRC. Returns the frame's size, or the
 * negated SCAN_* status (setting `scan_frame_end` where it applies). Shared by `frames_scan`
 * and the fused scan-and-apply passes (assembly/serf_binary.ts), so there is one validator.
 */
// @ts-ignore: decorator
@inline export function frame_check(
  ptr: usize,
  off: u32,
  len: u32,
  typeMask: u32,
  recordSizeMax: u32,
  salt: u32,
): i32 {
  if (len - off < 8) {
    // Not even the type/length word is here; a zero byte still means "end of log".
    scanFrameEnd = len;
    return load<u8>(ptr + off) == 0 ? -<i32> SCAN_ZERO : -<i32> SCAN_INCOMPLETE;
  }
  const word = load<u64>(ptr + off);
  const type = <u32> (word & 0xff);
  if (type == 0) return -<i32> SCAN_ZERO;
  if ((word & 0xffffff00) != 0) return -<i32> SCAN_BAD_HEADER;
  if (type > 31 || ((typeMask >>> type) & 1) == 0) return -<i32> SCAN_BAD_TYPE;
  const length = <u32> (word >>> 32);
  if (length > recordSizeMax) return -<i32> SCAN_BAD_LENGTH;
  const size = frame_size(length);
  // 64-bit compare: off + size cannot overflow a u32 check this way.
  if (<u64> off + <u64> size > <u64> len) {
    // Never read past the bytes present: the length is not trusted yet.
    scanFrameEnd = off + size;
    return -<i32> SCAN_INCOMPLETE;
  }
  const frame = ptr + off;
  if ((frameCrc(frame, length) ^ salt) != load<u32>(frame, 8)) {
    scanFrameEnd = off + size;
    return -<i32> SCAN_BAD_CRC;
  }
  return <i32> size;
}

/** Records where a fused scan (another module's loop over `frame_check`) stopped. */
export function scan_set_result(offset: u32, count: u32): void {
  scanOffset = offset;
  scanCount = count;
}

/** The first candidate the last frames_resync skipped because its frame ran past `len`, or -1. */
let resyncCut: i32 = -1;

/**
 * Finds the first 8-aligned offset `o >= from` in `[ptr, ptr + len)` where a complete frame
 * with a good checksum starts. Returns that offset, or -1 if there is none. Used after damage:
 * a valid frame after the damage means corruption in the middle, none means a torn tail; the
 * salvage recovery mode resumes there. Candidates whose frame would run past `len` (a header
 * that could be a frame's) are skipped, and the first of them is kept for resync_cut: the
 * host reads on from there before it takes a later hit.
 */
export function frames_resync(
  ptr: usize,
  len: u32,
  from: u32,
  typeMask: u32,
  recordSizeMax: u32,
  salt: u32,
): i32 {
  resyncCut = -1;
  let off = (from + 7) & ~7;
  while (<u64> off + 8 <= <u64> len) {
    const word = load<u64>(ptr + off);
    const type = <u32> (word & 0xff);
    if (
      type != 0 && type <= 31 && ((typeMask >>> type) & 1) != 0 && (word & 0xffffff00) == 0
    ) {
      const length = <u32> (word >>> 32);
      if (length <= recordSizeMax) {
        const size = frame_size(length);
        if (<u64> off + <u64> size <= <u64> len) {
          if ((frameCrc(ptr + off, length) ^ salt) == load<u32>(ptr + off, 8)) return <i32> off;
        } else if (resyncCut < 0) {
          resyncCut = <i32> off;
        }
      }
    }
    off += 8;
  }
  return -1;
}

/** See frames_resync. */
export function resync_cut(): i32 {
  return resyncCut;
}

/** Returns 1 if all `len` bytes at `ptr` are zero, else 0. */
export function all_zero(ptr: usize, len: u32): u32 {
  let p = ptr;
  const end = ptr + len;
  while (p + 8 <= end) {
    if (load<u64>(p) != 0) return 0;
    p += 8;
  }
  while (p < end) {
    if (load<u8>(p) != 0) return 0;
    p++;
  }
  return 1;
}

// Encode statuses.
export const ENCODE_OK: u32 = 0;
export const ENCODE_FULL: u32 = 1; //       the output buffer is full; encode_count() records fit
export const ENCODE_BAD_TYPE: u32 = 2;
export const ENCODE_BAD_LENGTH: u32 = 3;

let encodeCount: u32 = 0;
let encodeBytes: u32 = 0;

/** Records encoded by the last `frames_encode`. */
export function encode_count(): u32 {
  return encodeCount;
}
/** Bytes written by the last `frames_encode` or `frames_seal`. */
export function encode_bytes(): u32 {
  return encodeBytes;
}

/**
 * Encodes `count` records into frames at `outPtr` (capacity `outCap` bytes) in one pass.
 * Each record is a descriptor of three u32 at `descPtr`: type, payload offset relative to
 * `srcBase`, payload length. Payload regions must not overlap the output.
 * Returns an ENCODE_* status; `encode_count()`/`encode_bytes()` say how much was written.
 */
export function frames_encode(
  descPtr: usize,
  count: u32,
  srcBase: usize,
  outPtr: usize,
  outCap: u32,
  recordSizeMax: u32,
  salt: u32,
): u32 {
  let out: u32 = 0;
  let i: u32 = 0;
  let status = ENCODE_OK;
  for (; i < count; i++) {
    const d = descPtr + (<usize> i) * 12;
    const type = load<u32>(d);
    const src = srcBase + <usize> load<u32>(d, 4);
    const length = load<u32>(d, 8);
    if (type == 0 || type > 31) {
      status = ENCODE_BAD_TYPE;
      break;
    }
    if (length > recordSizeMax) {
      status = ENCODE_BAD_LENGTH;
      break;
    }
    const size = frame_size(length);
    if (<u64> out + <u64> size > <u64> outCap) {
      status = ENCODE_FULL;
      break;
    }
    const f = outPtr + out;
    store<u64>(f, (<u64> length << 32) | <u64> type);
    copyBytes(f + FRAME_HEADER, src, length);
    // Zero the padding (at most 7 bytes) so the file never holds stale memory.
    const padStart = f + FRAME_HEADER + length;
    const padEnd = f + size;
    if (padStart < padEnd) zeroSmall(padStart, padEnd - padStart);
    store<u32>(f, frameCrc(f, length) ^ salt, 8);
    out += size;
  }
  encodeCount = i;
  encodeBytes = out;
  return status;
}

/**
 * Seals frames the host laid out in place at `[ptr, ptr + len)`: for each frame (type and
 * length already written, payload in place) writes the CRC and zeroes the padding. This is the
 * zero-copy path: the host writes each payload once, straight into its final place.
 * Returns an ENCODE_* status; `encode_bytes()` is the offset where sealing stopped.
 */
export function frames_seal(ptr: usize, len: u32, recordSizeMax: u32, salt: u32): u32 {
  let off: u32 = 0;
  let status = ENCODE_OK;
  while (off < len) {
    const size = frame_seal(ptr, off, len, recordSizeMax, salt);
    if (size < 0) {
      status = <u32> -size;
      break;
    }
    off += <u32> size;
  }
  encodeBytes = off;
  return status;
}

/**
 * Seals the frame the host laid out at `ptr + off` (`len - off` bytes present): checks its
 * header, zeroes its padding and stores its CRC. Returns the frame's size, or the negated
 * ENCODE_* status. Shared by `frames_seal` and the fused seal-and-apply pass
 * (assembly/serf_binary.ts).
 */
// @ts-ignore: decorator
@inline export function frame_seal(ptr: usize, off: u32, len: u32, recordSizeMax: u32, salt: u32): i32 {
  const word = load<u64>(ptr + off);
  const type = <u32> (word & 0xff);
  if (type == 0 || type > 31 || (word & 0xffffff00) != 0) return -<i32> ENCODE_BAD_TYPE;
  const length = <u32> (word >>> 32);
  if (length > recordSizeMax) return -<i32> ENCODE_BAD_LENGTH;
  const size = frame_size(length);
  if (<u64> off + <u64> size > <u64> len) return -<i32> ENCODE_FULL;
  const f = ptr + off;
  const padStart = f + FRAME_HEADER + length;
  const padEnd = f + size;
  if (padStart < padEnd) zeroSmall(padStart, padEnd - padStart);
  store<u32>(f, frameCrc(f, length) ^ salt, 8);
  return <i32> size;
}

/**
 * Completes a frame whose payload (`length` bytes) is already in place at `dst + 12`: writes the
 * header, zeroes the padding and stores the CRC. Returns the frame's size. For Wasm-side writers
 * (compaction) that build payloads from several pieces.
 */
export function frame_finish(dst: usize, type: u32, length: u32, salt: u32): u32 {
  store<u64>(dst, (<u64> length << 32) | <u64> type);
  const size = frame_size(length);
  const padStart = dst + FRAME_HEADER + length;
  const padEnd = dst + size;
  if (padStart < padEnd) zeroSmall(padStart, padEnd - padStart);
  store<u32>(dst, frameCrc(dst, length) ^ salt, 8);
  return size;
}

/**
 * The salt under which the frame at `ptr + off` (`len - off` bytes present) checks out: its
 * stored field XOR its checksum. -1 if no salt could make it a frame (a header word no writer
 * writes, a length over the limit or past the bytes present, padding that is not zero). A
 * file whose header is lost has its salt recovered this way (two frames in a row that agree).
 */
export function frame_salt_of(ptr: usize, off: u32, len: u32, typeMask: u32, recordSizeMax: u32): f64 {
  if (<u64> off + 16 > <u64> len) return -1;
  const word = load<u64>(ptr + off);
  const type = <u32> (word & 0xff);
  if (type == 0 || type > 31 || ((typeMask >>> type) & 1) == 0 || (word & 0xffffff00) != 0) return -1;
  const length = <u32> (word >>> 32);
  if (length > recordSizeMax) return -1;
  const size = frame_size(length);
  if (<u64> off + <u64> size > <u64> len) return -1;
  const f = ptr + off;
  for (let p = f + FRAME_HEADER + length; p < f + size; p++) if (load<u8>(p) != 0) return -1;
  // An f64 carries every u32 and the -1 to the host as a plain number.
  return <f64> (frameCrc(f, length) ^ load<u32>(f, 8));
}
