import assert from "node:assert/strict";
import { WasmCore } from "../src/_wasm/core.ts";
import {
  decodeFileHeader,
  encodeFileHeader,
  FILE_HEADER_BYTES,
  FileKind,
  FRAME_HEADER_BYTES,
  FrameEncoder,
  FrameScanner,
  frameSize,
  type ScanResult,
  ScanStatus,
} from "../src/core/frame.ts";
import { frameChecksumRef } from "../src/core/_frame_ref.ts";
import { crc32c } from "../src/core/crc32c.ts";
import { Rng, testSeed } from "./_rng.ts";

const LIMITS = { typeMask: 0b1111_1110, recordSizeMax: 4096 }; // types 1..7

/** Encodes `records` and returns the sealed bytes (a copy, outside Wasm memory). */
function encode(records: Array<[number, Uint8Array]>): Uint8Array {
  const enc = new FrameEncoder(new WasmCore(), LIMITS, 1 << 20);
  for (const [type, payload] of records) assert.ok(enc.append(type, payload));
  return enc.bytes().slice();
}

/** Scans `bytes` (copied into a fresh scanner) and returns the result plus decoded frames. */
function scan(
  bytes: Uint8Array,
  indexEntries = 8192,
): ScanResult & { frames: Array<[number, Uint8Array]>; scanner: FrameScanner } {
  const sc = new FrameScanner(new WasmCore(), LIMITS, bytes.length + 64, indexEntries);
  sc.buffer().set(bytes);
  const r = sc.scan(0, bytes.length);
  const frames: Array<[number, Uint8Array]> = [];
  for (let i = 0; i < r.count; i++) frames.push([sc.type(i), sc.payload(i).slice()]);
  return { ...r, frames, scanner: sc };
}

function randomRecords(rng: Rng, n: number): Array<[number, Uint8Array]> {
  return Array.from({ length: n }, () => [1 + rng.int(7), rng.bytes(rng.int(100))] as [number, Uint8Array]);
}

/** Offsets where each frame of `records` starts. */
function frameOffsets(records: Array<[number, Uint8Array]>): number[] {
  const out: number[] = [];
  let off = 0;
  for (const [, p] of records) {
    out.push(off);
    off += frameSize(p.length);
  }
  return out;
}

Deno.test("FrameEncoder and FrameScanner round-trip random batches", () => {
  const rng = new Rng(testSeed("frame round trip"));
  for (let round = 0; round < 50; round++) {
    const records = randomRecords(rng, rng.int(200));
    const bytes = encode(records);
    assert.equal(bytes.length % 8, 0);
    const r = scan(bytes);
    assert.equal(r.status, ScanStatus.end);
    assert.equal(r.offset, bytes.length);
    assert.deepEqual(r.frames, records);
  }
});

Deno.test("frames_encode writes the same bytes as reserve-and-seal", () => {
  const rng = new Rng(testSeed("frames_encode"));
  const records = randomRecords(rng, 300);
  const want = encode(records);
  const core = new WasmCore();
  const payloadBytes = records.reduce((n, [, p]) => n + p.length, 0);
  const src = core.alloc(payloadBytes + 8);
  const desc = core.alloc(records.length * 12);
  const out = core.alloc(want.length + 64);
  core.u8.fill(0xee, out, out + want.length + 64); // stale memory must not leak into padding
  let at = 0;
  records.forEach(([type, p], i) => {
    core.u8.set(p, src + at);
    core.view.setUint32(desc + i * 12, type, true);
    core.view.setUint32(desc + i * 12 + 4, at, true);
    core.view.setUint32(desc + i * 12 + 8, p.length, true);
    at += p.length;
  });
  const status = core.exports.frames_encode(desc, records.length, src, out, want.length + 64, 4096, 0);
  assert.equal(status, 0);
  assert.equal(core.exports.encode_count(), records.length);
  assert.equal(core.exports.encode_bytes(), want.length);
  assert.deepEqual(core.u8.slice(out, out + want.length), want);
  // Output too small: stops on a record boundary and says how many fit.
  const tight = core.exports.frames_encode(desc, records.length, src, out, 100, 4096, 0);
  assert.equal(tight, 1);
  assert.ok(core.exports.encode_bytes() <= 100);
});

