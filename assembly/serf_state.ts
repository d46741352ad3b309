// The serf replay state: the alive set (node name -> address) and the three Lamport
// clocks that serf's Snapshotter.replay rebuilds. Both snapshot formats (serf's Go text,
// assembly/gotext.ts, and snaplog's binary frames) apply their records here, so a replay
// never materialises JS objects per record, only the final alive set.
//
// One state per module instance (module globals): every replay or open log owns its own
// WasmCore instance.
//
// Alive set: an open-addressing hash table with linear probing over 64-byte slots, one
// cache line each, holding the node itself:
//
//   0          4               8          12
//   +----------+---------------+----------+------------------------------------------+
//   | hash u32 | meta u32      | addrLen  | name ++ addr (52 bytes), or, with OUT,   |
//   |          |               | u32      | a u32 pointer to a mem_alloc block       |
//   +----------+---------------+----------+------------------------------------------+
//   meta: bit 31 USED, bit 30 DEAD, bit 29 OUT (bytes out of line), bits 0..28 nameLen;
//   meta 0 = an empty slot.
//
// A replay is bound by cache misses on this table (10k nodes touched at random), so a
// lookup reads one line: the hash, the length and the name bytes are together. Names and
// addresses that do not fit 52 bytes live in a block of their own (one more miss).
//
// `not-alive` does not remove a node: it sets DEAD. Serf clusters churn (a node fails, then
// rejoins), so the next `alive` for that name finds its slot and revives it in place: no
// backward shift of the probe run (that shift was 40 % of a churning replay), no name copy.
// Dead slots are bounded: when they outnumber the alive ones (plus a little slack), or when
// the table would grow, a rebuild drops them all.
//
// Memory follows the alive set, not the file: the table (alive + dead slots) stays below
// its load limit (1/2 up to 64k slots, 4/5 beyond: see overLoaded), a rebuild leaves it well
// below that (see roomy; so the next rebuild is many deletes or inserts away), out-of-line
// blocks and old tables go back to mem.ts's free lists and are reused, and `leave` frees
// everything.

import { copyBytes, mem_alloc, mem_alloc_zeroed, mem_free } from "./mem";

const SLOT_SHIFT: u32 = 6;
const SLOT_BYTES: usize = 1 << SLOT_SHIFT;
/** Bytes of name ++ address a slot holds in line. */
const INLINE_BYTES: u32 = 52;
const USED: u32 = 1 << 31;
const DEAD: u32 = 1 << 30;
const OUT: u32 = 1 << 29;
const LEN_MASK: u32 = OUT - 1;
// 16 slots (1 KiB): small enough that an empty state costs little, large enough that tiny
// sets never resize.
const CAP_MIN: u32 = 16;
/** Dead slots allowed beyond the alive count before a rebuild drops them. */
const DEAD_SLACK: u32 = 8;

let table: usize = 0; // slot array, `cap` slots of 64 bytes, 64-byte aligned
let cap: u32 = 0; //     power of two
let count: u32 = 0; //   alive nodes
let dead: u32 = 0; //    dead slots still in the table
let liveBytes: u32 = 0;
let rejoin: bool = false;
let clockMember: u64 = 0;
let clockEvent: u64 = 0;
let clockQuery: u64 = 0;
let iterSlot: u32 = 0;
let iterEntry: usize = 0; // the slot the iteration is on, 0 = none

// Delta mode (a parallel replay's second half, src/serf/_parallel.ts): the state records what
// the records it saw do to ANY prior state. A `not-alive` of an unknown name is kept as a dead
// slot (it deletes the node from the first half), dead slots are never dropped, a `leave`
// marks the delta as clearing, and each clock remembers whether it was set.
let delta: bool = false;
let deltaCleared: bool = false;
let deltaFailed: bool = false; // memory ran out: the delta is incomplete
let clockSet: u32 = 0;
// Dead slots are what a delta holds beyond an alive set: a file that churns through new names
// (each alive, then not-alive) would grow them with the file. Past both bounds (dead names
// over deltaDeadMax and over twice the alive ones, or their bytes over deltaDeadBytesMax and
// over twice the alive bytes) the delta is dropped: its memory freed, every later record a
// no-op, and the caller replays that part itself (state_delta_flags bit 5).
let deltaDeadMax: u32 = 65536;
let deltaDeadBytesMax: u32 = 16 << 20;
let deltaDeadBytes: u32 = 0;
let deltaDropped: bool = false;

/** Sets the bounds of a delta's dead names (tests lower them). */
export function state_delta_dead_max(names: u32, bytes: u32): void {
  deltaDeadMax = names;
  deltaDeadBytesMax = bytes;
}

