// The serf snapshot in snaplog's binary format: record payloads inside frames
// (assembly/frame.ts), applied to the replay state (assembly/serf_state.ts), and the
// compacted file written by assembly/compact.ts. README "Serf snapshot records".
//
//   type 1 alive        | nameLen u16 LE | name | addr (the rest)   |
//   type 2 not-alive    | name (whole payload)                      |
//   type 3 clock        | u64 LE                                    |
//   type 4 event-clock  | u64 LE                                    |
//   type 5 query-clock  | u64 LE                                    |
//   type 6 leave        | (empty)                                   |
//   type 7 coordinate   | opaque bytes, written and ignored on replay |
//   type 8 comment      | UTF-8 text, ignored on replay             |

import { FRAME_HEADER, frame_check, frame_seal, SCAN_END, scan_set_result } from "./frame";
import { state_alive, state_clock, state_leave, state_not_alive } from "./serf_state";

export const REC_ALIVE: u32 = 1;
export const REC_NOT_ALIVE: u32 = 2;
export const REC_CLOCK: u32 = 3;
export const REC_EVENT_CLOCK: u32 = 4;
export const REC_QUERY_CLOCK: u32 = 5;
export const REC_LEAVE: u32 = 6;
export const REC_COORDINATE: u32 = 7;
export const REC_COMMENT: u32 = 8;

export const APPLY_OK: u32 = 0;
export const APPLY_MALFORMED: u32 = 1; // a frame with a good CRC but an impossible payload
export const APPLY_NO_MEMORY: u32 = 2;

let applyOffset: u32 = 0;

/** Where the last `serf_seal_apply` stopped (relative to its `ptr`). */
export function serf_apply_offset(): u32 {
  return applyOffset;
}

/** `serf_seal_apply` returns this plus an APPLY_* status when a sealed frame could not be applied. */
export const SEAL_APPLY_FAILED: u32 = 100;

/**
 * The writer's pass: seals the frames the host laid out in `[ptr, ptr + len)` (as
 * `frames_seal`) and applies each to the state while it is in cache.
 * Returns an ENCODE_* status from sealing, or SEAL_APPLY_FAILED + an APPLY_* status;
 * `serf_apply_offset()` says how far it got: the frames before that offset are sealed and
 * applied, the frame at it may be sealed but is not applied.
 */
export function serf_seal_apply(ptr: usize, len: u32, recordSizeMax: u32, salt: u32): u32 {
  let off: u32 = 0;
  let status: u32 = 0;
  while (off < len) {
    const size = frame_seal(ptr, off, len, recordSizeMax, salt);
    if (size < 0) {
      status = <u32> -size;
      break;
    }
    const a = applyFrame(ptr + off);
    if (a != APPLY_OK) {
      status = SEAL_APPLY_FAILED + a;
      break;
    }
    off += <u32> size;
  }
  applyOffset = off;
  return status;
}

/** Applies one frame (already validated) to the state. Returns an APPLY_* status. */
// @ts-ignore: decorator
@inline function applyFrame(f: usize): u32 {
  const word = load<u64>(f);
  const type = <u32> (word & 0xff);
  const length = <u32> (word >>> 32);
  const p = f + FRAME_HEADER;
  if (type == REC_ALIVE) {
    if (length < 2) return APPLY_MALFORMED;
    const nameLen = <u32> load<u16>(p);
    if (nameLen + 2 > length) return APPLY_MALFORMED;
    if (state_alive(p + 2, nameLen, p + 2 + nameLen, length - 2 - nameLen) != 0) return APPLY_NO_MEMORY;
  } else if (type == REC_NOT_ALIVE) {
    state_not_alive(p, length);
  } else if (type >= REC_CLOCK && type <= REC_QUERY_CLOCK) {
    if (length != 8) return APPLY_MALFORMED;
    state_clock(type - REC_CLOCK, load<u64>(p));
  } else if (type == REC_LEAVE) {
    if (length != 0) return APPLY_MALFORMED;
    state_leave();
  } else if (type != REC_COORDINATE && type != REC_COMMENT) {
    return APPLY_MALFORMED;
  }
  return APPLY_OK;
}

/** SCAN_* status of the last `serf_scan_apply` when it stopped at a malformed or unappliable record. */
export const SCAN_APPLY_FAILED: u32 = 100;

/**
 * Replay's hot loop: validates each frame in `[ptr, ptr + len)` (`frame_check`: header,
 * limits, CRC) and applies it to the state at once, in one pass while the frame is in cache.
 * Returns the SCAN_* status where it stopped, with `scan_offset()`/`scan_count()` set as
 * `frames_scan` sets them; SCAN_APPLY_FAILED (with `serf_apply_status()`) when a frame with a
 * good CRC could not be applied.
 */
export function serf_scan_apply(ptr: usize, len: u32, recordSizeMax: u32, limit: u32, salt: u32): u32 {
  let off: u32 = 0;
  let n: u32 = 0;
  let status = SCAN_END;
  // `limit`: stop (SCAN_END) at the first frame boundary at or past it; 0xffffffff for none.
  while (off != len && off < limit) {
    const size = frame_check(ptr, off, len, SERF_TYPE_MASK, recordSizeMax, salt);
    if (size < 0) {
      status = <u32> -size;
      break;
    }
    const a = applyFrame(ptr + off);
    if (a != APPLY_OK) {
      lastApplyStatus = a;
      status = SCAN_APPLY_FAILED;
      break;
    }
    off += <u32> size;
    n++;
  }
  scan_set_result(off, n);
  return status;
}

let lastApplyStatus: u32 = APPLY_OK;

/** Why the last `serf_scan_apply` returned SCAN_APPLY_FAILED (an APPLY_* status). */
export function serf_apply_status(): u32 {
  return lastApplyStatus;
}

/** Frame types 1..8. */
const SERF_TYPE_MASK: u32 = 0b1_1111_1110;