Deno.test("FrameScanner stops with badCrc at a flipped payload byte", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array([1, 2, 3])], [2, new Uint8Array(40)], [
    3,
    new Uint8Array(5),
  ]];
  const bytes = encode(records);
  const offs = frameOffsets(records);
  bytes[offs[1]! + FRAME_HEADER_BYTES + 17]! ^= 0x40;
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.badCrc);
  assert.equal(r.offset, offs[1]);
  assert.equal(r.count, 1);
  assert.equal(r.frameEnd, offs[2]);
  // The frame after the damage is intact: resync finds it, so this is corruption, not a torn tail.
  assert.equal(r.scanner.resync(offs[1]! + 8, bytes.length), offs[2]);
});

Deno.test("FrameScanner stops with badCrc when the stored checksum is flipped", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(8)], [1, new Uint8Array(8)]];
  const bytes = encode(records);
  bytes[frameOffsets(records)[1]! + 8]! ^= 1;
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.badCrc);
  assert.equal(r.count, 1);
});

Deno.test("FrameScanner catches a type changed to another allowed type by the checksum", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array([9, 9])]];
  const bytes = encode(records);
  bytes[0] = 2;
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.badCrc);
  assert.equal(r.offset, 0);
  assert.equal(r.count, 0);
});

Deno.test("Wasm frame checksums equal the TypeScript reference for every payload length 0..300", () => {
  const rng = new Rng(testSeed("frame checksum reference"));
  const records: Array<[number, Uint8Array]> = [];
  for (let len = 0; len <= 300; len++) records.push([1 + rng.int(7), rng.bytes(len)]);
  // Both sealing paths: append (copy, then seal) and reserve + write in place + seal.
  const bytes = encode(records);
  const offs = frameOffsets(records);
  for (let i = 0; i < records.length; i++) {
    const size = frameSize(records[i]![1].length);
    const stored = new DataView(bytes.buffer).getUint32(offs[i]! + 8, true);
    assert.equal(stored, frameChecksumRef(bytes, offs[i]!, size), `payload ${records[i]![1].length}`);
  }
  const core = new WasmCore();
  const enc = new FrameEncoder(core, LIMITS, 1 << 20);
  for (const [type, payload] of records) {
    const at = enc.reserve(type, payload.length);
    core.u8.set(payload, at);
  }
  assert.deepEqual(enc.bytes().slice(), bytes);
});

Deno.test("FrameScanner catches every non-zero padding byte by the checksum", () => {
  // A 3-byte payload: 12 + 3 = 15, padded to 16, so byte 15 is padding; a 1-byte payload has 7.
  for (const len of [1, 3, 7]) {
    const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(len).fill(5)], [1, new Uint8Array(8)]];
    const clean = encode(records);
    for (let pad = 12 + len; pad < frameSize(len); pad++) {
      const bytes = clean.slice();
      bytes[pad] = 0x40;
      const r = scan(bytes);
      assert.equal(r.status, ScanStatus.badCrc, `payload ${len}, padding byte ${pad}`);
      assert.equal(r.offset, 0);
    }
  }
});

Deno.test("FrameScanner stops with badType on a type outside the mask", () => {
  const bytes = encode([[1, new Uint8Array(4)], [1, new Uint8Array(4)]]);
  bytes[16] = 9; // second frame starts at 16
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.badType);
  assert.equal(r.offset, 16);
  assert.equal(r.count, 1);
  bytes[16] = 200;
  assert.equal(scan(bytes).status, ScanStatus.badType);
});