/** Counts `nameLen` more bytes of dead names; drops the delta past its bounds. */
function deltaDied(nameLen: u32): void {
  deltaDeadBytes += nameLen;
  if (
    (dead > deltaDeadMax && <u64> dead > <u64> count * 2) ||
    (deltaDeadBytes > deltaDeadBytesMax && <u64> deltaDeadBytes > <u64> liveBytes * 2)
  ) {
    clearAll();
    deltaDropped = true;
  }
}

// ---- hashing and byte helpers -------------------------------------------------------
// Node names come from cluster members, so the hash is keyed with secrets the host draws at
// random for each instance (hash_key), as Go's maps are (serf keeps its alive set in one):
// without them a member can pick names that all land in one probe run, and every lookup of
// a replay or an append walks it (16,384 such names, 4 MiB of Go text: 2.7 s to replay
// instead of 60 ms, where serf took 17 ms). The construction is wyhash's, as in Go's
// runtime.memhashFallback: each 16 bytes folded by a 64x64->128-bit multiply whose halves
// are xored (mum), with secret operands, so no difference in the input cancels without the
// key (an unkeyed xor-multiply chain let a flipped top bit cancel in the next word whatever
// the seed). Wasm has no wide multiply: mum takes four 32x32->64 products.

let hashSeed: u64 = 0xa0761d6478bd642f;
let hashS1: u64 = 0xe7037ed1a0b428db;
let hashS2: u64 = 0x8ebc6af09c88c6e3;

/**
 * Sets the hash's secrets; the host calls it once, right after instantiating, with random
 * values (a table built under one key cannot be searched under another).
 */
export function hash_key(seed: u64, s1: u64, s2: u64): void {
  hashSeed = seed;
  hashS1 = s1 | 1;
  hashS2 = s2 | 1;
}

/** The high and low halves of the 128-bit product `a * b`, xored. */
// @ts-ignore: decorator
@inline function mum(a: u64, b: u64): u64 {
  const al = a & 0xffffffff;
  const ah = a >>> 32;
  const bl = b & 0xffffffff;
  const bh = b >>> 32;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 32) + (lh & 0xffffffff) + (hl & 0xffffffff);
  const hi = ah * bh + (lh >>> 32) + (hl >>> 32) + (mid >>> 32);
  return hi ^ ((ll & 0xffffffff) | (mid << 32));
}

