// Writes the compacted snapshot in serf's Go text format straight from the replay state,
// as serf's compact() does: `alive: NAME ADDR` lines (table order; serf uses Go map order),
// then `clock: N`, `event-clock: N`, `query-clock: N` (zeros included).

import {
  state_clock_value,
  state_iter_addr_len,
  state_iter_addr_ptr,
  state_iter_name_len,
  state_iter_name_ptr,
  state_iter_next,
  state_iter_reset_by_address,
} from "./serf_state";
import { copyBytes } from "./mem";

let phase: u32 = 0; //      0 = alive lines, 1..3 = the clocks, 4 = done
let pending: bool = false; // the iterator sits on an entry not yet written

/** Starts writing the compacted text snapshot. */
export function gotext_compact_begin(): void {
  state_iter_reset_by_address();
  phase = 0;
  pending = false;
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

/**
 * Writes as many lines as fit in `[out, out + cap)` and returns the byte count; 0 means done.
 * The host gives at least one maximal line of room (names and addresses are limited by the
 * record size, clocks by 20 digits).
 */
export function gotext_compact_next(out: usize, cap: u32): u32 {
  let off: u32 = 0;
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
    const len = 7 + nl + 1 + al + 1; // "alive: " NAME " " ADDR "\n"
    if (<u64>off + <u64>len > <u64>cap) return off;
    let p = out + off;
    p += writeAscii(p, "alive: ");
    copyBytes(p, state_iter_name_ptr(), nl);
    p += nl;
    store<u8>(p++, 0x20);
    copyBytes(p, state_iter_addr_ptr(), al);
    p += al;
    store<u8>(p, 0x0a);
    off += len;
    pending = false;
  }
  while (phase >= 1 && phase <= 3) {
    if (<u64>off + 40 > <u64>cap) return off;
    let p = out + off;
    p += writeAscii(p, phase == 1 ? "clock: " : phase == 2 ? "event-clock: " : "query-clock: ");
    p += writeU64(p, state_clock_value(phase - 1));
    store<u8>(p++, 0x0a);
    off = <u32>(p - out);
    phase++;
  }
  return off;
}
