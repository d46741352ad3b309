// The serf replay state: the alive set (node name -> address) and the three Lamport
// clocks that serf's Snapshotter.replay rebuilds. Both snapshot formats (serf's Go text,
// assembly/gotext.ts, and snaplog's binary frames) apply their records here, so a replay
// never materialises JS objects per record, only the final alive set.
//
// One state per module instance (module globals): every replay or open log owns its own
// WasmCore instance.
//
// Alive set: an open-addressing hash table with linear probing and backward-shift
// deletion, so deletes leave no tombstones and a long churn does not degrade probes.
//
//   slot (8 bytes): | hash u32 | entry pointer u32 (0 = empty) |
//
//   entry (one mem_alloc block, reused in place when a replacement fits its size class):
//   0          4          8
//   +----------+----------+------------ ... --+------------ ... --+
//   | nameLen  | addrLen  | name bytes         | addr bytes        |
//   +----------+----------+------------ ... --+------------ ... --+
//
// The cached hash makes a probe compare names only on a full 32-bit match, and lets a
// resize rehash without touching the entries.
//
// Memory follows the alive set, not the file: replaced and deleted entries go back to
// mem.ts's free lists and are reused, the table doubles at 3/4 load and halves below 1/8
// (the wide gap keeps a set hovering near one size from resizing back and forth), and
// `leave` frees everything.

import { copyBytes, mem_alloc, mem_free } from "./mem";

const ENTRY_HEADER: u32 = 8;
// 16 slots (128 bytes): small enough that an empty state costs nothing, large enough
// that tiny sets never resize.
const CAP_MIN: u32 = 16;

let table: usize = 0; // slot array, `cap` slots of 8 bytes
let cap: u32 = 0; //     power of two
let count: u32 = 0;
let liveBytes: u32 = 0;
let rejoin: bool = false;
let clockMember: u64 = 0;
let clockEvent: u64 = 0;
let clockQuery: u64 = 0;
let iterSlot: u32 = 0;
let iterEntry: usize = 0;

// ---- hashing and byte helpers -------------------------------------------------------
// A 64-bit multiply-xorshift over 8-byte loads (in the spirit of wyhash/xxh3 without
// 128-bit multiplies, which Wasm lacks). Node names are 10..64 bytes, so this is two to
// eight multiplies per name; the final avalanche makes the low bits (the slot index)
// depend on every input byte. Short tails are read as overlapping words instead of
// byte loops: a byte loop costs more than the whole rest of a 15-byte name.

const K1: u64 = 0x9e3779b97f4a7c15;
const K2: u64 = 0xbf58476d1ce4e5b9;
const K3: u64 = 0x94d049bb133111eb;

/** Hash of `len` bytes at `p`. Never reads outside [p, p + len). */
export function name_hash(p: usize, len: u32): u32 {
  let h: u64 = K1 ^ (<u64> len * K3);
  if (len >= 8) {
    // Whole words, then the last eight bytes (overlapping the previous word).
    const last = p + len - 8;
    let q = p;
    while (q < last) {
      h = (h ^ load<u64>(q)) * K1;
      h ^= h >>> 32;
      q += 8;
    }
    h = (h ^ load<u64>(last)) * K2;
  } else if (len >= 4) {
    h = (h ^ (<u64> load<u32>(p) | (<u64> load<u32>(p + len - 4) << 32))) * K2;
  } else if (len > 0) {
    h = (h ^
      (<u64> load<u8>(p) | (<u64> load<u8>(p + (len >> 1)) << 8) | (<u64> load<u8>(p + len - 1) << 16))) *
      K2;
  }
  h ^= h >>> 32;
  h *= K3;
  h ^= h >>> 29;
  return <u32> h;
}

/** True if the `len` bytes at `a` and `b` are equal. */
function bytesEqual(a: usize, b: usize, len: u32): bool {
  if (len >= 8) {
    const last = <usize> len - 8;
    for (let i: usize = 0; i < last; i += 8) {
      if (load<u64>(a + i) != load<u64>(b + i)) return false;
    }
    return load<u64>(a + last) == load<u64>(b + last);
  }
  if (len >= 4) {
    return load<u32>(a) == load<u32>(b) && load<u32>(a + len - 4) == load<u32>(b + len - 4);
  }
  if (len == 0) return true;
  const m = len >> 1;
  return load<u8>(a) == load<u8>(b) && load<u8>(a + m) == load<u8>(b + m) &&
    load<u8>(a + len - 1) == load<u8>(b + len - 1);
}


