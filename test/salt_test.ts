// Format version 2's salt: every frame's checksum field is its checksum XOR a random u32 from
// the file header, so a frame a node name holds (or another file's) is no frame in this file.
// Version 1 files (no salt) are still read and appended to, and a compaction makes them
// version 2. README "Frames" and "Crash safety".
import assert from "node:assert/strict";
import { CorruptionError, replaySnapshot, Snapshotter, type SnapshotterOptions } from "../mod.ts";
import { ManualClock } from "../src/clock.ts";
import { WasmCore } from "../src/_wasm/core.ts";
import {
  decodeFileHeader,
  encodeFileHeader,
  FileKind,
  FrameEncoder,
  FrameScanner,
} from "../src/core/frame.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import { encodeBinaryRecord, SERF_LIMITS } from "../src/serf/binary.ts";
import { asVersion1, saltOf } from "./_tmp.ts";
import { asciiFrame, nameHoldingAFrame } from "./_crafted.ts";

const P = "d/s.snap";

function openMem(fs: MemFs, options: SnapshotterOptions = {}): Promise<Snapshotter> {
  return Snapshotter.open(P, { fs, clock: new ManualClock(), minCompactSizeBytes: 2 ** 52, ...options });
}

function headerOf(file: Uint8Array): { version: number; salt: number } {
  const h = decodeFileHeader(file.subarray(0, 24));
  assert.ok(typeof h !== "string", String(h));
  return h;
}

Deno.test("Every binary file snaplog writes has a version 2 header with its own random salt", async () => {
  const salts = new Set<number>();
  for (let i = 0; i < 8; i++) {
    const mem = new MemFs();
    const s = await openMem(mem);
    s.append({ type: "alive", name: "a", addr: "1" });
    await s.close();
    const h = headerOf(mem.read(P));
    assert.equal(h.version, 2);
    assert.notEqual(h.salt, 0);
    salts.add(h.salt);
  }
  assert.equal(salts.size, 8, "each file draws its own salt");
  // The frames are sealed under it: the same frame scanned under another salt fails.
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append({ type: "alive", name: "node-1", addr: "10.0.0.1:7946" });
  await s.close();
  const file = mem.read(P);
  const core = new WasmCore();
  const scanner = new FrameScanner(core, SERF_LIMITS, 1024, 8);
  scanner.buffer().set(file.subarray(24));
  scanner.salt = saltOf(file);
  assert.deepEqual([scanner.scan(0, file.length - 24).status, scanner.scan(0, file.length - 24).count], [
    0,
    1,
  ]);
  scanner.salt = (saltOf(file) ^ 1) >>> 0;
  assert.equal(scanner.scan(0, file.length - 24).status, 3, "checksum mismatch under another salt");
});

Deno.test("A version 1 file is read, appended to without a salt, and compacted into version 2", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 50; i++) s.append({ type: "alive", name: `n${i % 10}`, addr: `10.0.0.${i}:1` });
  s.append({ type: "clock", value: 7n });
  await s.close();
  const v1 = asVersion1(mem.read(P));
  assert.equal(headerOf(v1).version, 1);
  mem.write(P, v1);
  const want = await replaySnapshot(P, { fs: mem, recovery: "strict" });
  assert.equal(want.aliveNodes.length, 10);
  // Appends to a version 1 file stay version 1 (no salt) until a compaction.
  const a = await openMem(mem);
  a.append({ type: "alive", name: "later", addr: "10.0.0.99:1" });
  await a.close();
  const appended = mem.read(P);
  assert.deepEqual(appended.subarray(0, v1.length), v1, "appended after what was there");
  assert.equal(headerOf(appended).version, 1);
  const r = await replaySnapshot(P, { fs: mem, recovery: "strict" });
  assert.equal(r.aliveNodes.length, 11);
  // Compaction writes version 2 with a fresh salt, and what is appended after it follows it.
  const b = await openMem(mem);
  await b.compact();
  b.append({ type: "alive", name: "after-compaction", addr: "10.0.0.100:1" });
  await b.close();
  const compacted = mem.read(P);
  assert.equal(headerOf(compacted).version, 2);
  assert.notEqual(headerOf(compacted).salt, 0);
  const c = await replaySnapshot(P, { fs: mem, recovery: "strict" });
  assert.equal(c.aliveNodes.length, 12);
  assert.equal(c.lastClock, 7n);
});

