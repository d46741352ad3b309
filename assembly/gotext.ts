// Replay of serf's Go text snapshot format (hashicorp/serf serf/snapshot.go, replay),
// one chunk at a time, applied to assembly/serf_state.ts.
//
// Serf reads the file with bufio.Reader.ReadString('\n') and, for every line that ends in
// '\n' (a last line without one is dropped silently), strips only that '\n' and checks,
// in this order:
//
//   "alive: " prefix        split the rest at its LAST space: name, addr (no space: WARN)
//   "not-alive: " prefix    delete name
//   "clock: " prefix        strconv.ParseUint(rest, 10, 64) -> member clock (error: WARN)
//   "event-clock: " prefix  same -> event clock
//   "query-clock: " prefix  same -> query clock
//   "coordinate: " prefix   ignored
//   exactly "leave"         clear everything, or INFO and ignore with rejoinAfterLeave
//   "#" prefix              comment
//   anything else           WARN "Unrecognized snapshot line"
//
// The host streams the file through a chunk buffer: gotext_scan consumes every complete
// line of the chunk and returns how many bytes that was; the host keeps the rest.

import {
  state_alive,
  state_clock,
  state_leave,
  state_not_alive,
  state_rejoin_after_leave,
} from "./serf_state";

// Warning codes. The host (src/serf/gotext.ts) turns them into serf's log wording.
export const WARN_ADDRESS: u32 = 1; //       "Failed to parse address: <line>"
export const WARN_UNRECOGNIZED: u32 = 2; //  "Unrecognized snapshot line: <line>"
// 3 + 2 * kind: ParseUint syntax error, 4 + 2 * kind: value out of range
// (kind 0 = clock, 1 = event-clock, 2 = query-clock).
export const WARN_CLOCK_SYNTAX: u32 = 3;
export const WARN_CLOCK_RANGE: u32 = 4;
export const INFO_LEAVE_IGNORED: u32 = 9; // "Ignoring previous leave in snapshot" (rejoinAfterLeave)

// Scan statuses.
export const GOTEXT_OK: u32 = 0; //            every complete line was consumed
export const GOTEXT_OUT_OF_MEMORY: u32 = 1; // stopped before a line whose insert could not allocate
export const GOTEXT_WARNINGS_FULL: u32 = 2; // stopped: the warnings buffer is full; call again

/**
 * Warnings of the last scan, four u32 each: 1-based line number, code, offset of the line's
 * first byte relative to the scanned pointer, line length without the '\n'. The host reads the
 * line text from its chunk before calling again. 1024 per call (16 KiB) bounds the buffer;
 * a file with more stops the scan and the host simply calls again.
 */
const WARN_CAP: u32 = 1024;
const WARNINGS: usize = memory.data(<i32> (WARN_CAP * 16), 16);

let warnCount: u32 = 0;
let lineCount: u32 = 0;
let scanStatus: u32 = GOTEXT_OK;

/** Warnings written by the last gotext_scan. */
export function gotext_warning_count(): u32 {
  return warnCount;
}

/** Address of the warnings buffer (see WARNINGS). */
export function gotext_warnings_ptr(): usize {
  return WARNINGS;
}

/** Complete lines the last gotext_scan processed. */
export function gotext_lines(): u32 {
  return lineCount;
}

/** GOTEXT_* status of the last gotext_scan. */
export function gotext_status(): u32 {
  return scanStatus;
}

function warn(line: u32, code: u32, off: usize, len: u32): void {
  const w = WARNINGS + (<usize> warnCount << 4);
  store<u32>(w, line);
  store<u32>(w, code, 4);
  store<u32>(w, <u32> off, 8);
  store<u32>(w, len, 12);
  warnCount++;
}