// ---- table ---------------------------------------------------------------------------

function entrySize(nameLen: u32, addrLen: u32): usize {
  return <usize> ENTRY_HEADER + <usize> nameLen + <usize> addrLen;
}

function sizeClass(size: usize): u32 {
  // Same rounding as mem.ts: two sizes share a block when they share a class.
  return size <= 16 ? 4 : 32 - <u32> clz(<u32> size - 1);
}

function freeEntry(e: usize): void {
  mem_free(e, entrySize(load<u32>(e), load<u32>(e, 4)));
}

/** Allocates a zeroed slot array of `newCap` slots, moves every entry into it. 0 on OOM. */
function resize(newCap: u32): bool {
  const bytes = <usize> newCap << 3;
  const fresh = mem_alloc(bytes);
  if (fresh == 0) return false;
  memory.fill(fresh, 0, bytes);
  const mask = newCap - 1;
  const old = table;
  const oldCap = cap;
  for (let i: u32 = 0; i < oldCap; i++) {
    const s = old + (<usize> i << 3);
    const e = load<u32>(s, 4);
    if (e == 0) continue;
    const h = load<u32>(s);
    let j = h & mask;
    while (load<u32>(fresh + (<usize> j << 3), 4) != 0) j = (j + 1) & mask;
    store<u64>(fresh + (<usize> j << 3), load<u64>(s));
  }
  if (old != 0) mem_free(old, <usize> oldCap << 3);
  table = fresh;
  cap = newCap;
  return true;
}

/**
 * Slot index holding `name`, or `-1 - i` where `i` is the empty slot that ends its probe
 * run (where an insert goes), so an insert probes once, not twice. The table must exist.
 */
function find(namePtr: usize, nameLen: u32, h: u32): i32 {
  const mask = cap - 1;
  let i = h & mask;
  while (true) {
    const s = table + (<usize> i << 3);
    const e = <usize> load<u32>(s, 4);
    if (e == 0) return -1 - <i32> i;
    if (load<u32>(s) == h && load<u32>(e) == nameLen && bytesEqual(e + ENTRY_HEADER, namePtr, nameLen)) {
      return <i32> i;
    }
    i = (i + 1) & mask;
  }
}

/** Empties slot `i` and shifts later members of its probe run back (no tombstones). */
function removeSlot(i: u32): void {
  const mask = cap - 1;
  let hole = i;
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const s = table + (<usize> j << 3);
    if (load<u32>(s, 4) == 0) break;
    const home = load<u32>(s) & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      store<u64>(table + (<usize> hole << 3), load<u64>(s));
      hole = j;
    }
  }
  store<u64>(table + (<usize> hole << 3), 0);
}

function clearAll(): void {
  for (let i: u32 = 0; i < cap; i++) {
    const e = <usize> load<u32>(table + (<usize> i << 3), 4);
    if (e != 0) freeEntry(e);
  }
  if (table != 0) mem_free(table, <usize> cap << 3);
  table = 0;
  cap = 0;
  count = 0;
  liveBytes = 0;
  iterSlot = 0;
  iterEntry = 0;
}

// ---- API -----------------------------------------------------------------------------

/** Empties the alive set, zeroes the clocks and sets the leave mode (1 = rejoinAfterLeave). */
export function state_reset(rejoinAfterLeave: u32): void {
  clearAll();
  clockMember = 0;
  clockEvent = 0;
  clockQuery = 0;
  rejoin = rejoinAfterLeave != 0;
}