/** A MemFs whose renames wait for `release()`: a compaction can be held between its image and its rename. */
class GatedFs extends MemFs {
  #gate: Promise<void> | null = null;
  #open: (() => void) | null = null;
  reached = false;
  hold(): void {
    this.reached = false;
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }
  release(): void {
    this.#open?.();
    this.#gate = null;
  }
  override async rename(from: string, to: string): Promise<void> {
    this.reached = true;
    if (this.#gate !== null) await this.#gate;
    return await super.rename(from, to);
  }
}

Deno.test("Records appended, and sealed, while a compaction writes its file go to it under its salt", async () => {
  // The compacted file has a salt of its own. What is appended after its image was built, and
  // sealed under the old file's salt (aliveNodes() applies, and so seals, staged records),
  // must be sealed again under the new one before it reaches the new file.
  for (const version of [2, 1]) {
    const fs = new GatedFs();
    const s0 = await openMem(fs);
    for (let i = 0; i < 30; i++) s0.append({ type: "alive", name: `n${i}`, addr: "10.0.0.1:1" });
    await s0.close();
    if (version === 1) fs.write(P, asVersion1(fs.read(P)));
    const before = saltOf(fs.read(P));
    const s = await openMem(fs);
    fs.hold();
    const compaction = s.compact();
    for (let i = 0; i < 10_000 && !fs.reached; i++) await Promise.resolve(); // MemFs settles in microtasks
    assert.ok(fs.reached, "the compaction waits at its rename");
    s.append({ type: "alive", name: "during", addr: "10.0.0.2:1" });
    s.append({ type: "not-alive", name: "n3" });
    assert.equal(s.aliveNodes().length, 30, "applied (and sealed) during the compaction");
    fs.release();
    await compaction;
    s.append({ type: "alive", name: "after", addr: "10.0.0.3:1" });
    await s.close();
    const file = fs.read(P);
    assert.notEqual(saltOf(file), before, `v${version}: the compacted file has a salt of its own`);
    const r = await replaySnapshot(P, { fs, recovery: "strict" });
    const names = r.aliveNodes.map((n) => n.name);
    assert.equal(names.length, 31, `v${version}`);
    assert.ok(names.includes("during") && names.includes("after") && !names.includes("n3"), `v${version}`);
  }
});

Deno.test("After out-of-order page loss, a frame a node name holds is no record in a version 2 file, in any mode", async () => {
  // The case the recovery rules cannot settle without a salt: a lost page takes a record's
  // header, so the search for the next frame lands inside its payload, in a name that holds a
  // whole frame, and frames follow after it. Version 1 salvage takes the name's frame for a
  // record (a node the log never had); version 2 finds it fails against the file's salt.
  const fake = nameHoldingAFrame();
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append({ type: "alive", name: "before", addr: "10.0.0.1:7946" });
  await s.sync();
  const at = s.stats.fileBytes; // the long record's frame starts here
  // Two bytes put the name's frame on an 8-byte boundary; the filler makes the record span pages.
  s.append({ type: "alive", name: "xx" + fake + "y".repeat(9000), addr: "10.0.0.2:7946" });
  for (let i = 0; i < 5; i++) s.append({ type: "alive", name: `after${i}`, addr: "10.0.0.3:7946" });
  await s.close();
  const whole = mem.read(P);
  for (const version of [2, 1]) {
    const lost = version === 2 ? whole.slice() : asVersion1(whole);
    lost.fill(0, at, at + 8); // the page with the record's header word came back as zeros
    const m = new MemFs();
    m.write(P, lost);
    const err = await replaySnapshot(P, { fs: m }).catch((e) => e);
    assert.ok(err instanceof CorruptionError && err.offset === at, `v${version}: ${err}`);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    const names = r.aliveNodes.map((n) => n.name);
    assert.ok(names.includes("before") && names.includes("after4"), `v${version}: ${names}`);
    if (version === 2) {
      assert.ok(!names.some((n) => n.startsWith("evil")), `v2: ${names}`);
      assert.equal(r.warnings.length, 1);
    } else {
      // Version 1's documented weakness, which the salt removes.
      assert.ok(names.some((n) => n.startsWith("evil")), `v1: ${names}`);
    }
  }
});

Deno.test("Salvage recovers the salt of a file whose header is lost from its frames, and the repair keeps them", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 40; i++) s.append({ type: "alive", name: `node-${i}`, addr: `10.0.0.${i}:7946` });
  s.append({ type: "clock", value: 11n });
  await s.close();
  const whole = mem.read(P);
  for (
    const [what, damage] of [
      ["header zeroed", (b: Uint8Array) => b.fill(0, 0, 24)],
      ["salt field flipped", (b: Uint8Array) => (b[17]! ^= 0x10)],
      ["first frame damaged too", (b: Uint8Array) => (b.fill(0, 0, 24), b[40]! ^= 1)],
    ] as const
  ) {
    const bad = whole.slice();
    damage(bad);
    const m = new MemFs();
    m.write(P, bad);
    await assert.rejects(replaySnapshot(P, { fs: m }), CorruptionError, what);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
    assert.equal(r.lastClock, 11n, what);
    assert.equal(r.aliveNodes.length, what === "first frame damaged too" ? 39 : 40, what);
    // The repair (a compaction) writes a new header and salt; the records stay.
    const o = await openMem(m, { recovery: "salvage", format: "binary" });
    assert.equal(o.aliveNodes().length, r.aliveNodes.length, what);
    await o.close();
    const repaired = m.read(P);
    assert.equal(headerOf(repaired).version, 2, what);
    assert.equal(
      (await replaySnapshot(P, { fs: m, recovery: "strict" })).aliveNodes.length,
      r.aliveNodes.length,
    );
  }
  // A version 1 file's lost header: its frames check out under salt 0.
  const v1 = asVersion1(whole);
  v1.fill(0, 0, 24);
  const m1 = new MemFs();
  m1.write(P, v1);
  assert.equal((await replaySnapshot(P, { fs: m1, recovery: "salvage" })).aliveNodes.length, 40);
});

