// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-16.
//
// Sixteen 256-entry tables let the inner loop consume sixteen bytes with
// sixteen independent table look-ups (Intel's slicing-by-N), which is the fastest
// portable scheme without a hardware CRC instruction: WebAssembly has none,
// and no carry-less multiply either, so PCLMUL folding is not available.

const POLY: u32 = 0x82f63b78;

/**
 * 16 tables x 256 entries x 4 bytes (16 KiB, fits L1) at address 0. The build passes
 * `--memoryBase 16384`, so the compiler's own static data starts after them; a constant
 * address lets every look-up carry its table base in the load's offset immediate.
 */
const TABLE: usize = 0;

function initTables(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    store<u32>(TABLE + ((<usize> i) << 2), c);
  }
  for (let i: u32 = 0; i < 256; i++) {
    let c = load<u32>(TABLE + ((<usize> i) << 2));
    for (let t: usize = 1; t < 16; t++) {
      c = load<u32>(TABLE + ((<usize> (c & 0xff)) << 2)) ^ (c >>> 8);
      store<u32>(TABLE + (t << 10) + ((<usize> i) << 2), c);
    }
  }
}
initTables();

// Table look-ups take the byte already scaled by 4: `(w >>> (8k - 2)) & 0x3fc` is byte k of w
// times 4, one instruction cheaper than shifting down and back up.

// @ts-ignore: decorator
@inline function b0(w: u32): u32 {
  return (w << 2) & 0x3fc;
}

// @ts-ignore: decorator
@inline function b1(w: u32): u32 {
  return (w >>> 6) & 0x3fc;
}

// @ts-ignore: decorator
@inline function b2(w: u32): u32 {
  return (w >>> 14) & 0x3fc;
}

// @ts-ignore: decorator
@inline function b3(w: u32): u32 {
  return (w >>> 22) & 0x3fc;
}

/**
 * Extends `crc` (a finished CRC32C value; 0 for a fresh start) with `len` bytes at `ptr`.
 * `crc32c_update(crc32c_update(0, a), b) == crc32c_update(0, a ++ b)`.
 */
export function crc32c_update(crc: u32, ptr: usize, len: usize): u32 {
  return ~crcRaw(~crc, ptr, len);
}

/**
 * One slicing-by-16 step over 16 bytes whose third 4-byte word is zero (a frame's first 16
 * bytes with its CRC field read as zero): `w0`, `w1`, `w3` are the other words. Every table
 * maps byte 0 to 0, so the zero word costs no look-ups: 12 instead of 16.
 */
// @ts-ignore: decorator
@inline export function crcStep16Z(c: u32, w0: u32, w1: u32, w3: u32): u32 {
  const a = w0 ^ c;
  const x0 = (load<u32>(<usize> b0(a), 15360) ^ load<u32>(<usize> b1(a), 14336)) ^
    (load<u32>(<usize> b2(a), 13312) ^ load<u32>(<usize> b3(a), 12288));
  const x1 = (load<u32>(<usize> b0(w1), 11264) ^ load<u32>(<usize> b1(w1), 10240)) ^
    (load<u32>(<usize> b2(w1), 9216) ^ load<u32>(<usize> b3(w1), 8192));
  const x3 = (load<u32>(<usize> b0(w3), 3072) ^ load<u32>(<usize> b1(w3), 2048)) ^
    (load<u32>(<usize> b2(w3), 1024) ^ load<u32>(<usize> b3(w3), 0));
  return (x0 ^ x1) ^ x3;
}

// The look-ups are written out in crcStep16Z and in each step of crcRaw, not shared through a
// helper: a load's offset immediate must be a literal in AssemblyScript, and a helper taking
// the table base as an argument leaves an i32.add on every look-up (tried: 313 bytes more
// code, the base no longer in the offset).

/** The CRC32C loop on the raw (inverted) state: no pre- or post-inversion. */
export function crcRaw(c: u32, ptr: usize, len: usize): u32 {
  // No alignment prologue: unaligned loads cost nothing extra on the targets we run on,
  // and frame payloads start 4 bytes off an 8-byte boundary.
  // Slicing-by-16: sixteen independent look-ups per iteration. The XORs are
  // written as a balanced tree so the dependency chain back into `c` stays short.
  while (len >= 16) {
    const a = load<u32>(ptr) ^ c;
    const b = load<u32>(ptr, 4);
    const d = load<u32>(ptr, 8);
    const e = load<u32>(ptr, 12);
    const x0 = (load<u32>(<usize> b0(a), 15360) ^ load<u32>(<usize> b1(a), 14336)) ^
      (load<u32>(<usize> b2(a), 13312) ^ load<u32>(<usize> b3(a), 12288));
    const x1 = (load<u32>(<usize> b0(b), 11264) ^ load<u32>(<usize> b1(b), 10240)) ^
      (load<u32>(<usize> b2(b), 9216) ^ load<u32>(<usize> b3(b), 8192));
    const x2 = (load<u32>(<usize> b0(d), 7168) ^ load<u32>(<usize> b1(d), 6144)) ^
      (load<u32>(<usize> b2(d), 5120) ^ load<u32>(<usize> b3(d), 4096));
    const x3 = (load<u32>(<usize> b0(e), 3072) ^ load<u32>(<usize> b1(e), 2048)) ^
      (load<u32>(<usize> b2(e), 1024) ^ load<u32>(<usize> b3(e), 0));
    c = (x0 ^ x1) ^ (x2 ^ x3);
    ptr += 16;
    len -= 16;
  }
  if (len >= 8) {
    const a = load<u32>(ptr) ^ c;
    const b = load<u32>(ptr, 4);
    c = ((load<u32>(<usize> b0(a), 7168) ^ load<u32>(<usize> b1(a), 6144)) ^
      (load<u32>(<usize> b2(a), 5120) ^ load<u32>(<usize> b3(a), 4096))) ^
      ((load<u32>(<usize> b0(b), 3072) ^ load<u32>(<usize> b1(b), 2048)) ^
        (load<u32>(<usize> b2(b), 1024) ^ load<u32>(<usize> b3(b), 0)));
    ptr += 8;
    len -= 8;
  }
  while (len > 0) {
    c = load<u32>(<usize> b0(c ^ load<u8>(ptr)), 0) ^ (c >>> 8);
    ptr++;
    len--;
  }
  return c;
}
