// Writes the compacted snapshot straight from the replay state, in either format, as serf's
// compact() does: the alive records (the table's slots in memory order, see serf_state.ts),
// then the member, event and query clocks, zeros included.
//
//   binary:  alive frames, then clock, event-clock, query-clock frames (assembly/serf_binary.ts)
//   go-text: `alive: NAME ADDR\n` lines, then `clock: N\n`, `event-clock: N\n`, `query-clock: N\n`

import { FRAME_HEADER, frame_finish, frame_size } from "./frame";
import { copyBytes } from "./mem";
import { REC_ALIVE, REC_CLOCK } from "./serf_binary";
import {
  state_clock_value,
  state_iter_addr_len,
  state_iter_addr_ptr,
  state_iter_name_len,
  state_iter_name_ptr,
  state_iter_next,
  state_iter_reset,
} from "./serf_state";

let phase: u32 = 0; //      0 = alive entries, 1..3 = the clocks, 4 = done
let pending: bool = false; // the iterator sits on an entry not yet written
let need: u32 = 0; //       bytes the pending entry needs when it did not fit an empty chunk

/**
 * After `compact_next` returned 0: 0 when the image is complete, else the chunk size the next
 * record needs (a go-text line longer than the chunk: names and addresses have no limit there
 * but the log's buffer size).
 */
export function compact_need(): u32 {
  return need;
}

/** Starts writing the compacted snapshot. */
export function compact_begin(): void {
  state_iter_reset();
  phase = 0;
  pending = false;
  need = 0;
}

function writeAscii(dst: usize, s: string): u32 {
  for (let i = 0; i < s.length; i++) store<u8>(dst + i, <u8>s.charCodeAt(i));
  return <u32>s.length;
}

/** Writes `v` in decimal at `dst`; returns the digit count (1..20). */
function writeU64(dst: usize, v: u64): u32 {
  let n: u32 = 1;
  let t = v;
  while (t >= 10) {
    t /= 10;
    n++;
  }
  let p = dst + n;
  do {
    p--;
    store<u8>(p, <u8>(48 + <u32>(v % 10)));
    v /= 10;
  } while (v != 0);
  return n;
}

/** Bytes the current alive entry takes in the output. */
// @ts-ignore: decorator
@inline function aliveSize(text: bool, nl: u32, al: u32): u32 {
  return text ? 7 + nl + 1 + al + 1 : frame_size(2 + nl + al); // "alive: " NAME " " ADDR "\n"
}

/**
 * Writes as many records as fit in `[out, out + cap)` — frames (checksums under `salt`), or
 * serf's text lines when `text` is 1 — and returns the byte count; 0 means done, unless `compact_need()` then asks for a
 * larger chunk (at least 40 bytes fit every clock record).
 */
export function compact_next(out: usize, cap: u32, text: u32, salt: u32): u32 {
  const asText = text != 0;
  let off: u32 = 0;
  need = 0;
  while (phase == 0) {
    if (!pending) {
      if (state_iter_next() == 0) {
        phase = 1;
        break;
      }
      pending = true;
    }
    const nl = state_iter_name_len();
    const al = state_iter_addr_len();
    const size = aliveSize(asText, nl, al);
    if (<u64>off + <u64>size > <u64>cap) {
      if (off == 0) need = size;
      return off;
    }
    if (asText) {
      let p = out + off;
      p += writeAscii(p, "alive: ");
      copyBytes(p, state_iter_name_ptr(), nl);
      p += nl;
      store<u8>(p++, 0x20);
      copyBytes(p, state_iter_addr_ptr(), al);
      store<u8>(p + al, 0x0a);
      off += size;
    } else {
      const p = out + off + FRAME_HEADER;
      store<u16>(p, <u16>nl);
      // The state keeps a node's name ++ address together (serf_state.ts): one copy.
      copyBytes(p + 2, state_iter_name_ptr(), nl + al);
      off += frame_finish(out + off, REC_ALIVE, 2 + nl + al, salt);
    }
    pending = false;
  }
  while (phase >= 1 && phase <= 3) {
    // 40 bytes cover the longest line ("event-clock: " + 20 digits + "\n") and a clock frame.
    if (<u64>off + 40 > <u64>cap) return off;
    const value = state_clock_value(phase - 1);
    if (asText) {
      let p = out + off;
      p += writeAscii(p, phase == 1 ? "clock: " : phase == 2 ? "event-clock: " : "query-clock: ");
      p += writeU64(p, value);
      store<u8>(p++, 0x0a);
      off = <u32>(p - out);
    } else {
      store<u64>(out + off + FRAME_HEADER, value);
      off += frame_finish(out + off, REC_CLOCK + phase - 1, 8, salt);
    }
    phase++;
  }
  return off;
}