Deno.test("FrameEncoder.useSalt seals the frames already sealed again, under the new salt", () => {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 1024);
  enc.useSalt(0x1234_5678);
  assert.ok(encodeBinaryRecord(core, enc, { type: "alive", name: "a", addr: "1" }));
  enc.seal();
  assert.ok(encodeBinaryRecord(core, enc, { type: "not-alive", name: "b" })); // pending
  enc.useSalt(0x9abc_def0);
  const bytes = enc.bytes().slice();
  const scanner = new FrameScanner(core, SERF_LIMITS, 1024, 8);
  scanner.buffer().set(bytes);
  scanner.salt = 0x9abc_def0;
  const r = scanner.scan(0, bytes.length);
  assert.deepEqual([r.status, r.count], [0, 2]);
  scanner.salt = 0x1234_5678;
  assert.equal(scanner.scan(0, bytes.length).count, 0);
  assert.throws(() => enc.useSalt(-1), RangeError);
  assert.throws(() => (scanner.salt = 2 ** 32), RangeError);
  assert.throws(() => encodeFileHeader(FileKind.serfSnapshot, 1.5), RangeError);
});

/** A name of many frames without a salt (an alive frame for `evil…`, then clocks): ASCII, 8-aligned after "xx". */
function nameHoldingManyFrames(count: number): string {
  let body = nameHoldingAFrame();
  for (let v = 0x01010101n, n = 0; n < count; v++) {
    if ((v & 0x80n) !== 0n) continue;
    const f = asciiFrame({ type: "clock", value: v });
    if (f !== null) (body += f, n++);
  }
  return "xx" + body;
}

Deno.test("A damaged header's salt is the one the file's own frames run on under, not one a node name's frames vote for", async () => {
  // The first recovery counted votes in the first MiB: a name of 400 frames without a salt
  // outvoted 300 records (salvage kept the name's node and dropped the rest, and the open's
  // repair made that the file), and a name of slots claiming 128 KiB frames spent the checksum
  // budget before the file's own frames voted (salvage cut the whole file as a torn tail).
  const hostile = nameHoldingManyFrames(400);
  const long = new Uint8Array(8 * 64).fill(0x20);
  for (let k = 0; k < 64; k++) long.set([1, 0, 0, 0, 0, 0, 2, 0], 8 * k); // alive, 128 KiB long
  const budgetName = nameHoldingManyFrames(1) + String.fromCharCode(...long);
  for (const [what, name] of [["votes", hostile], ["budget", budgetName]] as const) {
    const mem = new MemFs();
    const s = await openMem(mem);
    for (let i = 0; i < 150; i++) s.append({ type: "alive", name: `node-${i}`, addr: "10.0.0.1:7946" });
    s.append({ type: "alive", name, addr: "6.6.6.6:7946" });
    for (let i = 150; i < 300; i++) s.append({ type: "alive", name: `node-${i}`, addr: "10.0.0.2:7946" });
    s.append({ type: "clock", value: 12345n });
    await s.close();
    const bad = mem.read(P);
    bad[20]! ^= 1; // the header's checksum: every frame is intact
    mem.write(P, bad);
    const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
    assert.equal(r.aliveNodes.length, 301, what);
    assert.equal(r.lastClock, 12345n, what);
    assert.equal(r.tornTailBytes, 0, what);
    const o = await openMem(mem, { recovery: "salvage" });
    assert.equal(o.aliveNodes().length, 301, what);
    await o.close();
    // The salt field too (a zeroed header): the frames' chain from the start decides.
    const zeroed = bad.slice();
    zeroed.fill(0, 0, 24);
    const m = new MemFs();
    m.write(P, zeroed);
    const z = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    assert.equal(z.aliveNodes.length, 301, `${what}, zeroed header`);
  }
});

Deno.test("A version 2 file whose header is lost and which holds one frame is binary to auto, also with a torn append after it", async () => {
  // With only pairs of frames as evidence, auto read it as Go text and an open cut it to 0 bytes.
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append({ type: "alive", name: "node-1", addr: "10.0.0.1:7946" });
  await s.close();
  const one = mem.read(P);
  one.fill(0, 0, 24);
  const torn = new Uint8Array(one.length + 30);
  torn.set(one);
  torn.set([1, 0, 0, 0, 40, 0, 0, 0], one.length); // an alive frame of 40 bytes, cut short
  for (const [what, file] of [["one frame", one], ["one frame and a torn append", torn]] as const) {
    const m = new MemFs();
    m.write(P, file);
    await assert.rejects(replaySnapshot(P, { fs: m }), CorruptionError, what); // binary, header damaged
    assert.deepEqual(m.read(P), file, `${what}: untouched`);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    assert.equal(r.format, "binary", what);
    assert.deepEqual(r.aliveNodes.map((n) => n.name), ["node-1"], what);
  }
});

Deno.test("Salvage finds the salt of a file whose first MiB and more is lost", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 120; i++) s.append({ type: "alive", name: `n${i}`.padEnd(15_000, "x"), addr: "1" });
  await s.close();
  const bad = mem.read(P);
  const lost = 1_150_000;
  bad.fill(0, 0, lost);
  mem.write(P, bad);
  const r = await replaySnapshot(P, { fs: mem, recovery: "salvage", format: "binary" });
  const kept = Math.floor((bad.length - lost) / 15_016);
  assert.ok(
    r.aliveNodes.length >= kept,
    `${r.aliveNodes.length} of the ${kept} whole records after the loss`,
  );
  assert.equal(r.tornTailBytes, 0);
});