/** `alive: NAME ADDR`: inserts or replaces. Returns 0, or 1 when memory cannot grow (state unchanged). */
export function state_alive(namePtr: usize, nameLen: u32, addrPtr: usize, addrLen: u32): u32 {
  if (cap == 0 && !resize(CAP_MIN)) return 1;
  const h = name_hash(namePtr, nameLen);
  let found = find(namePtr, nameLen, h);
  if (found >= 0) {
    const s = table + (<usize> found << 3);
    const e = <usize> load<u32>(s, 4);
    const oldAddrLen = load<u32>(e, 4);
    const oldSize = entrySize(nameLen, oldAddrLen);
    const newSize = entrySize(nameLen, addrLen);
    if (sizeClass(oldSize) == sizeClass(newSize)) {
      store<u32>(e, addrLen, 4);
      copyBytes(e + ENTRY_HEADER + nameLen, addrPtr, addrLen);
    } else {
      const n = mem_alloc(newSize);
      if (n == 0) return 1;
      store<u32>(n, nameLen);
      store<u32>(n, addrLen, 4);
      copyBytes(n + ENTRY_HEADER, namePtr, nameLen);
      copyBytes(n + ENTRY_HEADER + nameLen, addrPtr, addrLen);
      mem_free(e, oldSize);
      store<u32>(s, <u32> n, 4);
    }
    liveBytes = liveBytes - oldAddrLen + addrLen;
    return 0;
  }
  // Grow at 3/4 load: linear probing's expected probe length stays short below that.
  if ((<u64> count + 1) * 4 > <u64> cap * 3) {
    if (!resize(cap << 1)) return 1;
    found = find(namePtr, nameLen, h);
  }
  const size = entrySize(nameLen, addrLen);
  const e = mem_alloc(size);
  if (e == 0) return 1;
  store<u32>(e, nameLen);
  store<u32>(e, addrLen, 4);
  copyBytes(e + ENTRY_HEADER, namePtr, nameLen);
  copyBytes(e + ENTRY_HEADER + nameLen, addrPtr, addrLen);
  store<u64>(table + (<usize> (-1 - found) << 3), (<u64> e << 32) | <u64> h);
  count++;
  liveBytes += nameLen + addrLen;
  return 0;
}

/** `not-alive: NAME`: removes the node if present. */
export function state_not_alive(namePtr: usize, nameLen: u32): void {
  if (count == 0) return;
  const h = name_hash(namePtr, nameLen);
  const found = find(namePtr, nameLen, h);
  if (found < 0) return;
  const e = <usize> load<u32>(table + (<usize> found << 3), 4);
  liveBytes -= load<u32>(e) + load<u32>(e, 4);
  freeEntry(e);
  removeSlot(<u32> found);
  count--;
  // Shrink below 1/8 load; a failed allocation just keeps the bigger table.
  if (cap > CAP_MIN && count * 8 < cap) resize(cap >> 1);
}

/** Sets a clock: kind 0 = member clock, 1 = event clock, 2 = query clock. The last value wins (as serf). */
export function state_clock(kind: u32, value: u64): void {
  if (kind == 0) clockMember = value;
  else if (kind == 1) clockEvent = value;
  else if (kind == 2) clockQuery = value;
}

/** `leave`: clears the alive set and the clocks, unless the state was reset with rejoinAfterLeave. */
export function state_leave(): void {
  if (rejoin) return;
  clearAll();
  clockMember = 0;
  clockEvent = 0;
  clockQuery = 0;
}

/** 1 when `leave` is ignored (rejoinAfterLeave). */
export function state_rejoin_after_leave(): u32 {
  return rejoin ? 1 : 0;
}

/** Number of alive nodes. */
export function state_count(): u32 {
  return count;
}

/** The clock of `kind` (see state_clock). */
export function state_clock_value(kind: u32): u64 {
  return kind == 0 ? clockMember : kind == 1 ? clockEvent : kind == 2 ? clockQuery : 0;
}

/** Sum of name and address bytes over the alive set. */
export function state_live_bytes(): u32 {
  return liveBytes;
}

/** Slots in the table (for tests of memory behaviour). */
export function state_capacity(): u32 {
  return cap;
}