/** Hash of `len` bytes at `p` under the instance's key. Never reads outside [p, p + len). */
export function name_hash(p: usize, len: u32): u32 {
  let seed = hashSeed;
  let a: u64 = 0;
  let b: u64 = 0;
  if (len > 16) {
    // 16 bytes a step, then the last 16 (overlapping the previous step's).
    let l = len;
    let q = p;
    while (l > 16) {
      seed = mum(load<u64>(q) ^ hashS1, load<u64>(q, 8) ^ seed);
      q += 16;
      l -= 16;
    }
    a = load<u64>(q + l - 16);
    b = load<u64>(q + l - 8);
  } else if (len >= 8) {
    a = load<u64>(p);
    b = load<u64>(p + len - 8);
  } else if (len >= 4) {
    a = <u64> load<u32>(p);
    b = <u64> load<u32>(p + len - 4);
  } else if (len > 0) {
    a = <u64> load<u8>(p) | (<u64> load<u8>(p + (len >> 1)) << 8) | (<u64> load<u8>(p + len - 1) << 16);
  }
  // The last step needs no second 128-bit product: the keyed mum above is where inputs that
  // differ stay apart under a key they cannot know; a 64-bit multiply by an odd constant,
  // taking its high half, spreads every bit of it (and of the length) into the 32 bits the
  // table's index comes from. 6 % faster Go text replay of the history, 3.5 % binary
  // (alternating processes, medians of 11, session 16); test/serf_state_test.ts floods it as before.
  // (The high half folded in first: an index from bits 32..48 of the product would otherwise
  // ignore the top 15 bits of the keyed value, a review of this step noted.)
  const y = mum(a ^ hashS1, b ^ seed) ^ hashS2 ^ (<u64> len * 0x9e3779b97f4a7c15);
  return <u32> (((y ^ (y >>> 32)) * 0xff51afd7ed558ccd) >>> 32);
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

// @ts-ignore: decorator
@inline function slotAt(i: u32): usize {
  return table + (<usize> i << SLOT_SHIFT);
}

/** Where slot `s`'s name ++ address bytes are. */
// @ts-ignore: decorator
@inline function slotBytes(s: usize, meta: u32): usize {
  return (meta & OUT) != 0 ? <usize> load<u32>(s, 12) : s + 12;
}

function sizeClass(size: usize): u32 {
  // Same rounding as mem.ts: two sizes share a block when they share a class.
  return size <= 16 ? 4 : 32 - <u32> clz(<u32> size - 1);
}

/** Frees slot `s`'s out-of-line block, if it has one. */
function freeOut(s: usize): void {
  const meta = load<u32>(s, 4);
  if ((meta & OUT) != 0) mem_free(<usize> load<u32>(s, 12), <usize> (meta & LEN_MASK) + <usize> load<u32>(s, 8));
}

/**
 * Allocates a zeroed table of `newCap` slots and moves every alive slot into it; dead slots
 * are dropped. False on OOM (the state is unchanged).
 */
function resize(newCap: u32): bool {
  const bytes = <usize> newCap << SLOT_SHIFT;
  const fresh = mem_alloc_zeroed(bytes);
  if (fresh == 0) return false;
  const mask = newCap - 1;
  const old = table;
  const oldCap = cap;
  for (let i: u32 = 0; i < oldCap; i++) {
    const s = old + (<usize> i << SLOT_SHIFT);
    const meta = load<u32>(s, 4);
    if (meta == 0) continue;
    if ((meta & DEAD) != 0 && !delta) {
      freeOut(s);
      continue;
    }
    let j = load<u32>(s) & mask;
    while (load<u32>(fresh + (<usize> j << SLOT_SHIFT), 4) != 0) j = (j + 1) & mask;
    const d = fresh + (<usize> j << SLOT_SHIFT);
    for (let k: usize = 0; k < SLOT_BYTES; k += 8) store<u64>(d + k, load<u64>(s + k));
  }
  if (old != 0) mem_free(old, <usize> oldCap << SLOT_SHIFT);
  table = fresh;
  cap = newCap;
  if (!delta) dead = 0;
  return true;
}

// ---- load ---------------------------------------------------------------------------
// Linear probing's cost is the length of its runs: a hit probes ~(1 + 1/(1 - a)) / 2 slots
// at load a, each slot a cache line and a hard-to-predict loop exit. Tables up to
// SPARSE_SLOTS (4 MiB, 32k nodes: any serf cluster but the largest) are kept at most half
// full, which costs little memory; larger ones fill to 4/5, so 100k nodes fit 131072 slots
// (8 MiB, which compaction walks) and memory stays near the alive set. Applying the 1M-event
// history of 10k nodes (16384 slots at load 0.61 under the 4/5 rule, 1.81 slots a lookup;
// 32768 at 0.3 now): 9-10 % faster, medians of 21 alternating rounds of the two builds.
const SPARSE_SLOTS: u32 = 65536;

/** True if a table of `c` slots holding `n` (alive + dead) is over its load limit. */
// @ts-ignore: decorator
@inline function overLoaded(n: u64, c: u32): bool {
  return c <= SPARSE_SLOTS ? n * 2 > <u64> c : n * 5 > <u64> c * 4;
}

/**
 * True if `c` slots leave `n` nodes room to grow: at most 3/8 full under the 1/2 limit (a
 * table that hits the limit doubles, to 1/4), at most half full under the 4/5 one.
 */
// @ts-ignore: decorator
@inline function roomy(n: u64, c: u32): bool {
  return c <= SPARSE_SLOTS ? n * 8 <= <u64> c * 3 : n * 2 <= <u64> c;
}

/** The table size a rebuild for `n` alive nodes picks (see roomy). */
function capFor(n: u32): u32 {
  let c = CAP_MIN;
  while (!roomy(<u64> n, c)) c <<= 1;
  return c;
}

/**
 * Slot index holding `name` (alive or dead: check its DEAD bit), or `-1 - i` where `i` is
 * the empty slot that ends its probe run (where an insert goes), so an insert probes once,
 * not twice. The table must exist.
 */
function find(namePtr: usize, nameLen: u32, h: u32): i32 {
  const mask = cap - 1;
  let i = h & mask;
  // Hash and length compared in one 64-bit word: [hash u32][meta u32], DEAD and OUT masked off.
  const want: u64 = <u64> h | (<u64> (USED | nameLen) << 32);
  const keyMask: u64 = 0xffffffff | (<u64> (USED | LEN_MASK) << 32);
  while (true) {
    const s = slotAt(i);
    const word = load<u64>(s);
    if ((word & keyMask) == want) {
      if (bytesEqual(slotBytes(s, <u32> (word >>> 32)), namePtr, nameLen)) return <i32> i;
    } else if ((word >>> 32) == 0) {
      return -1 - <i32> i;
    }
    i = (i + 1) & mask;
  }
}

/**
 * Stores name ++ address into the empty or reused slot `s` (DEAD is cleared). `oldOut` /
 * `oldOutSize`: the slot's previous out-of-line block (0 = none), reused when the new bytes
 * fit its size class, else freed. False on OOM (the slot is unchanged).
 */
function fill(s: usize, h: u32, namePtr: usize, nameLen: u32, addrPtr: usize, addrLen: u32, oldOut: usize, oldOutSize: usize): bool {
  const total = <usize> nameLen + <usize> addrLen;
  if (total <= <usize> INLINE_BYTES) {
    copyBytes(s + 12, namePtr, nameLen);
    copyBytes(s + 12 + nameLen, addrPtr, addrLen);
    if (oldOut != 0) mem_free(oldOut, oldOutSize);
    store<u32>(s, h);
    store<u32>(s, USED | nameLen, 4);
    store<u32>(s, addrLen, 8);
    return true;
  }
  let blk = oldOut;
  if (blk == 0 || sizeClass(oldOutSize) != sizeClass(total)) {
    blk = mem_alloc(total);
    if (blk == 0) return false;
    copyBytes(blk, namePtr, nameLen);
    if (oldOut != 0) mem_free(oldOut, oldOutSize);
  }
  copyBytes(blk + nameLen, addrPtr, addrLen);
  store<u32>(s, h);
  store<u32>(s, USED | OUT | nameLen, 4);
  store<u32>(s, addrLen, 8);
  store<u32>(s, <u32> blk, 12);
  return true;
}

function clearAll(): void {
  for (let i: u32 = 0; i < cap; i++) freeOut(slotAt(i));
  if (table != 0) mem_free(table, <usize> cap << SLOT_SHIFT);
  table = 0;
  cap = 0;
  count = 0;
  dead = 0;
  liveBytes = 0;
  deltaDeadBytes = 0;
  iterSlot = 0;
  iterEntry = 0;
}

// ---- API -----------------------------------------------------------------------------

/**
 * Empties the alive set, zeroes the clocks and sets the mode: bit 0 rejoinAfterLeave, bit 1
 * delta mode (see `delta`).
 */
export function state_reset(flags: u32): void {
  clearAll();
  clockMember = 0;
  clockEvent = 0;
  clockQuery = 0;
  rejoin = (flags & 1) != 0;
  delta = (flags & 2) != 0;
  deltaCleared = false;
  deltaFailed = false;
  deltaDropped = false;
  clockSet = 0;
}

/**
 * Sizes the table for `nodes` alive nodes now: the table that inserting them one by one would
 * end with, built once instead of doubled up to. Each doubling's table is fresh memory, and
 * first touching a page costs more than the rehash (0.6 us a 4 KiB page here: a 9k-node replay
 * spent ~5 ms growing its table, most of a compacted file's replay). The whole table is
 * faulted in at once (mem_alloc_zeroed), so a generous hint costs its memory: the host caps it
 * (SerfState.reserveFor, 2 MiB). Returns 0, or 1 when memory cannot grow (the state is
 * unchanged then). Never shrinks the table.
 */
export function state_reserve(nodes: u32): u32 {
  let c = CAP_MIN;
  while (overLoaded(<u64> nodes, c)) c <<= 1;
  if (c <= cap) return 0;
  return resize(c) ? 0 : 1;
}

/**
 * `alive: NAME ADDR`: inserts or replaces. Returns 0, or 1 when memory cannot grow or the name
 * is longer than a slot can record (512 MiB; only a Go text line can be that long). The state
 * is unchanged then.
 */
export function state_alive(namePtr: usize, nameLen: u32, addrPtr: usize, addrLen: u32): u32 {
  if (deltaDropped) return 0;
  if (nameLen > LEN_MASK) return 1;
  if (cap == 0 && !resize(CAP_MIN)) return 1;
  const h = name_hash(namePtr, nameLen);
  let found = find(namePtr, nameLen, h);
  if (found >= 0) {
    const s = slotAt(<u32> found);
    const meta = load<u32>(s, 4);
    const oldAddrLen = load<u32>(s, 8);
    if ((meta & OUT) == 0 && nameLen + addrLen <= INLINE_BYTES) {
      // The common case: the new address fits beside the name.
      copyBytes(s + 12 + nameLen, addrPtr, addrLen);
      store<u32>(s, addrLen, 8);
      if ((meta & DEAD) != 0) store<u32>(s, meta & ~DEAD, 4);
    } else {
      // The bytes move in line or out of line. The caller's name equals the stored one (find
      // compared them), so it is the source, wherever the stored copy lives.
      const out = (meta & OUT) != 0 ? <usize> load<u32>(s, 12) : 0;
      if (!fill(s, h, namePtr, nameLen, addrPtr, addrLen, out, <usize> nameLen + <usize> oldAddrLen)) return 1;
    }
    if ((meta & DEAD) != 0) {
      // Revived: its bytes left liveBytes when it died.
      if (delta) deltaDeadBytes -= nameLen;
      dead--;
      count++;
      liveBytes += nameLen + addrLen;
    } else {
      liveBytes = liveBytes - oldAddrLen + addrLen;
    }
    return 0;
  }
  // Keep alive + dead slots below the load limit (see overLoaded). The rebuild drops the
  // dead slots and at least doubles the room for alive ones.
  if (overLoaded(<u64> count + <u64> dead + 1, cap)) {
    let newCap = cap;
    const keep = <u64> count + (delta ? <u64> dead : 0);
    while (!roomy(keep + 1, newCap)) newCap <<= 1;
    if (!resize(newCap)) return 1;
    found = find(namePtr, nameLen, h);
  }
  if (!fill(slotAt(<u32> (-1 - found)), h, namePtr, nameLen, addrPtr, addrLen, 0, 0)) return 1;
  count++;
  liveBytes += nameLen + addrLen;
  return 0;
}

/** `not-alive: NAME`: marks the node dead if it is alive. */
export function state_not_alive(namePtr: usize, nameLen: u32): void {
  if (delta) {
    if (deltaDropped) return;
    if (!deltaNotAlive(namePtr, nameLen)) deltaFailed = true;
    return;
  }
  if (count == 0) return;
  const h = name_hash(namePtr, nameLen);
  const found = find(namePtr, nameLen, h);
  if (found < 0 || !markDead(slotAt(<u32> found))) return;
  // More dead than alive: drop them (a failed allocation just keeps them a while longer).
  if (dead > count + DEAD_SLACK) resize(capFor(count));
}

/** Sets slot `s`'s DEAD bit if it is alive; true if it was. */
// @ts-ignore: decorator
@inline function markDead(s: usize): bool {
  const meta = load<u32>(s, 4);
  if ((meta & DEAD) != 0) return false;
  store<u32>(s, meta | DEAD, 4);
  liveBytes -= (meta & LEN_MASK) + load<u32>(s, 8);
  count--;
  dead++;
  return true;
}

/** Delta mode's `not-alive`: marks the node dead, or records an unknown name as dead. False on OOM. */
function deltaNotAlive(namePtr: usize, nameLen: u32): bool {
  if (nameLen > LEN_MASK) return false;
  if (cap == 0 && !resize(CAP_MIN)) return false;
  const h = name_hash(namePtr, nameLen);
  let found = find(namePtr, nameLen, h);
  if (found >= 0) {
    if (markDead(slotAt(<u32> found))) deltaDied(nameLen);
    return true;
  }
  if (overLoaded(<u64> count + <u64> dead + 1, cap)) {
    if (!resize(cap << 1)) return false;
    found = find(namePtr, nameLen, h);
  }
  const s = slotAt(<u32> (-1 - found));
  if (!fill(s, h, namePtr, nameLen, namePtr, 0, 0, 0)) return false;
  store<u32>(s, load<u32>(s, 4) | DEAD, 4);
  dead++;
  deltaDied(nameLen);
  return true;
}

/** Sets a clock: kind 0 = member clock, 1 = event clock, 2 = query clock. The last value wins (as serf). */
export function state_clock(kind: u32, value: u64): void {
  if (kind < 3) clockSet |= 1 << kind;
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
  if (delta) {
    deltaCleared = true;
    clockSet = 0;
  }
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

// ---- moving the state to another instance ------------------------------------------------
// A Wasm memory never shrinks, so a log whose memory a burst grew gives it back by moving its
// state to a fresh instance (src/serf/_codec.ts, BinaryCodec.trim). Inserting the nodes
// again costs 330-430 ns each (first touches of the new table's pages): 33 ms for 100k. The
// table is moved as it is instead: the host copies the slot array across, and the bytes of
// the out-of-line blocks, packed by state_pack_out, are handed to state_adopt, which
// allocates the blocks anew and points the slots at them.

/** Address of the slot array (`state_capacity()` slots of 64 bytes; 0 when there is none). */
export function state_table_ptr(): usize {
  return table;
}

/** Dead slots in the table. */
export function state_dead(): u32 {
  return dead;
}

/** Bytes state_pack_out writes: the out-of-line blocks' contents, dead slots' included. */
export function state_out_bytes(): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const meta = load<u32>(slotAt(i), 4);
    if ((meta & OUT) != 0) n += (meta & LEN_MASK) + load<u32>(slotAt(i), 8);
  }
  return n;
}