Deno.test("A damaged header and a damaged last frame: salvage keeps the file's salt, not the one the damaged frame implies", async () => {
  // The damaged frame implies a salt of its own, under which it alone runs to the end of the
  // file: a recovery that took the first chain reaching the end kept that frame as a record
  // (a bit-flipped node) and dropped the other 201.
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 200; i++) {
    s.append({ type: "alive", name: `node-${i}`, addr: `10.0.0.${i % 250}:7946` });
  }
  s.append({ type: "clock", value: 99n });
  s.append({ type: "alive", name: "last-node", addr: "10.9.9.9:7946" });
  await s.close();
  const whole = mem.read(P);
  const lastAt = whole.length - 40; // the last frame: 12 + 2 + 9 + 13 bytes, padded to 40
  for (
    const [what, damage] of [
      ["salt field flipped", (b: Uint8Array) => (b[17]! ^= 4)],
      ["header zeroed", (b: Uint8Array) => b.fill(0, 0, 24)],
      ["first page zeroed", (b: Uint8Array) => b.fill(0, 0, 4096)],
    ] as const
  ) {
    for (
      const [how, last] of [
        ["a flipped bit", (b: Uint8Array) => (b[lastAt + 14]! ^= 1)],
        ["zeroed", (b: Uint8Array) => b.fill(0, lastAt + 14, lastAt + 36)],
      ] as const
    ) {
      const bad = whole.slice();
      damage(bad);
      last(bad);
      const m = new MemFs();
      m.write(P, bad);
      const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
      const names = r.aliveNodes.map((n) => n.name);
      assert.ok(
        names.length >= 90 && names.every((n) => /^node-\d+$/.test(n)),
        `${what}, last frame ${how}: ${names}`,
      );
      assert.equal(r.lastClock, 99n, `${what}, last frame ${how}`);
    }
  }
});

Deno.test("A node name's frames do not decide the salt where damage took its record's start, nor can slots claiming long frames use up the search", async () => {
  // The chain of frames in the name ends in a header that claims 128 KiB, past the end of a
  // small file: taken as a torn last frame, it made that chain one "to the end", and its salt
  // the file's (every node the attacker's). Slots that claim long frames spent the checksum
  // budget, after which the search gave up and kept the attacker's chain.
  const burners = new Uint8Array(8 * 520).fill(0x20);
  for (let k = 0; k < 520; k++) burners.set([1, 0, 0, 0, 0, 0, 2, 0], 8 * k);
  const claimsPastEnd = String.fromCharCode(1, 0, 0, 0, 0, 0, 2, 0);
  for (
    const [what, name] of [
      ["a chain ending in a torn-looking frame", nameHoldingManyFrames(300) + claimsPastEnd],
      [
        "a chain, then slots claiming long frames",
        nameHoldingManyFrames(400) + String.fromCharCode(...burners),
      ],
    ] as const
  ) {
    const mem = new MemFs();
    const s = await openMem(mem);
    s.append({ type: "alive", name: "first", addr: "10.0.0.1:7946" });
    s.append({ type: "alive", name, addr: "6.6.6.6:7946" });
    for (let i = 0; i < 300; i++) s.append({ type: "alive", name: `node-${i}`, addr: "10.0.0.2:7946" });
    s.append({ type: "clock", value: 42n });
    await s.close();
    const bad = mem.read(P);
    bad.fill(0, 0, 64); // the header, the first record and the start of the hostile one
    const m = new MemFs();
    m.write(P, bad);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
    const names = r.aliveNodes.map((n) => n.name);
    assert.equal(names.length, 300, `${what}: ${names.slice(0, 3)}`);
    assert.ok(names.every((n) => n.startsWith("node-")), what);
    assert.equal(r.lastClock, 42n, what);
  }
});

Deno.test("auto takes a header-less file whose one frame is followed by zeros or a torn frame for binary", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 200; i++) s.append({ type: "alive", name: `node-${i}`, addr: "a".repeat(100) });
  await s.close();
  const whole = mem.read(P);
  const starts: number[] = [];
  for (let at = 24; at < whole.length;) {
    starts.push(at);
    at += (12 + new DataView(whole.buffer).getUint32(at + 4, true) + 7) & ~7;
  }
  const k = starts.findIndex((x) => x > 4096);
  for (const [what, from] of [["zeros", starts[k + 1]!], ["a torn frame", starts[k + 1]! + 16]] as const) {
    const b = whole.slice();
    b.fill(0, 0, 4096);
    b.fill(0, from);
    const m = new MemFs();
    m.write(P, b);
    await assert.rejects(replaySnapshot(P, { fs: m }), CorruptionError, what); // binary, header damaged
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    assert.deepEqual([r.format, r.aliveNodes.length], ["binary", 1], what);
  }
});

/** A binary snapshot of `n` records `prefix-i`, with its clock, as bytes. */
async function snapshotBytes(prefix: string, n: number, clock: bigint): Promise<Uint8Array> {
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < n; i++) s.append({ type: "alive", name: `${prefix}-${i}`, addr: "10.0.0.1:7946" });
  s.append({ type: "clock", value: clock });
  await s.close();
  return mem.read(P);
}