/** Starts an iteration over the alive set (any order). Any change to the state ends it. */
export function state_iter_reset(): void {
  iterDropOrder();
  iterSlot = 0;
  iterEntry = 0;
}
/** Moves to the next entry: 1 when positioned on one, 0 when done. */
export function state_iter_next(): u32 {
  if (iterOrder != 0) {
    if (iterPos < iterOrderLen) {
      iterEntry = <usize> load<u32>(iterOrder + (<usize> iterPos << 2));
      iterPos++;
      return 1;
    }
    iterDropOrder();
    iterSlot = cap;
    iterEntry = 0;
    return 0;
  }
  while (iterSlot < cap) {
    const e = <usize> load<u32>(table + (<usize> iterSlot << 3), 4);
    iterSlot++;
    if (e != 0) {
      iterEntry = e;
      return 1;
    }
  }
  iterEntry = 0;
  return 0;
}

// ---- iteration in address order --------------------------------------------------------
// Slot order is hash order, so walking a large table touches the entries at random: at 100k
// nodes (6 MB of entries) nearly every entry is a cache miss, and compaction spent ~230 ns a
// node on them. Sorting the entry pointers first (LSD radix, two 16-bit passes) turns that
// into a sequential walk: entries come from a bump allocator, roughly in insertion order.

let iterOrder: usize = 0; // u32 entry pointers, sorted by address; 0 = slot order
let iterOrderLen: u32 = 0;
let iterPos: u32 = 0;

function iterDropOrder(): void {
  if (iterOrder != 0) mem_free(iterOrder, <usize> iterOrderLen << 2);
  iterOrder = 0;
  iterOrderLen = 0;
  iterPos = 0;
}

/**
 * Like `state_iter_reset`, but `state_iter_next` then visits entries in address order. Small
 * sets (which fit in cache) and a failed allocation fall back to slot order. The state must
 * not change until the iteration ends.
 */
export function state_iter_reset_by_address(): void {
  state_iter_reset();
  const n = count;
  if (n < 8192) return;
  const arr = mem_alloc(<usize> n << 2);
  const tmp = mem_alloc(<usize> n << 2);
  const counts = mem_alloc(65536 << 2);
  if (arr == 0 || tmp == 0 || counts == 0) {
    mem_free(arr, <usize> n << 2);
    mem_free(tmp, <usize> n << 2);
    mem_free(counts, 65536 << 2);
    return;
  }
  let k: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const e = load<u32>(table + (<usize> i << 3), 4);
    if (e != 0) {
      store<u32>(arr + (<usize> k << 2), e);
      k++;
    }
  }
  radixPass(arr, tmp, n, counts, 0);
  radixPass(tmp, arr, n, counts, 16);
  mem_free(tmp, <usize> n << 2);
  mem_free(counts, 65536 << 2);
  iterOrder = arr;
  iterOrderLen = n;
  iterPos = 0;
}

/** One stable counting-sort pass over 16 bits of each u32, from `src` into `dst`. */
function radixPass(src: usize, dst: usize, n: u32, counts: usize, shift: u32): void {
  memory.fill(counts, 0, 65536 << 2);
  for (let i: u32 = 0; i < n; i++) {
    const b = counts + (<usize> ((load<u32>(src + (<usize> i << 2)) >>> shift) & 0xffff) << 2);
    store<u32>(b, load<u32>(b) + 1);
  }
  let sum: u32 = 0;
  for (let d: usize = 0; d < 65536; d++) {
    const c = load<u32>(counts + (d << 2));
    store<u32>(counts + (d << 2), sum);
    sum += c;
  }
  for (let i: u32 = 0; i < n; i++) {
    const v = load<u32>(src + (<usize> i << 2));
    const b = counts + (<usize> ((v >>> shift) & 0xffff) << 2);
    const at = load<u32>(b);
    store<u32>(b, at + 1);
    store<u32>(dst + (<usize> at << 2), v);
  }
}
export function state_iter_name_ptr(): usize {
  return iterEntry + ENTRY_HEADER;
}

export function state_iter_name_len(): u32 {
  return iterEntry == 0 ? 0 : load<u32>(iterEntry);
}

export function state_iter_addr_ptr(): usize {
  return iterEntry == 0 ? 0 : iterEntry + ENTRY_HEADER + load<u32>(iterEntry);
}

export function state_iter_addr_len(): u32 {
  return iterEntry == 0 ? 0 : load<u32>(iterEntry, 4);
}

