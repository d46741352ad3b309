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

const TABLES = makeTables();
const T0 = TABLES[0]!, T1 = TABLES[1]!, T2 = TABLES[2]!, T3 = TABLES[3]!;
const T4 = TABLES[4]!, T5 = TABLES[5]!, T6 = TABLES[6]!, T7 = TABLES[7]!;

/** Byte-at-a-time table CRC32C: the obviously correct reference. */
export function crc32cBytewise(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  for (let i = 0; i < data.length; i++) c = T0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Slicing-by-8 CRC32C in plain TypeScript: the fair JavaScript baseline for benchmarks. */
export function crc32cSlicing8(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
    c = T7[a & 0xff]! ^ T6[(a >>> 8) & 0xff]! ^ T5[(a >>> 16) & 0xff]! ^ T4[a >>> 24]! ^
      T3[data[i + 4]!]! ^ T2[data[i + 5]!]! ^ T1[data[i + 6]!]! ^ T0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = T0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