Deno.test("A page of another snaplog file over this one's first page is refused, not cut as a torn tail; salvage keeps both files' records", async () => {
  // Under the other file's salt (its header checks out) every record after its page failed, and
  // the damage decision called all of them a torn tail, which every mode but strict cut off.
  // Larger than one record can be (a name's frames are never more), as the rule wants.
  const own = await snapshotBytes("real", 5000, 77n);
  const other = await snapshotBytes("other", 2000, 5n);
  for (const [what, page] of [["its header page", 0], ["a page of its frames", 4096]] as const) {
    const bad = own.slice();
    bad.set(other.subarray(page, page + 4096), 0);
    const m = new MemFs();
    m.write(P, bad);
    if (page === 0) {
      for (const recovery of ["truncate-tail", "strict"] as const) {
        const err = await replaySnapshot(P, { fs: m, recovery }).catch((e) => e);
        assert.ok(
          err instanceof CorruptionError && /another salt/.test(err.message),
          `${what} ${recovery}: ${err}`,
        );
        await assert.rejects(openMem(m, { recovery }), CorruptionError);
        assert.deepEqual(m.read(P), bad, `${what} ${recovery}: untouched`);
      }
    }
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
    const real = r.aliveNodes.filter((n) => n.name.startsWith("real-")).length;
    assert.ok(real >= 4890, `${what}: ${real} of 5000 own records`);
    assert.equal(r.tornTailBytes, 0, what);
    const o = await openMem(m, { recovery: "salvage", format: "binary" });
    assert.equal(o.aliveNodes().length, r.aliveNodes.length, what);
    await o.close();
  }
  // A small file, whose own frames after the page weigh less than the page's: its records stay.
  const small = await snapshotBytes("real", 150, 77n);
  small.set(other.subarray(4096, 8192), 0);
  const m = new MemFs();
  m.write(P, small);
  const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
  assert.ok(
    r.aliveNodes.filter((n) => n.name.startsWith("real-")).length >= 45,
    "the records after the page",
  );
  assert.equal(r.lastClock, 77n);
});

Deno.test("auto does not take a serf file whose first line after lost pages holds a frame for binary, however long that line", async () => {
  // Serf's lines were looked for only in the first 384 KiB: a line that ran past them, holding
  // a frame, made the file binary to auto, and salvage rewrote the serf file as one node.
  const lines = ["alive: xx" + nameHoldingAFrame() + "y".repeat(200_000) + " 6.6.6.6:1"];
  for (let i = 0; i < 2000; i++) lines.push(`alive: node-${i} 10.0.0.1:7946`);
  const text = new TextEncoder().encode(lines.join("\n") + "\nclock: 9\n");
  const file = new Uint8Array(299_999 + text.length);
  file.set(text, 299_999); // zeros up to the line; its frame ("alive: xx" first) lands 8-aligned
  const m = new MemFs();
  m.write(P, file);
  for (const recovery of ["truncate-tail", "salvage"] as const) {
    await assert.rejects(replaySnapshot(P, { fs: m, recovery }), /ask for format "go-text"/, recovery);
    await assert.rejects(openMem(m, { recovery }), CorruptionError, recovery);
  }
  assert.deepEqual(m.read(P), file, "untouched");
  const asText = await replaySnapshot(P, { fs: m, format: "go-text" });
  assert.equal(asText.aliveNodes.length, 2000); // the first line begins with the zeros: serf skips it
});

Deno.test("readSnapshotRecords goes on under the salt salvage switched to, segment after segment", async () => {
  const { readSnapshotRecords } = await import("../mod.ts");
  const { readRecordsPolicy } = await import("../src/serf/read_records.ts");
  const own = await snapshotBytes("real", 5000, 77n);
  const other = await snapshotBytes("other", 200, 5n);
  const bad = own.slice();
  bad.set(other.subarray(0, 4096), 0); // another file's header page
  const m = new MemFs();
  m.write(P, bad);
  const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
  const old = readRecordsPolicy.segmentRegions;
  readRecordsPolicy.segmentRegions = 1;
  try {
    const names = new Set<string>();
    for await (const e of readSnapshotRecords(P, { fs: m, recovery: "salvage", format: "binary" })) {
      if (e.record?.type === "alive") names.add(e.record.name);
    }
    assert.equal(r.warnings.length, 1); // one region per segment: the next one starts after the switch
    assert.deepEqual([...names].sort(), r.aliveNodes.map((n) => n.name), "the same records as the replay");
    assert.ok([...names].filter((n) => n.startsWith("real-")).length >= 4890);
  } finally {
    readRecordsPolicy.segmentRegions = old;
  }
});

Deno.test("Stale blocks or repeated junk in an unsynced tail read as a torn tail, not as another file's frames", async () => {
  // A crash may show a file's freed blocks, another snaplog file's or anything else's, where an
  // unsynced append was: the default open refused such a file once frames of another salt were
  // corruption wherever they followed damage (any two byte-identical 16-byte runs imply one salt).
  const base = await snapshotBytes("acked", 100, 3n); // synced: ~4 KiB
  const stale = (await snapshotBytes("old", 400, 1n)).subarray(4096, 4096 + 12_288); // another file's frames
  const junk = new Uint8Array(12_288);
  for (let at = 0; at < junk.length; at += 8) junk[at] = 1; // u64 ones: 16-byte runs that repeat
  for (const [what, tail] of [["stale frames", stale], ["repeated junk", junk]] as const) {
    const file = new Uint8Array(base.length + tail.length);
    file.set(base);
    file.set(tail, base.length);
    file[base.length] = 2; // the torn append's own header word, damaged, ahead of the tail
    const m = new MemFs();
    m.write(P, file);
    const o = await openMem(m);
    assert.equal(o.aliveNodes().length, 100, what);
    assert.equal(o.openReport.tornTailBytes, tail.length, what);
    await o.close();
  }
});

