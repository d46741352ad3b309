// Plain TypeScript frame checksums: the reference the Wasm codec is tested against
// (test/frame_test.ts) and the frame benchmarks' baseline (bench/core_bench.ts). Not
// published: the package's own frames are sealed and checked in Wasm.
import { crc32cSlicing8 } from "./_crc32c_js.ts";

const ZERO4 = new Uint8Array(4);

/**
 * The checksum of the `size`-byte frame at `off` in `bytes`: crc32c of the whole frame,
 * padding included, with its own field (bytes 8..12) read as zero. README "Frames".
 */
export function frameChecksumRef(bytes: Uint8Array, off: number, size: number): number {
  const head = crc32cSlicing8(bytes.subarray(off, off + 8));
  return crc32cSlicing8(bytes.subarray(off + 12, off + size), crc32cSlicing8(ZERO4, head));
}