// Little-endian words of the prefixes (first 8 bytes, and the overlapping tail word).
const ALIVE7: u64 = 0x203a6576696c61; //       "alive: " (7 bytes)
const CLOCK7: u64 = 0x203a6b636f6c63; //       "clock: " (7 bytes)
const NOT_ALIV: u64 = 0x76696c612d746f6e; //   "not-aliv"
const VE_: u32 = 0x203a6576; //                "ve: " (bytes 7..10 of "not-alive: ")
const EVENT_CL: u64 = 0x6c632d746e657665; //   "event-cl"
const QUERY_CL: u64 = 0x6c632d7972657571; //   "query-cl"
const _CLOCK_: u64 = 0x203a6b636f6c632d; //    "-clock: " (bytes 5..12 of "event-clock: ")
const COORDINA: u64 = 0x616e6964726f6f63; //   "coordina"
const TE_: u32 = 0x203a6574; //                "te: " (bytes 8..11 of "coordinate: ")
const LEAV: u32 = 0x7661656c; //               "leav"
const LOW7: u64 = 0x00ffffffffffffff;

// maxUint64/10 + 1: the smallest n with n*10 > maxUint64 (Go's ParseUint cutoff).
const CUTOFF: u64 = 1844674407370955162;

/**
 * Go's strconv.ParseUint(s, 10, 64) over [p, e): 0 ok (value in parsedValue), 1 syntax
 * error, 2 out of range. Mirrors Go's order of checks: a non-digit is a syntax error
 * where it stands, an overflow is a range error where it happens, whichever comes first.
 */
let parsedValue: u64 = 0;
function parseUint(p: usize, e: usize): u32 {
  if (p == e) return 1;
  let n: u64 = 0;
  // Up to 19 digits cannot overflow (10^19 - 1 < 2^64 - 1): no range checks.
  if (e - p <= 19) {
    while (p < e) {
      const d = <u32> load<u8>(p) - 48;
      if (d > 9) return 1;
      n = n * 10 + <u64> d;
      p++;
    }
    parsedValue = n;
    return 0;
  }
  while (p < e) {
    const d = <u32> load<u8>(p) - 48;
    if (d > 9) return 1;
    if (n >= CUTOFF) return 2;
    n *= 10;
    const n1 = n + <u64> d;
    if (n1 < n) return 2;
    n = n1;
    p++;
  }
  parsedValue = n;
  return 0;
}

/**
 * Address of the last ' ' in [p, e), or 0 if there is none (the scanned buffer never
 * starts at address 0: the CRC tables live there). Addresses are short, so this looks at
 * the last 16 bytes with one SIMD compare first.
 */
// @ts-ignore: decorator
@inline function lastSpace(p: usize, e: usize): usize {
  const sp = i8x16.splat(0x20);
  let q = e;
  while (q - p >= 16) {
    const m = <u32> i8x16.bitmask(i8x16.eq(v128.load(q - 16), sp));
    if (m != 0) return q - 16 + <usize> (31 - clz(m));
    q -= 16;
  }
  while (q > p) {
    q--;
    if (load<u8>(q) == 0x20) return q;
  }
  return 0;
}

/**
 * Applies the line [s, e) (e is its '\n'). false: stop before this line (status set). Inlined
 * into both loops of gotext_scan, with lastSpace: 4-5 % faster on the history's and the
 * 1M-record files (interleaved A/B, medians of 41 rounds), for 0.7 KB more code.
 */