Deno.test("A node name's frames under any salt, behind a damaged header word, make no default open refuse and no salvage take them", async () => {
  // A faulty sector over a hostile record's header word left its extent unknown, and the
  // search past it found the name's frames (60 of them, under a salt the member picked).
  const core = new WasmCore();
  let name = "xx";
  for (let i = 0, n = 0; i < 60; n++) {
    const enc = new FrameEncoder(core, SERF_LIMITS, 256);
    enc.useSalt(0x5eed1234);
    encodeBinaryRecord(core, enc, { type: "alive", name: `ev${i}-${n}`, addr: "6.6.6.6:1" });
    const b = enc.bytes();
    if (b.every((x) => x < 0x80)) (name += String.fromCharCode(...b), i++); // ASCII: a name holds it as it is
  }
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 100; i++) s.append({ type: "alive", name: `acked-${i}`, addr: "10.0.0.1:7946" });
  await s.sync();
  const at = s.stats.fileBytes;
  s.append({ type: "alive", name, addr: "6.6.6.6:7946" });
  await s.close();
  const bad = mem.read(P);
  for (let k = 0; k < 8; k++) bad[at + k] = 0xa5 ^ k; // the header word: no plausible length
  for (const recovery of ["truncate-tail", "salvage"] as const) {
    const m = new MemFs();
    m.write(P, bad);
    const o = await openMem(m, { recovery });
    const names = o.aliveNodes().map((n) => n.name);
    assert.equal(names.length, 100, `${recovery}: ${names.filter((n) => !n.startsWith("acked"))}`);
    await o.close();
  }
});

Deno.test("Repeated junk does not decide a damaged header's salt, nor make a header-less file binary", async () => {
  // Two byte-identical frame-shaped runs imply one salt whatever it is: a tail of such junk
  // outweighed the file's own frames in the salt search.
  const base = await snapshotBytes("acked", 200, 3n);
  const junk = new Uint8Array(64 << 10);
  for (let at = 0; at < junk.length; at += 8) junk[at] = 1;
  const file = new Uint8Array(base.length + junk.length);
  file.set(base);
  file.set(junk, base.length);
  file.fill(0, 0, 24); // the header lost
  const m = new MemFs();
  m.write(P, file);
  const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
  assert.equal(r.aliveNodes.length, 200);
  assert.equal(r.lastClock, 3n);
  // Junk alone, after a zeroed first page, is no binary file to auto.
  const only = new Uint8Array(8192);
  only.set(junk.subarray(0, 4096), 4096);
  only[4096 + 8 * 40] = 2; // not all of it the same: junk that ends
  const m2 = new MemFs();
  m2.write(P, only);
  assert.equal((await replaySnapshot(P, { fs: m2 })).format, "go-text");
});

Deno.test("Another file's first blocks, more than a page of them, over this file's start: refused, not cut; salvage keeps both files' records", async () => {
  // The rule looked only at damage in the first page: a 16 KiB misdirected write (another
  // file's header and frames) cut the 640 KB of records after it in every mode.
  const own = await snapshotBytes("real", 20_000, 77n);
  const other = await snapshotBytes("other", 2000, 5n);
  for (const k of [8192, 16_384, 65_536]) {
    const bad = own.slice();
    bad.set(other.subarray(0, k), 0);
    const m = new MemFs();
    m.write(P, bad);
    const err = await replaySnapshot(P, { fs: m }).catch((e) => e);
    assert.ok(err instanceof CorruptionError && /another salt/.test(err.message), `${k}: ${err}`);
    await assert.rejects(openMem(m), CorruptionError);
    assert.deepEqual(m.read(P), bad, `${k}: untouched`);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    assert.ok(r.aliveNodes.filter((n) => n.name.startsWith("real-")).length >= 18_000, `${k}`);
    assert.equal(r.tornTailBytes, 0, `${k}`);
  }
});

Deno.test("A damaged header's own salt field wins over another salt that holds most of the file", async () => {
  // The search stopped early on a salt holding more than half the file before it looked at the
  // header's field: a misdirected 10 KB block in a 16 KB file, plus a flipped header checksum
  // bit, and salvage kept the block's records instead of the file's.
  const own = await snapshotBytes("real", 160, 77n);
  const other = await snapshotBytes("other", 400, 5n);
  const bad = own.slice();
  const start = 2048 + 24; // whole frames of this file before it, then 10 KB of the other file's
  const block = other.subarray(start, start + 10_240);
  const file = new Uint8Array(start + block.length + (own.length - start));
  file.set(bad.subarray(0, start));
  file.set(block, start);
  file.set(bad.subarray(start), start + block.length);
  file[20]! ^= 1; // the header's checksum
  const m = new MemFs();
  m.write(P, file);
  const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
  const names = r.aliveNodes.map((n) => n.name);
  // (The block splits one of this file's frames: that record is lost, the others kept.)
  assert.ok(names.filter((n) => n.startsWith("real-")).length >= 159, `${names.slice(0, 3)}`);
  assert.equal(names.filter((n) => n.startsWith("other-")).length, 0, "none of the block's");
  assert.equal(r.lastClock, 77n);
});

