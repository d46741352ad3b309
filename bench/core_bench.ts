// CRC32C and record frames: Wasm beside the plain TypeScript baseline in the same group.
import { frameChecksumRef } from "../src/core/_frame_ref.ts";
import { do_not_optimize } from "mitata";
import { crc32c } from "../src/core/crc32c.ts";
import { crc32cSlicing8 } from "../src/core/_crc32c_js.ts";
import { WasmCore } from "../src/_wasm/core.ts";
import { FrameEncoder, FrameScanner, frameSize } from "../src/core/frame.ts";
import { suiteBench, suiteGroup, type SuiteOptions } from "./_harness.ts";

/** Payload size of the record benchmarks: a serf `alive` record is about this big. */
const RECORD_BYTES = 40;

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Registers the CRC32C and frame codec groups. */
export function registerCoreBenches(_opts: SuiteOptions): void {
  for (const size of [64, 4096, 1 << 20]) {
    const label = size >= 1 << 20 ? `${size >> 20} MiB` : size >= 1024 ? `${size >> 10} KiB` : `${size} B`;
    const data = randomBytes(size);
    const core = new WasmCore();
    const ptr = core.alloc(size);
    core.u8.set(data, ptr);
    suiteGroup(`crc32c ${label}`, () => {
      suiteBench("typescript slicing-by-8", { bytes: size }, () => do_not_optimize(crc32cSlicing8(data)), {
        baseline: true,
      });
      suiteBench(
        "crc32c() public API (TS below 256 B, Wasm above, copy in)",
        { bytes: size },
        () => do_not_optimize(crc32c(data)),
      );
      suiteBench(
        "wasm, data in Wasm memory",
        { bytes: size },
        () => do_not_optimize(core.exports.crc32c_update(0, ptr, size)),
      );
    });
  }

  // 4 MiB of 40-byte records: 74,898 frames of 56 bytes.
  const limits = { typeMask: 0xfffffffe, recordSizeMax: 1 << 20 };
  const core = new WasmCore();
  const count = Math.floor((4 << 20) / frameSize(RECORD_BYTES));
  const enc = new FrameEncoder(core, limits, count * frameSize(RECORD_BYTES));
  const payload = randomBytes(RECORD_BYTES);
  for (let i = 0; i < count; i++) enc.append(1 + (i % 5), payload);
  const encoded = enc.bytes().slice();
  const scanner = new FrameScanner(core, limits, encoded.length, 8192);
  scanner.buffer().set(encoded);

  suiteGroup("frame scan, 40-byte records, 4 MiB", () => {
    suiteBench("typescript (DataView + slicing-by-8 CRC)", { bytes: encoded.length, records: count }, () => {
      const view = new DataView(encoded.buffer);
      let off = 0, n = 0;
      while (off < encoded.length) {
        const len = view.getUint32(off + 4, true);
        const size = frameSize(len);
        if (frameChecksumRef(encoded, off, size) !== view.getUint32(off + 8, true)) {
          throw new Error("bad crc");
        }
        off += size;
        n++;
      }
      do_not_optimize(n);
    }, { baseline: true });
    suiteBench("wasm frames_scan, validate only", { bytes: encoded.length, records: count }, () => {
      const r = scanner.scan(0, encoded.length, false);
      if (r.count !== count) throw new Error(`scan found ${r.count}`);
    });
    suiteBench("wasm frames_scan, with index", { bytes: encoded.length, records: count }, () => {
      let off = 0, n = 0;
      while (off < encoded.length) {
        const r = scanner.scan(off, encoded.length, true);
        off = r.offset;
        n += r.count;
      }
      if (n !== count) throw new Error(`scan found ${n}`);
    });
  });

  // Encode 4096 records per call: descriptors and payloads already in Wasm memory.
  const batch = 4096;
  const src = core.alloc(batch * RECORD_BYTES);
  const desc = core.alloc(batch * 12);
  const out = core.alloc(batch * frameSize(RECORD_BYTES));
  for (let i = 0; i < batch; i++) {
    core.u8.set(payload, src + i * RECORD_BYTES);
    core.view.setUint32(desc + i * 12, 1, true);
    core.view.setUint32(desc + i * 12 + 4, i * RECORD_BYTES, true);
    core.view.setUint32(desc + i * 12 + 8, RECORD_BYTES, true);
  }
  const staging = new FrameEncoder(core, limits, batch * frameSize(RECORD_BYTES));
  suiteGroup("frame encode, 40-byte records, 4096 per batch", () => {
    suiteBench("typescript (DataView + slicing-by-8 CRC)", { records: batch }, () => {
      const buf = new Uint8Array(batch * frameSize(RECORD_BYTES));
      const view = new DataView(buf.buffer);
      let off = 0;
      for (let i = 0; i < batch; i++) {
        view.setUint32(off, 1, true);
        view.setUint32(off + 4, RECORD_BYTES, true);
        buf.set(payload, off + 12);
        const size = frameSize(RECORD_BYTES);
        view.setUint32(off + 8, frameChecksumRef(buf, off, size), true);
        off += size;
      }
      do_not_optimize(buf);
    }, { baseline: true });
    suiteBench("wasm frames_encode (gather from descriptors)", { records: batch }, () => {
      core.exports.frames_encode(desc, batch, src, out, batch * frameSize(RECORD_BYTES), 1 << 20, 0);
    });
    suiteBench("wasm in place: reserve + write payload + seal", { records: batch }, () => {
      staging.clear();
      for (let i = 0; i < batch; i++) {
        const at = staging.reserve(1, RECORD_BYTES);
        core.u8.set(payload, at);
      }
      staging.seal();
    });
  });
}