/** Writes the out-of-line blocks' name ++ address bytes back to back at `dst`, in slot order. */
export function state_pack_out(dst: usize): void {
  for (let i: u32 = 0; i < cap; i++) {
    const s = slotAt(i);
    const meta = load<u32>(s, 4);
    if ((meta & OUT) == 0) continue;
    const n = (meta & LEN_MASK) + load<u32>(s, 8);
    copyBytes(dst, <usize> load<u32>(s, 12), n);
    dst += n;
  }
}

/**
 * Replaces the alive set with another instance's: `t` is a `mem_alloc(c * 64)` block holding
 * a copy of its slot array, `out` the bytes its state_pack_out wrote, `n`, `d` and `lb` its
 * state_count, state_dead and state_live_bytes. Clocks and the leave mode are left to the
 * caller (state_reset, state_clock). Returns 0, or 1 when memory cannot grow (then the alive
 * set is empty and `t` is freed).
 */
export function state_adopt(t: usize, c: u32, n: u32, d: u32, lb: u32, out: usize): u32 {
  clearAll();
  table = t;
  cap = c;
  for (let i: u32 = 0; i < c; i++) {
    const s = slotAt(i);
    const meta = load<u32>(s, 4);
    if ((meta & OUT) == 0) continue;
    const size = (meta & LEN_MASK) + load<u32>(s, 8);
    const blk = mem_alloc(size);
    if (blk == 0) {
      // Slots from i on still point into the other instance: drop them before clearing.
      for (let j = i; j < c; j++) store<u32>(slotAt(j), 0, 4);
      clearAll();
      return 1;
    }
    copyBytes(blk, out, size);
    store<u32>(s, <u32> blk, 12);
    out += size;
  }
  count = n;
  dead = d;
  liveBytes = lb;
  return 0;
}