Deno.test("Node names in several records, under one salt of their own, do not add up past the floor across damage", async () => {
  // The walk that checks frames of another salt run to the end allowed damaged stretches
  // between runs: with a faulty sector in each of three hostile records, their names' frames
  // (60 KB each) added up past 128 KiB, a default open refused and salvage took ~5,000 nodes.
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 256);
  enc.useSalt(0x5eed1234);
  const hostileName = (r: number): string => {
    let name = "xx";
    for (let n = 0; name.length < 60_000; n++) {
      enc.clear();
      encodeBinaryRecord(core, enc, { type: "alive", name: `e${r}-${n}`, addr: "6.6.6.6:1" });
      const b = enc.bytes();
      if (b.every((x) => x < 0x80)) name += String.fromCharCode(...b);
    }
    return name;
  };
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 100; i++) s.append({ type: "alive", name: `acked-${i}`, addr: "10.0.0.1:7946" });
  await s.sync();
  const starts: number[] = [];
  for (let r = 0; r < 3; r++) {
    starts.push(s.stats.fileBytes + s.stats.bufferedBytes);
    // The last with an empty address: its name's frames end exactly where the file does.
    s.append({ type: "alive", name: hostileName(r), addr: r === 2 ? "" : "6.6.6.6:7946" });
  }
  await s.close();
  const bad = mem.read(P);
  for (let k = 0; k < 8; k++) bad[starts[0]! + k] = 0xa5 ^ k; // the first one's header word
  for (const at of starts.slice(1)) bad[at + 20]! ^= 0x01; // a byte in each later one's name prefix
  for (const recovery of ["truncate-tail", "salvage"] as const) {
    const m = new MemFs();
    m.write(P, bad);
    const o = await openMem(m, { recovery });
    const names = o.aliveNodes().map((n) => n.name);
    assert.deepEqual(names.filter((n) => !n.startsWith("acked-")).length, 0, recovery);
    assert.equal(names.length, 100, recovery);
    await o.close();
  }
});

Deno.test("Another file's blocks over this file's start and one more fault later: still refused, and salvage keeps the records", async () => {
  // With the walk to the end allowing no gap, the second fault made this file's records a torn
  // tail behind the other file's: a default open cut 700 KB to 4 KB, salvage kept the other
  // file's 115 records. One run must still pass the floors alone (see the test before).
  const own = await snapshotBytes("real", 20_000, 77n);
  const other = await snapshotBytes("other", 2000, 5n);
  for (
    const [what, fault] of [
      ["a bit flip", (b: Uint8Array) => (b[421_932]! ^= 1)],
      ["a zeroed page", (b: Uint8Array) => b.fill(0, 421_888, 421_888 + 4096)],
      ["a torn last frame and junk", (b: Uint8Array) => b.fill(0x5a, b.length - 30)],
    ] as const
  ) {
    const bad = own.slice();
    bad.set(other.subarray(0, 4096), 0);
    fault(bad);
    const m = new MemFs();
    m.write(P, bad);
    const err = await replaySnapshot(P, { fs: m }).catch((e) => e);
    assert.ok(err instanceof CorruptionError && /another salt/.test(err.message), `${what}: ${err}`);
    assert.deepEqual(m.read(P), bad, `${what}: untouched`);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    assert.ok(r.aliveNodes.filter((n) => n.name.startsWith("real-")).length >= 19_700, what);
  }
});

/** `count` clock frames under `salt`, back to back. */
function clockFrames(salt: number, count: number, from = 1n): Uint8Array {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 32 * count + 64);
  enc.useSalt(salt);
  for (let i = 0n; i < BigInt(count); i++) encodeBinaryRecord(core, enc, { type: "clock", value: from + i });
  return enc.bytes().slice();
}

/**
 * A file behind a header whose checksum is damaged (its salt field intact, `firstSalt`): `n`
 * regions, each two clock frames under a salt of its own (`firstSalt + k`) and a third whose
 * checksum fails. Salvage recovers the first salt and meets another at every region.
 */
function saltRegionsFile(firstSalt: number, n: number): Uint8Array {
  const regions: Uint8Array[] = [];
  for (let k = 0; k < n; k++) {
    const region = clockFrames(firstSalt + k, 3, BigInt(k * 3 + 1));
    region[region.length - 10]! ^= 1;
    regions.push(region);
  }
  const header = encodeFileHeader(FileKind.serfSnapshot, firstSalt);
  header[20]! ^= 1;
  const file = new Uint8Array(header.length + regions.reduce((n, x) => n + x.length, 0));
  file.set(header);
  regions.reduce((at, x) => (file.set(x, at), at + x.length), header.length);
  return file;
}