Deno.test("FrameScanner stops with badHeader on non-zero flags or reserved bytes", () => {
  for (const at of [1, 2, 3]) {
    const bytes = encode([[1, new Uint8Array(4)]]);
    bytes[at] = 0x80;
    const r = scan(bytes);
    assert.equal(r.status, ScanStatus.badHeader, `byte ${at}`);
    assert.equal(r.offset, 0);
  }
});

Deno.test("FrameScanner never trusts a corrupt length: above the limit is badLength", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(10)], [1, new Uint8Array(10)]];
  const bytes = encode(records);
  const second = frameOffsets(records)[1]!;
  new DataView(bytes.buffer).setUint32(second + 4, 0x7fffffff, true);
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.badLength);
  assert.equal(r.offset, second);
  assert.equal(r.count, 1);
});

Deno.test("FrameScanner reports a length beyond the buffer as incomplete, not a read past the end", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(10)], [1, new Uint8Array(10)]];
  const bytes = encode(records);
  const second = frameOffsets(records)[1]!;
  new DataView(bytes.buffer).setUint32(second + 4, 4000, true); // allowed, but more than is present
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.incomplete);
  assert.equal(r.offset, second);
  assert.equal(r.frameEnd, second + frameSize(4000));
});

Deno.test("FrameScanner reports a shrunk buffer as incomplete at every cut of the last frame", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(33).fill(7)], [
    2,
    new Uint8Array(21).fill(5),
  ]];
  const bytes = encode(records);
  const last = frameOffsets(records)[1]!;
  for (let cut = last + 1; cut < bytes.length; cut++) {
    const r = scan(bytes.subarray(0, cut));
    assert.equal(r.status, ScanStatus.incomplete, `cut at ${cut}`);
    assert.equal(r.offset, last, `cut at ${cut}`);
    assert.equal(r.count, 1, `cut at ${cut}`);
  }
  const whole = scan(bytes.subarray(0, last));
  assert.equal(whole.status, ScanStatus.end);
});

Deno.test("FrameScanner reads a zeroed tail as zero (end of log)", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(3)], [1, new Uint8Array(3)]];
  const bytes = encode(records);
  const padded = new Uint8Array(bytes.length + 4096); // preallocated, zero-filled tail
  padded.set(bytes);
  const r = scan(padded);
  assert.equal(r.status, ScanStatus.zero);
  assert.equal(r.offset, bytes.length);
  assert.equal(r.count, 2);
  assert.ok(r.scanner.allZero(r.offset, padded.length));
  // Zero the second frame's first word: the scan ends there, and the bytes after are not all zero.
  padded.fill(0, 16, 24);
  const z = scan(padded);
  assert.equal(z.status, ScanStatus.zero);
  assert.equal(z.offset, 16);
  assert.ok(!z.scanner.allZero(z.offset, padded.length));
});

Deno.test("FrameScanner resync finds nothing after a torn last frame", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array(10)], [1, new Uint8Array(50)]];
  const bytes = encode(records);
  const last = frameOffsets(records)[1]!;
  bytes[last + 40]! ^= 0xff;
  const r = scan(bytes);
  assert.equal(r.status, ScanStatus.badCrc);
  assert.equal(r.scanner.resync(r.offset + 8, bytes.length), -1);
});

Deno.test("FrameScanner resumes after a full index without losing frames", () => {
  const rng = new Rng(testSeed("frame index full"));
  const records = randomRecords(rng, 100);
  const bytes = encode(records);
  const sc = new FrameScanner(new WasmCore(), LIMITS, bytes.length + 64, 7);
  sc.buffer().set(bytes);
  const got: Array<[number, Uint8Array]> = [];
  let off = 0;
  for (let guard = 0; guard < 100; guard++) {
    const r = sc.scan(off, bytes.length);
    for (let i = 0; i < r.count; i++) got.push([sc.type(i), sc.payload(i, off).slice()]);
    off = r.offset;
    if (r.status !== ScanStatus.indexFull) {
      assert.equal(r.status, ScanStatus.end);
      break;
    }
  }
  assert.deepEqual(got, records);
});