/**
 * Starts an iteration over the alive set in slot order, which walks the table's memory
 * sequentially (the nodes live in their slots). Any change to the state ends it.
 */
export function state_iter_reset(): void {
  iterSlot = 0;
  iterEntry = 0;
}

/** Moves to the next alive node: 1 when positioned on one, 0 when done. */
export function state_iter_next(): u32 {
  while (iterSlot < cap) {
    const s = slotAt(iterSlot);
    iterSlot++;
    const meta = load<u32>(s, 4);
    if (meta != 0 && (meta & DEAD) == 0) {
      iterEntry = s;
      return 1;
    }
  }
  iterEntry = 0;
  return 0;
}

export function state_iter_name_ptr(): usize {
  return iterEntry == 0 ? 0 : slotBytes(iterEntry, load<u32>(iterEntry, 4));
}

export function state_iter_name_len(): u32 {
  return iterEntry == 0 ? 0 : load<u32>(iterEntry, 4) & LEN_MASK;
}

export function state_iter_addr_ptr(): usize {
  if (iterEntry == 0) return 0;
  const meta = load<u32>(iterEntry, 4);
  return slotBytes(iterEntry, meta) + (meta & LEN_MASK);
}

export function state_iter_addr_len(): u32 {
  return iterEntry == 0 ? 0 : load<u32>(iterEntry, 8);
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
    const s = slotAt(i);
    const meta = load<u32>(s, 4);
    if (meta == 0 || (meta & DEAD) != 0) continue;
    const nl = meta & LEN_MASK;
    const al = load<u32>(s, 8);
    const o = outOffsets + (<usize>n) * 12;
    store<u32>(o, at);
    copyBytes(outBytes + at, slotBytes(s, meta), nl + al);
    store<u32>(o, at + nl, 4);
    store<u32>(o, at + nl + al, 8);
    at += nl + al;
    n++;
  }
  return n;
}