Deno.test("In a version 1 file a run of another salt after damage must take more than two records to count: 216 KB stay a torn tail, as version 1 read it", async () => {
  // Without a salt, a member can compute the writer's frame headers' checksums, so frames of a
  // name can run on over them past any floor (a review built two records that did).
  const mem = new MemFs();
  mem.write(P, encodeFileHeader(FileKind.serfSnapshot, 0));
  const s = await openMem(mem);
  for (let i = 0; i < 60; i++) s.append({ type: "alive", name: `acked-${i}`, addr: "10.0.0.1:7946" });
  await s.close();
  const base = mem.read(P);
  const run = clockFrames(0x5eed1234, 9000); // 216 KB under one other salt, to the end
  const file = new Uint8Array(base.length + 8 + run.length);
  file.set(base);
  file.fill(0xa5, base.length, base.length + 8); // a damaged header word
  file.set(run, base.length + 8);
  const m = new MemFs();
  m.write(P, file);
  const o = await openMem(m);
  assert.equal(o.aliveNodes().length, 60);
  assert.equal(o.openReport.tornTailBytes, 8 + run.length);
  await o.close();
  // The same in a version 2 file is another file's blocks: refused.
  const m2 = new MemFs();
  const v2 = await snapshotBytes("acked", 60, 1n);
  const f2 = new Uint8Array(v2.length + 8 + run.length);
  f2.set(v2);
  f2.fill(0xa5, v2.length, v2.length + 8);
  f2.set(run, v2.length + 8);
  m2.write(P, f2);
  await assert.rejects(replaySnapshot(P, { fs: m2 }), /another salt/);
});

Deno.test("Salvage of a damaged header switches salts a bounded number of times, and not to runs that stop mid-file", async () => {
  // Regions of two frames under a salt of their own and a torn-looking third made a salvage
  // with a recovered salt switch once a region, each switch a scan to the end: quadratic.
  const file = saltRegionsFile(0x1000, 300);
  const m = new MemFs();
  m.write(P, file);
  const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
  assert.ok(r.warnings.length <= 10, `${r.warnings.length} regions skipped`);
  assert.ok(r.lastClock <= 3n * 10n, `clock ${r.lastClock}: applied regions past the bound`);
});

Deno.test("Another file's blocks over this one's start when one of the two is version 1, or with a long zeroed tail after a torn append: still refused", async () => {
  // The rule was off wherever a salt was 0, and a torn last frame ended a run only near the
  // end of the file: each made a default open cut a 700 KB file to 4 KB.
  const v2 = await snapshotBytes("real", 20_000, 77n);
  const v1 = asVersion1(v2);
  const otherV2 = await snapshotBytes("other", 2000, 5n);
  const otherV1 = asVersion1(otherV2);
  const zeroTail = (b: Uint8Array): Uint8Array => {
    const out = new Uint8Array(b.length - 30 + (1 << 20));
    out.set(b.subarray(0, b.length - 30)); // the last frame cut 10 bytes in, then 1 MiB of zeros
    return out;
  };
  for (
    const [what, own, other, after] of [
      ["a version 1 page over a version 2 file", v2, otherV1, (b: Uint8Array) => b],
      ["a version 2 page over a version 1 file", v1, otherV2, (b: Uint8Array) => b],
      ["a torn append and 1 MiB of zeros after it", v2, otherV2, zeroTail],
    ] as const
  ) {
    const bad = own.slice();
    bad.set(other.subarray(0, 4096), 0);
    const file = after(bad);
    const m = new MemFs();
    m.write(P, file);
    const err = await replaySnapshot(P, { fs: m }).catch((e) => e);
    assert.ok(err instanceof CorruptionError && /another salt/.test(err.message), `${what}: ${err}`);
    const r = await replaySnapshot(P, { fs: m, recovery: "salvage" });
    assert.ok(r.aliveNodes.filter((n) => n.name.startsWith("real-")).length >= 19_800, what);
  }
});

Deno.test("Repeated junk counts for nothing, not even as frames alone; readSnapshotRecords switches salts no more often than replay", async () => {
  // 200 identical clock frames under another salt after one real record behind a lost header:
  // counted as frames alone, they outweighed the record, and salvage kept only the junk's clock.
  const one = new MemFs();
  const w = await openMem(one);
  w.append({ type: "alive", name: "real-0", addr: "10.0.0.1:7946" });
  await w.close();
  const real = one.read(P); // the header and one frame alone
  const junkFrame = clockFrames(0x7777, 1, 999n);
  const file = new Uint8Array(real.length + 200 * junkFrame.length);
  file.set(real);
  for (let k = 0; k < 200; k++) file.set(junkFrame, real.length + k * junkFrame.length);
  file.fill(0, 0, 24);
  const m = new MemFs();
  m.write(P, file);
  const r = await replaySnapshot(P, { fs: m, recovery: "salvage", format: "binary" });
  assert.deepEqual(r.aliveNodes.map((n) => n.name), ["real-0"]);
  assert.equal(r.lastClock, 0n, "not the junk's clock");
  // Salt switches, counted across readSnapshotRecords' segments as in one replay.
  const { readSnapshotRecords } = await import("../mod.ts");
  const { readRecordsPolicy } = await import("../src/serf/read_records.ts");
  const crafted = saltRegionsFile(0x2000, 40);
  const m2 = new MemFs();
  m2.write(P, crafted);
  const replayed = await replaySnapshot(P, { fs: m2, recovery: "salvage" });
  const old = readRecordsPolicy.segmentRegions;
  readRecordsPolicy.segmentRegions = 1;
  try {
    let clock = 0n;
    for await (const e of readSnapshotRecords(P, { fs: m2, recovery: "salvage" })) {
      if (e.record?.type === "clock") clock = e.record.value;
    }
    assert.equal(clock, replayed.lastClock, "the same records as the replay, segment after segment");
  } finally {
    readRecordsPolicy.segmentRegions = old;
  }
});