/**
 * Copies the whole alive set out in one call, for the host: the names and addresses back to
 * back at `outBytes` (`state_live_bytes()` bytes), and for entry i three u32 at
 * `outOffsets + 12 i`: name start, address start, address end (offsets into `outBytes`).
 * Returns the number of entries. Saves the host six calls and two views per node.
 */
export function state_export(outBytes: usize, outOffsets: usize): u32 {
  let at: u32 = 0;
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const e = <usize>load<u32>(table + (<usize>i << 3), 4);
    if (e == 0) continue;
    const nl = load<u32>(e);
    const al = load<u32>(e, 4);
    const o = outOffsets + (<usize>n) * 12;
    store<u32>(o, at);
    copyBytes(outBytes + at, e + ENTRY_HEADER, nl + al);
    store<u32>(o, at + nl, 4);
    store<u32>(o, at + nl + al, 8);
    at += nl + al;
    n++;
  }
  return n;
}

// ---- sorted export -----------------------------------------------------------------------
// Replay results list the alive set sorted by name, byte-wise. Sorting 10k names in JS costs
// ~10 ms (string compares of sliced strings); here it is a quicksort over the 12-byte offset
// triples that `state_export` wrote, comparing name bytes directly.

let sortBytes: usize = 0;

/** memcmp-style order of the names of triples `a` and `b`. */
function cmpName(a: usize, b: usize): i32 {
  const as = load<u32>(a);
  const al = load<u32>(a, 4) - as;
  const bs = load<u32>(b);
  const bl = load<u32>(b, 4) - bs;
  const n = al < bl ? al : bl;
  const pa = sortBytes + <usize>as;
  const pb = sortBytes + <usize>bs;
  let i: u32 = 0;
  // Eight bytes at a time while equal (names often share a long prefix such as "node-0000").
  while (i + 8 <= n && load<u64>(pa + i) == load<u64>(pb + i)) i += 8;
  for (; i < n; i++) {
    const x = <i32>load<u8>(pa + i);
    const y = <i32>load<u8>(pb + i);
    if (x != y) return x - y;
  }
  return <i32>al - <i32>bl;
}

function swap12(a: usize, b: usize): void {
  const x = load<u64>(a);
  const y = load<u32>(a, 8);
  store<u64>(a, load<u64>(b));
  store<u32>(a, load<u32>(b, 8), 8);
  store<u64>(b, x);
  store<u32>(b, y, 8);
}

function sortRange(base: usize, lo: i32, hi: i32): void {
  // Recurse on the smaller side, loop on the larger: stack depth stays O(log n).
  while (hi - lo > 16) {
    const mid = lo + ((hi - lo) >> 1);
    const pl = base + <usize>lo * 12;
    const pm = base + <usize>mid * 12;
    const ph = base + <usize>hi * 12;
    if (cmpName(pm, pl) < 0) swap12(pm, pl);
    if (cmpName(ph, pl) < 0) swap12(ph, pl);
    if (cmpName(ph, pm) < 0) swap12(ph, pm);
    swap12(pm, ph - 12); // pivot at hi - 1
    const pivot = ph - 12;
    let i = lo;
    let j = hi - 1;
    while (true) {
      do i++; while (cmpName(base + <usize>i * 12, pivot) < 0);
      do j--; while (j > lo && cmpName(base + <usize>j * 12, pivot) > 0);
      if (i >= j) break;
      swap12(base + <usize>i * 12, base + <usize>j * 12);
    }
    swap12(base + <usize>i * 12, pivot);
    if (i - lo < hi - i) {
      sortRange(base, lo, i - 1);
      lo = i + 1;
    } else {
      sortRange(base, i + 1, hi);
      hi = i - 1;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    for (let j = i; j > lo && cmpName(base + <usize>j * 12, base + <usize>(j - 1) * 12) < 0; j--) {
      swap12(base + <usize>j * 12, base + <usize>(j - 1) * 12);
    }
  }
}

/** `state_export`, then the triples sorted by name bytes. Returns the number of entries. */
export function state_export_sorted(outBytes: usize, outOffsets: usize): u32 {
  const n = state_export(outBytes, outOffsets);
  sortBytes = outBytes;
  if (n > 1) sortRange(outOffsets, 0, <i32>n - 1);
  return n;
}