Deno.test("FrameEncoder rejects types and lengths the log does not allow", () => {
  const enc = new FrameEncoder(new WasmCore(), LIMITS, 1024);
  assert.throws(() => enc.reserve(0, 1), RangeError);
  assert.throws(() => enc.reserve(8, 1), RangeError);
  assert.throws(() => enc.reserve(1, 4097), RangeError);
  assert.equal(enc.length, 0);
  assert.equal(enc.append(1, new Uint8Array(2000)), false, "no room is reported, not thrown");
  assert.equal(enc.length, 0);
});

Deno.test("FrameEncoder.consume keeps the unwritten rest sealed and scannable", () => {
  const records: Array<[number, Uint8Array]> = [[1, new Uint8Array([1])], [2, new Uint8Array([2, 2])], [
    3,
    new Uint8Array(
      [3, 3, 3],
    ),
  ]];
  const core = new WasmCore();
  const enc = new FrameEncoder(core, LIMITS, 1024);
  for (const [t, p] of records) enc.append(t, p);
  enc.consume(frameSize(1));
  const r = scan(enc.bytes().slice());
  assert.deepEqual(r.frames, records.slice(1));
});

Deno.test("FrameEncoder.consume keeps frames staged after the written part pending", () => {
  // A log writes the sealed batch while appends go on; what was appended meanwhile must stay
  // pending, so a caller's own pass (seal and apply, src/serf/_codec.ts) still sees it.
  const enc = new FrameEncoder(new WasmCore(), LIMITS, 1024);
  assert.ok(enc.append(1, new Uint8Array([1])));
  assert.ok(enc.append(2, new Uint8Array([2, 2])));
  const written = enc.bytes().length;
  assert.equal(enc.sealedLength, written);
  assert.ok(enc.append(3, new Uint8Array([3, 3, 3])));
  enc.consume(written);
  assert.equal(enc.sealedLength, 0, "the frame appended during the write is still pending");
  assert.equal(enc.length, frameSize(3));
  for (const n of [4, -8, NaN, frameSize(3) + 8]) {
    assert.throws(() => enc.markSealed(n), RangeError, String(n));
  }
  assert.deepEqual(scan(enc.bytes().slice()).frames, [[3, new Uint8Array([3, 3, 3])]]);
  assert.throws(() => enc.markSealed(0), RangeError, "sealing never goes backwards");
});

Deno.test("FrameEncoder grows without losing pending frames", () => {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, LIMITS, 64);
  assert.ok(enc.append(1, new Uint8Array([4, 5, 6])));
  enc.grow(1 << 20); // forces Wasm memory to grow, detaching old views
  assert.ok(enc.append(2, new Uint8Array(3000).fill(1)));
  const r = scan(enc.bytes().slice());
  assert.equal(r.count, 2);
  assert.deepEqual(r.frames[0], [1, new Uint8Array([4, 5, 6])]);
});