// ---- sorted export -----------------------------------------------------------------------
// Replay results list the alive set sorted by name, byte-wise. Sorting 10k names in JS costs
// ~10 ms (string compares of sliced strings); here it is a quicksort over records built from
// the offset triples that `state_export` wrote, comparing name bytes directly.

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

// Sorting by memcmp alone is slow when every name shares a prefix ("node-000123"): each of the
// ~n log n comparisons walks the prefix first. So each node gets a 64-bit key, the 8 name
// bytes after the prefix common to all names (big-endian, zero-padded), and records are sorted
// by key, falling back to memcmp only when two keys are equal. Key order agrees with memcmp
// order: bytes before the common prefix length are equal, and a name that ends inside the key
// pads with zeros, which sort first; equal keys compare the whole names.

/** 8 bytes of the name at `p` (`len` bytes) from byte `at`, big-endian, zero-padded. */
function nameKey(p: usize, len: u32, at: u32): u64 {
  if (at + 8 <= len) return bswap<u64>(load<u64>(p + at));
  let k: u64 = 0;
  for (let i: u32 = 0; i < 8; i++) {
    k <<= 8;
    if (at + i < len) k |= <u64> load<u8>(p + at + i);
  }
  return k;
}

// Records of the keyed sort: | key u64 | name start u32 | addr start u32 | addr end u32 | pad |
const REC: usize = 24;

function cmpRec(a: usize, b: usize): i32 {
  const ka = load<u64>(a);
  const kb = load<u64>(b);
  if (ka != kb) return ka < kb ? -1 : 1;
  return cmpName(a + 8, b + 8);
}

function swapRec(a: usize, b: usize): void {
  const x0 = load<u64>(a);
  const x1 = load<u64>(a, 8);
  const x2 = load<u64>(a, 16);
  store<u64>(a, load<u64>(b));
  store<u64>(a, load<u64>(b, 8), 8);
  store<u64>(a, load<u64>(b, 16), 16);
  store<u64>(b, x0);
  store<u64>(b, x1, 8);
  store<u64>(b, x2, 16);
}