// @ts-ignore: decorator
@inline function applyLine(base: usize, s: usize, e: usize, lineNo: u32): bool {
  const len = <u32> (e - s);
  if (len >= 7) {
    // 8-byte loads at s are safe: s + 7 <= e, and the '\n' at e is in the buffer.
    const w = load<u64>(s);
    const w7 = w & LOW7;
    if (w7 == ALIVE7) {
      // Name and address split at the LAST space of the rest (serf: strings.LastIndex).
      const rest = s + 7;
      const q = lastSpace(rest, e);
      if (q != 0) {
        if (state_alive(rest, <u32> (q - rest), q + 1, <u32> (e - q - 1)) != 0) {
          scanStatus = GOTEXT_OUT_OF_MEMORY;
          return false;
        }
        return true;
      }
      warn(lineNo, WARN_ADDRESS, s - base, len);
      return true;
    }
    if (w7 == CLOCK7) {
      clockLine(0, s + 7, e, base, s, len, lineNo);
      return true;
    }
    if (len >= 11 && w == NOT_ALIV && load<u32>(s, 7) == VE_) {
      state_not_alive(s + 11, len - 11);
      return true;
    }
    if (len >= 13 && load<u64>(s, 5) == _CLOCK_) {
      if (w == EVENT_CL) {
        clockLine(1, s + 13, e, base, s, len, lineNo);
        return true;
      }
      if (w == QUERY_CL) {
        clockLine(2, s + 13, e, base, s, len, lineNo);
        return true;
      }
    }
    if (len >= 12 && w == COORDINA && load<u32>(s, 8) == TE_) return true;
  } else if (len == 5 && load<u32>(s) == LEAV && load<u8>(s, 4) == 0x65) {
    if (state_rejoin_after_leave() != 0) {
      warn(lineNo, INFO_LEAVE_IGNORED, s - base, len);
    } else {
      state_leave();
    }
    return true;
  }
  if (len > 0 && load<u8>(s) == 0x23) return true; // '#'
  warn(lineNo, WARN_UNRECOGNIZED, s - base, len);
  return true;
}

function clockLine(kind: u32, p: usize, e: usize, base: usize, s: usize, len: u32, lineNo: u32): void {
  const r = parseUint(p, e);
  if (r == 0) state_clock(kind, parsedValue);
  else warn(lineNo, (r == 1 ? WARN_CLOCK_SYNTAX : WARN_CLOCK_RANGE) + 2 * kind, s - base, len);
}

/**
 * Applies every complete line in [ptr, ptr + len) to the serf state and returns the bytes
 * consumed (just past the last '\n' applied). `lineBase` is the 1-based number of the first
 * line. The scan stops early (see gotext_status) when the warnings buffer is full or memory
 * cannot grow; the host then calls again at ptr + consumed.
 */
export function gotext_scan(ptr: usize, len: u32, lineBase: u32): u32 {
  warnCount = 0;
  lineCount = 0;
  scanStatus = GOTEXT_OK;
  const end = ptr + len;
  let start = ptr;
  let blk = ptr;
  // 32 bytes per step: two 16-byte compares against '\n' and their bitmasks give every line
  // end in the block as one bit; ~40-byte lines mean about one line per step. The loop over
  // set bits replaces a byte loop (the dominant cost of a naive splitter).
  const nl = i8x16.splat(0x0a);
  while (blk + 32 <= end) {
    let mask = <u32> i8x16.bitmask(i8x16.eq(v128.load(blk), nl)) |
      (<u32> i8x16.bitmask(i8x16.eq(v128.load(blk, 16), nl)) << 16);
    while (mask != 0) {
      const e = blk + <usize> ctz(mask);
      mask &= mask - 1;
      if (warnCount == WARN_CAP) {
        scanStatus = GOTEXT_WARNINGS_FULL;
        return <u32> (start - ptr);
      }
      if (!applyLine(ptr, start, e, lineBase + lineCount)) return <u32> (start - ptr);
      lineCount++;
      start = e + 1;
    }
    blk += 32;
  }
  while (blk < end) {
    if (load<u8>(blk) == 0x0a) {
      if (warnCount == WARN_CAP) {
        scanStatus = GOTEXT_WARNINGS_FULL;
        return <u32> (start - ptr);
      }
      if (!applyLine(ptr, start, blk, lineBase + lineCount)) return <u32> (start - ptr);
      lineCount++;
      start = blk + 1;
    }
    blk++;
  }
  return <u32> (start - ptr);
}
