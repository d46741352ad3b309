// The one allocator of a core instance, shared by the host (chunk buffers, indexes)
// and by Wasm-side structures (the alive-set table). `--runtime stub` has no free, and
// a long replay churns through table resizes and string slots, so memory would grow
// with the file instead of with the live state. This is a segregated free-list
// allocator: sizes round up to a power of two (16 B .. 2 GiB), freed blocks go on their
// class's list and are reused first, new blocks come from a bump pointer over
// memory.grow. Waste is bounded by 2x the live bytes per class.
//
// The host learns that memory grew by comparing `memory.buffer` identities
// (src/_wasm/core.ts), because memory.grow detaches every JS view.

const CLASS_MIN_LOG2: u32 = 4; //  16-byte minimum block
const CLASS_MAX_LOG2: u32 = 31; // 2 GiB maximum block
const PAGE: usize = 65536;

/** Heads of the free lists, one u32 per class (a freed block stores the next pointer in its first 4 bytes). */
const FREE_HEADS: usize = memory.data(4 * 32, 16);

let top: usize = 0;

function ensureTop(): void {
  if (top == 0) top = (__heap_base + 63) & ~63;
}

// @ts-ignore: decorator
@inline function classOf(size: usize): u32 {
  if (size <= (1 << CLASS_MIN_LOG2)) return CLASS_MIN_LOG2;
  return 32 - <u32> clz(<u32> size - 1);
}

/**
 * Allocates at least `size` bytes, aligned to min(block size, 64). Returns 0 when memory
 * cannot grow (the host maps that to a RangeError).
 */
export function mem_alloc(size: usize): usize {
  ensureTop();
  if (size > (<usize> 1 << CLASS_MAX_LOG2)) return 0;
  const cls = classOf(size);
  const head = FREE_HEADS + (<usize> cls << 2);
  const free = load<u32>(head);
  if (free != 0) {
    store<u32>(head, load<u32>(free));
    return free;
  }
  const bytes = <usize> 1 << cls;
  const align: usize = bytes < 64 ? bytes : 64;
  const ptr = (top + align - 1) & ~(align - 1);
  const end = <u64> ptr + <u64> bytes;
  const have = <u64> memory.size() * PAGE;
  if (end > have) {
    const pages = <i32> ((end - have + PAGE - 1) / PAGE);
    if (memory.grow(pages) < 0) return 0;
  }
  top = <usize> end;
  return ptr;
}

/**
 * As `mem_alloc`, the block zeroed. A block from the bump region is zero already (memory past
 * the bump pointer has never been written: memory.grow gives zeroed pages), so only a reused
 * one is cleared.
 *
 * A fresh block gets one write per 4 KiB page instead. Its user (the alive set's table) reads
 * a slot before it writes one, and the first read of a page the OS has not yet given the
 * process maps the shared zero page, so the write after it is a second fault, a copy-on-write
 * that flushes the page from every core's TLB: an interrupt to the other core whenever another
 * thread of the process runs there (a parallel replay's Worker). Writing first makes it one
 * fault and no flush: a fresh replay of the 1M-event history took 1.6 faults per page of its
 * memory, and two such replays in one process ran 1.45x as long as alone (session 17).
 */
export function mem_alloc_zeroed(size: usize): usize {
  ensureTop();
  const before = top;
  const ptr = mem_alloc(size);
  if (ptr == 0) return 0;
  if (top == before) {
    memory.fill(ptr, 0, size);
  } else {
    for (let p = ptr; p < ptr + size; p += OS_PAGE) store<u8>(p, 0);
  }
  return ptr;
}

/** The smallest page an OS maps (4 KiB on x86-64 and most arm64 kernels; more only helps). */
const OS_PAGE: usize = 4096;

/** Returns a block from `mem_alloc(size)` (same `size`) to its free list. */
export function mem_free(ptr: usize, size: usize): void {
  if (ptr == 0) return;
  const head = FREE_HEADS + (<usize> classOf(size) << 2);
  store<u32>(ptr, load<u32>(head));
  store<u32>(head, <u32> ptr);
}

/** Bytes handed out from the bump region so far (free-listed blocks included). */
export function mem_used(): usize {
  ensureTop();
  return top - ((__heap_base + 63) & ~63);
}

/** Copies `len` bytes from `src` to `dst` (non-overlapping). */
export function copyBytes(dst: usize, src: usize, len: u32): void {
  // memory.copy is a call out of the Wasm code in V8; names and addresses are short.
  if (len > 64) {
    memory.copy(dst, src, len);
  } else if (len >= 8) {
    const last = <usize> len - 8;
    for (let i: usize = 0; i < last; i += 8) store<u64>(dst + i, load<u64>(src + i));
    store<u64>(dst + last, load<u64>(src + last));
  } else if (len >= 4) {
    const tail = load<u32>(src + len - 4);
    store<u32>(dst, load<u32>(src));
    store<u32>(dst + len - 4, tail);
  } else if (len > 0) {
    const m = len >> 1;
    const b0 = load<u8>(src);
    const b1 = load<u8>(src + m);
    const b2 = load<u8>(src + len - 1);
    store<u8>(dst, b0);
    store<u8>(dst + m, b1);
    store<u8>(dst + len - 1, b2);
  }
}

/** Zeroes the `len` (< 8) bytes at `dst`: frame padding, without a call out of Wasm. */
export function zeroSmall(dst: usize, len: usize): void {
  for (let i: usize = 0; i < len; i++) store<u8>(dst + i, 0);
}

/**
 * 1 if every one of the `len` bytes at `ptr` is below 0x80 (ASCII), else 0. For the host's
 * decode of exported names: a JavaScript loop over them ran in V8's interpreter on a
 * process's first replay (2-4 ms for 9k nodes), this is microseconds in any tier.
 */
export function all_ascii(ptr: usize, len: usize): u32 {
  let acc = i8x16.splat(0);
  let p = ptr;
  const end = ptr + len;
  while (p + 16 <= end) {
    acc = v128.or(acc, v128.load(p));
    p += 16;
  }
  let tail: u32 = 0;
  while (p < end) {
    tail |= <u32> load<u8>(p);
    p++;
  }
  return i8x16.bitmask(acc) == 0 && tail < 0x80 ? 1 : 0;
}