Deno.test("decodeFileHeader round-trips and names each kind of damage", () => {
  const h = encodeFileHeader(FileKind.raftSegment, 0xdeadbeef, 12345678901234n);
  assert.equal(h.length, FILE_HEADER_BYTES);
  assert.deepEqual(decodeFileHeader(h), {
    version: 2,
    kind: FileKind.raftSegment,
    base: 12345678901234n,
    salt: 0xdeadbeef,
  });
  // Salt 0 is a version 1 header (reserved field 0), which this build still reads.
  const v1 = encodeFileHeader(FileKind.serfSnapshot, 0);
  assert.deepEqual(decodeFileHeader(v1), { version: 1, kind: FileKind.serfSnapshot, base: 0n, salt: 0 });
  assert.equal(new DataView(v1.buffer).getUint16(4, true), 1);
  // Each version's salt rule: version 1 has none, version 2 never 0.
  const withHeaderCrc = (b: Uint8Array): Uint8Array => {
    new DataView(b.buffer).setUint32(20, crc32c(b.subarray(0, 20)), true);
    return b;
  };
  const v1Salted = v1.slice();
  v1Salted[16] = 1;
  assert.match(decodeFileHeader(withHeaderCrc(v1Salted)) as string, /reserved/);
  const v2Unsalted = h.slice();
  v2Unsalted.fill(0, 16, 20);
  assert.match(decodeFileHeader(withHeaderCrc(v2Unsalted)) as string, /zero salt/);
  const v3 = h.slice();
  v3[4] = 3;
  assert.match(decodeFileHeader(withHeaderCrc(v3)) as string, /unsupported format version 3/);
  assert.throws(() => encodeFileHeader(FileKind.serfSnapshot, -1), RangeError);
  assert.throws(() => encodeFileHeader(FileKind.serfSnapshot, 2 ** 32), RangeError);
  assert.match(decodeFileHeader(h.subarray(0, 10)) as string, /need 24/);
  const magic = h.slice();
  magic[0] = 0x41;
  assert.match(decodeFileHeader(magic) as string, /magic/);
  const flipped = h.slice();
  flipped[9]! ^= 1;
  assert.match(decodeFileHeader(flipped) as string, /checksum/);
});

Deno.test("FrameEncoder and FrameScanner refuse lengths, offsets and sizes that are not in range", () => {
  const core = new WasmCore();
  assert.throws(() => new FrameEncoder(core, LIMITS, NaN), RangeError);
  assert.throws(() => new FrameScanner(core, LIMITS, NaN), RangeError);
  const enc = new FrameEncoder(core, LIMITS, 64);
  for (const [type, length] of [[1, NaN], [1, -1], [1.5, 4], [1, 2.5]]) {
    assert.throws(() => enc.reserve(type!, length!), RangeError, `${type}, ${length}`);
  }
  assert.equal(enc.length, 0, "nothing was reserved");
  assert.ok(enc.append(1, new Uint8Array([1, 2, 3])));
  assert.ok(enc.append(2, new Uint8Array([4])));
  const before = enc.bytes().slice();
  for (const n of [3, -8, NaN, 1000]) assert.throws(() => enc.consume(n), RangeError, String(n));
  for (const n of [NaN, 3, -8, 1000]) assert.throws(() => enc.truncate(n), RangeError, String(n));
  assert.throws(() => enc.grow(NaN), RangeError);
  assert.deepEqual(enc.bytes().slice(), before, "the batch is unchanged");
  const scanner = new FrameScanner(core, LIMITS, 64);
  assert.throws(() => scanner.resync(0, 1e6), RangeError);
  assert.throws(() => scanner.allZero(8, 4), RangeError);
  assert.throws(() => scanner.compact(60, 8), RangeError);
  assert.throws(() => scanner.payload(-1), RangeError);
});

Deno.test("FrameEncoder.appendSealed moves sealed frames to another encoder as they are, after its own sealed ones", () => {
  const a: Array<[number, Uint8Array]> = [[1, new Uint8Array([1, 2, 3])], [2, new Uint8Array(0)]];
  const b: Array<[number, Uint8Array]> = [[3, new Uint8Array(17).fill(9)]];
  const moved = encode(b);
  const enc = new FrameEncoder(new WasmCore(), LIMITS, 256);
  for (const [t, p] of a) assert.ok(enc.append(t, p));
  // Frames reserved and not sealed yet cannot be followed by sealed ones.
  assert.throws(() => enc.appendSealed(moved), RangeError);
  enc.seal();
  assert.throws(() => enc.appendSealed(moved.subarray(0, 12)), RangeError, "not whole frames");
  assert.ok(enc.appendSealed(moved));
  assert.equal(enc.sealedLength, enc.length, "moved frames count as sealed");
  assert.deepEqual(enc.bytes(), encode([...a, ...b]));
  assert.equal(enc.appendSealed(new Uint8Array(256)), false, "no room: nothing appended");
  assert.deepEqual(enc.bytes(), encode([...a, ...b]));
});