function sortRecs(base: usize, lo: i32, hi: i32): void {
  // Recurse on the smaller side, loop on the larger: stack depth stays O(log n).
  while (hi - lo > 16) {
    const mid = lo + ((hi - lo) >> 1);
    const pl = base + <usize>lo * REC;
    const pm = base + <usize>mid * REC;
    const ph = base + <usize>hi * REC;
    if (cmpRec(pm, pl) < 0) swapRec(pm, pl);
    if (cmpRec(ph, pl) < 0) swapRec(ph, pl);
    if (cmpRec(ph, pm) < 0) swapRec(ph, pm);
    swapRec(pm, ph - REC); // pivot at hi - 1
    const pivot = ph - REC;
    let i = lo;
    let j = hi - 1;
    while (true) {
      do i++; while (cmpRec(base + <usize>i * REC, pivot) < 0);
      do j--; while (j > lo && cmpRec(base + <usize>j * REC, pivot) > 0);
      if (i >= j) break;
      swapRec(base + <usize>i * REC, base + <usize>j * REC);
    }
    swapRec(base + <usize>i * REC, pivot);
    if (i - lo < hi - i) {
      sortRecs(base, lo, i - 1);
      lo = i + 1;
    } else {
      sortRecs(base, i + 1, hi);
      hi = i - 1;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    for (let j = i; j > lo && cmpRec(base + <usize>j * REC, base + <usize>(j - 1) * REC) < 0; j--) {
      swapRec(base + <usize>j * REC, base + <usize>(j - 1) * REC);
    }
  }
}

// Sorting the keyed records: an LSD radix sort on the 64-bit keys, one pass per key byte that
// is not the same in every key (names after their common prefix differ in a few bytes), then
// the quicksort above on each run of equal keys (names that share their first 8 bytes after
// the prefix), which compares whole names. Quicksort on the keys alone mispredicts about every
// other comparison: for 100k nodes it took 24 ms.

/** 8 x 256 byte counts of the keys, one histogram per key byte (8 KiB). */
const RADIX_COUNTS: usize = memory.data(8 * 256 * 4, 16);

/**
 * Sorts the `n` records at `recs` by key, stably, using `tmp` (room for `n` records) as the
 * other buffer; returns where the sorted records are (`recs` or `tmp`).
 */
function radixSortRecs(recs: usize, tmp: usize, n: u32): usize {
  memory.fill(RADIX_COUNTS, 0, 8 * 256 * 4);
  for (let i: u32 = 0; i < n; i++) {
    const k = load<u64>(recs + <usize>i * REC);
    for (let b: u32 = 0; b < 8; b++) {
      const c = RADIX_COUNTS + ((<usize>b << 10) | (<usize>((k >>> (<u64>b << 3)) & 0xff) << 2));
      store<u32>(c, load<u32>(c) + 1);
    }
  }
  let src = recs;
  let dst = tmp;
  for (let b: u32 = 0; b < 8; b++) {
    const counts = RADIX_COUNTS + (<usize>b << 10);
    // A byte every key shares orders nothing: skip its pass.
    const first = (load<u64>(src) >>> (<u64>b << 3)) & 0xff;
    if (load<u32>(counts + (<usize>first << 2)) == n) continue;
    let sum: u32 = 0;
    for (let d: usize = 0; d < 256; d++) {
      const c = load<u32>(counts + (d << 2));
      store<u32>(counts + (d << 2), sum);
      sum += c;
    }
    for (let i: u32 = 0; i < n; i++) {
      const r = src + <usize>i * REC;
      const k = load<u64>(r);
      const c = counts + (<usize>((k >>> (<u64>b << 3)) & 0xff) << 2);
      const at = load<u32>(c);
      store<u32>(c, at + 1);
      const o = dst + <usize>at * REC;
      store<u64>(o, k);
      store<u64>(o, load<u64>(r, 8), 8);
      store<u64>(o, load<u64>(r, 16), 16);
    }
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}

/** Sorts the `n` keyed records at `recs` by name; `tmp` is scratch room for `n` records or 0. */
function sortByName(recs: usize, tmp: usize, n: u32): usize {
  if (tmp == 0) {
    sortRecs(recs, 0, <i32>n - 1);
    return recs;
  }
  const sorted = radixSortRecs(recs, tmp, n);
  let i: u32 = 0;
  while (i < n) {
    const k = load<u64>(sorted + <usize>i * REC);
    let j = i + 1;
    while (j < n && load<u64>(sorted + <usize>j * REC) == k) j++;
    if (j - i > 1) sortRecs(sorted, <i32>i, <i32>j - 1);
    i = j;
  }
  return sorted;
}

/**
 * `state_export`, then the triples sorted by name bytes. Returns the number of entries, or
 * 0xffffffff (-1 in JS) when memory cannot grow for the sort keys (the triples are then unsorted).
 */
export function state_export_sorted(outBytes: usize, outOffsets: usize): u32 {
  const n = state_export(outBytes, outOffsets);
  sortBytes = outBytes;
  if (n <= 1) return n;
  const recs = mem_alloc(<usize>n * REC);
  if (recs == 0) return 0xffffffff;
  // The prefix every name shares.
  const first = outOffsets;
  const p0 = outBytes + <usize>load<u32>(first);
  let common = load<u32>(first, 4) - load<u32>(first);
  for (let i: u32 = 1; i < n && common > 0; i++) {
    const t = outOffsets + <usize>i * 12;
    const p = outBytes + <usize>load<u32>(t);
    const len = load<u32>(t, 4) - load<u32>(t);
    const m = len < common ? len : common;
    let k: u32 = 0;
    while (k + 8 <= m && load<u64>(p0 + k) == load<u64>(p + k)) k += 8;
    while (k < m && load<u8>(p0 + k) == load<u8>(p + k)) k++;
    common = k;
  }
  for (let i: u32 = 0; i < n; i++) {
    const t = outOffsets + <usize>i * 12;
    const r = recs + <usize>i * REC;
    const start = load<u32>(t);
    store<u64>(r, nameKey(outBytes + <usize>start, load<u32>(t, 4) - start, common));
    store<u64>(r + 8, load<u64>(t));
    store<u32>(r + 16, load<u32>(t, 8));
  }
  // Radix sorting needs a second buffer; without the memory for it, quicksort in place.
  const tmp = mem_alloc(<usize>n * REC);
  const sorted = sortByName(recs, tmp, n);
  for (let i: u32 = 0; i < n; i++) {
    const t = outOffsets + <usize>i * 12;
    const r = sorted + <usize>i * REC;
    store<u64>(t, load<u64>(r + 8));
    store<u32>(t, load<u32>(r + 16), 8);
  }
  if (tmp != 0) mem_free(tmp, <usize>n * REC);
  mem_free(recs, <usize>n * REC);
  return n;
}

// ---- delta export and merge (parallel replay) ---------------------------------------------

/**
 * Delta flags: bit 0 a leave cleared the state, bits 1..3 clocks set, bit 4 memory ran out,
 * bit 5 dropped for its dead names (deltaDied).
 */
export function state_delta_flags(): u32 {
  return (deltaCleared ? 1 : 0) | (clockSet << 1) | (deltaFailed ? 16 : 0) | (deltaDropped ? 32 : 0);
}

/** Slots in use (alive and dead), and the name + address bytes they hold: the export's sizes. */
export function state_delta_count(): u32 {
  return count + dead;
}
export function state_delta_bytes(): u32 {
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const s = slotAt(i);
    const meta = load<u32>(s, 4);
    if (meta != 0) n += (meta & LEN_MASK) + load<u32>(s, 8);
  }
  return n;
}

/**
 * Writes every slot in use: names and addresses back to back at `outBytes`, and per slot
 * three u32 at `outEntries`: name length, address length, 1 if dead. Returns the count.
 */
export function state_delta_export(outBytes: usize, outEntries: usize): u32 {
  let at: usize = outBytes;
  let n: u32 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const s = slotAt(i);
    const meta = load<u32>(s, 4);
    if (meta == 0) continue;
    const nl = meta & LEN_MASK;
    const al = load<u32>(s, 8);
    copyBytes(at, slotBytes(s, meta), nl + al);
    const e = outEntries + <usize> n * 12;
    store<u32>(e, nl);
    store<u32>(e, al, 4);
    store<u32>(e, (meta & DEAD) != 0 ? 1 : 0, 8);
    at += nl + al;
    n++;
  }
  return n;
}

/**
 * Applies a delta exported by another instance (`state_delta_export`, `state_delta_flags`,
 * clocks `c0`..`c2`) to this state, as if this state had replayed those records itself.
 * Returns 0, or 1 when memory cannot grow.
 */
export function state_delta_merge(bytes: usize, entries: usize, n: u32, flags: u32, c0: u64, c1: u64, c2: u64): u32 {
  if ((flags & 1) != 0) state_leave();
  let p = bytes;
  for (let i: u32 = 0; i < n; i++) {
    const e = entries + <usize> i * 12;
    const nl = load<u32>(e);
    const al = load<u32>(e, 4);
    if (load<u32>(e, 8) != 0) state_not_alive(p, nl);
    else if (state_alive(p, nl, p + nl, al) != 0) return 1;
    p += nl + al;
  }
  if ((flags & 2) != 0) state_clock(0, c0);
  if ((flags & 4) != 0) state_clock(1, c1);
  if ((flags & 8) != 0) state_clock(2, c2);
  return 0;
}
