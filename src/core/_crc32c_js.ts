// Plain TypeScript CRC32C: the byte-wise reference for differential tests, and slicing-by-8,
// which is the CRC benchmarks' baseline and what `crc32c()` uses for small inputs (below
// SMALL_INPUT_BYTES copying into Wasm memory costs more than the Wasm loop saves).

const POLY = 0x82f63b78;

function makeTables(): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = t0[i]!;
    for (let t = 1; t < 8; t++) {
      c = (t0[c & 0xff]! ^ (c >>> 8)) >>> 0;
      tables[t]![i] = c;
    }
  }
  return tables;
}

// Built on first use, not at import: 1.5 ms in V8's interpreter, the largest piece of a fresh
// process's `import` of snaplog, and a start-up that only checks a file header (20 bytes) never
// needs them (see crc32cBitwise).
const NONE: Uint32Array = new Uint32Array(0);
let T0: Uint32Array = NONE,
  T1: Uint32Array = NONE,
  T2 = NONE,
  T3 = NONE,
  T4 = NONE,
  T5 = NONE,
  T6 = NONE,
  T7 = NONE;

function buildTables(): void {
  const t = makeTables();
  [T0, T1, T2, T3, T4, T5, T6, T7] = [t[0]!, t[1]!, t[2]!, t[3]!, t[4]!, t[5]!, t[6]!, t[7]!];
}

/** Inputs up to this many bytes take {@link crc32cBitwise} while the tables are not built. */
const BITWISE_MAX_BYTES = 32;

/** Bit-at-a-time CRC32C: no tables, for the few short inputs of a process's start-up. */
export function crc32cBitwise(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    c ^= data[i]!;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (POLY & -(c & 1));
  }
  return ~c >>> 0;
}

/** Byte-at-a-time table CRC32C: the obviously correct reference. */
export function crc32cBytewise(data: Uint8Array, seed = 0): number {
  if (T0 === NONE) buildTables();
  const t0 = T0;
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Slicing-by-8 CRC32C in plain TypeScript: the fair JavaScript baseline for benchmarks. */
export function crc32cSlicing8(data: Uint8Array, seed = 0): number {
  if (T0 === NONE) {
    if (data.length <= BITWISE_MAX_BYTES) return crc32cBitwise(data, seed);
    buildTables();
  }
  const t0 = T0, t1 = T1, t2 = T2, t3 = T3, t4 = T4, t5 = T5, t6 = T6, t7 = T7;
  let c = ~seed >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
    c = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
