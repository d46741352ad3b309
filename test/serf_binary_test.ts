import { crc32c } from "../src/core/crc32c.ts";
import assert from "node:assert/strict";
import { WasmCore } from "../src/_wasm/core.ts";
import { FrameEncoder } from "../src/core/frame.ts";
import { encodeBinaryRecord, replayBinaryFile, SERF_LIMITS } from "../src/serf/binary.ts";
import { newBinaryCodec } from "../src/serf/_codec.ts";
import { denoFs } from "../src/fs/deno_fs.ts";
import { Snapshotter } from "../mod.ts";
import { readBinary, readGoText } from "../src/serf/_parallel.ts";
import { GoTextReplayer, PositionalReader } from "../src/serf/gotext.ts";
import type { AliveNode } from "../src/serf/types.ts";
import { withTempDir } from "./_tmp.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

Deno.test("encodeBinaryRecord writes the README's worked example byte for byte", () => {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 1024);
  assert.ok(encodeBinaryRecord(core, enc, { type: "alive", name: "node-1", addr: "10.0.0.1:7946" }));
  const frame = enc.bytes();
  assert.equal(
    hex(frame),
    "01 00 00 00 15 00 00 00 32 22 3a 5a 06 00 6e 6f 64 65 2d 31 " +
      "31 30 2e 30 2e 30 2e 31 3a 37 39 34 36 00 00 00 00 00 00 00",
  );
  // The checksum is crc32c of the whole 40-byte frame with its own field read as zero.
  const zeroed = frame.slice();
  zeroed.fill(0, 8, 12);
  assert.equal(crc32c(zeroed), 0x5a3a2232);
});

Deno.test("encodeBinaryRecord takes the UTF-8 path for non-ASCII names and leaves no stray frame", () => {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 1024);
  assert.ok(encodeBinaryRecord(core, enc, { type: "alive", name: "nöde-é", addr: "[::1]:7946" }));
  assert.ok(encodeBinaryRecord(core, enc, { type: "not-alive", name: "日本" }));
  const bytes = enc.bytes();
  // alive: 2 + 8 (UTF-8 of "nöde-é") + 10 = 20 → 32-byte frame; not-alive: 6 → 24-byte frame.
  assert.equal(bytes.length, 32 + 24);
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true), 20);
  assert.equal(new TextDecoder().decode(bytes.subarray(14, 22)), "nöde-é");
  assert.equal(new TextDecoder().decode(bytes.subarray(32 + 12, 32 + 18)), "日本");
});

Deno.test("encodeBinaryRecord finds a non-ASCII unit at any position of a name or address", () => {
  // The ASCII fast path reads two units a step and tests them after the loop: a non-ASCII
  // unit first, last, at an odd or an even place, in strings of odd and even length, in the
  // name or the address, must still take the UTF-8 path (else its low byte is written).
  const core = new WasmCore();
  for (let len = 1; len <= 9; len++) {
    for (let at = 0; at < len; at++) {
      for (const unit of ["\u0080", "é", "\u0100", "日"]) {
        const odd = "n".repeat(at) + unit + "m".repeat(len - at - 1);
        for (const [name, addr] of [[odd, "a:1"], ["node", odd]] as const) {
          for (
            const record of [{ type: "alive", name, addr } as const, { type: "not-alive", name } as const]
          ) {
            const enc = new FrameEncoder(core, SERF_LIMITS, 1024);
            assert.ok(encodeBinaryRecord(core, enc, record));
            const bytes = enc.bytes();
            const payload = bytes.subarray(
              12,
              12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true),
            );
            const text = new TextDecoder();
            if (record.type === "alive") {
              const nl = payload[0]! | (payload[1]! << 8);
              assert.equal(text.decode(payload.subarray(2, 2 + nl)), name, `${JSON.stringify(record)}`);
              assert.equal(text.decode(payload.subarray(2 + nl)), addr, `${JSON.stringify(record)}`);
            } else {
              assert.equal(text.decode(payload), name, `${JSON.stringify(record)}`);
            }
          }
        }
      }
    }
  }
});

Deno.test("encodeBinaryRecord rejects names and addresses over 65535 UTF-8 bytes", () => {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 1 << 20);
  assert.throws(
    () => encodeBinaryRecord(core, enc, { type: "alive", name: "x".repeat(65536), addr: "a:1" }),
    RangeError,
  );
  // 30,000 three-byte characters: short in UTF-16 units, too long in bytes.
  assert.throws(
    () => encodeBinaryRecord(core, enc, { type: "not-alive", name: "€".repeat(30000) }),
    RangeError,
  );
  assert.equal(enc.length, 0, "nothing half-written");
  assert.ok(encodeBinaryRecord(core, enc, { type: "alive", name: "x".repeat(65535), addr: "a:1" }));
});

Deno.test("replaySnapshot reads frames larger than its scan window and chunk edges", async () => {
  const { MemFs } = await import("../src/fs/mem_fs.ts");
  const { Snapshotter, replaySnapshot } = await import("../mod.ts");
  const fs = new MemFs();
  const s = await Snapshotter.open("/d/s", { fs });
  const big = "n".repeat(60_000);
  for (let i = 0; i < 40; i++) {
    s.append({ type: "comment", text: "c".repeat(100_000 + i) }); // 100 KB frames straddle 32 KiB windows and 1 MiB chunks
    s.append({ type: "alive", name: `${big}${i}`, addr: `10.0.0.${i}:7946` });
  }
  s.append({ type: "not-alive", name: `${big}0` });
  await s.close();
  const st = await replaySnapshot("/d/s", { fs });
  assert.equal(st.records, 81);
  assert.equal(st.aliveNodes.length, 39);
  assert.equal(st.aliveNodes[0]!.name, `${big}1`);
  assert.equal(st.tornTailBytes, 0);
});

Deno.test("replaySnapshot reports a frame with a good CRC but an impossible payload as corruption at its offset", async () => {
  const { MemFs } = await import("../src/fs/mem_fs.ts");
  const { replaySnapshot, CorruptionError } = await import("../mod.ts");
  const { encodeFileHeader, FileKind } = await import("../src/core/frame.ts");
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 1024);
  assert.ok(encodeBinaryRecord(core, enc, { type: "alive", name: "a", addr: "10.0.0.1:7946" }));
  const badAt = 24 + enc.length;
  assert.ok(enc.append(1, new Uint8Array([7]))); // alive needs at least the 2-byte name length
  assert.ok(enc.append(3, new Uint8Array(4))); // a clock needs 8 bytes (never reached)
  const header = encodeFileHeader(FileKind.serfSnapshot, 0); // version 1: the encoder's frames are unsalted
  const file = new Uint8Array(header.length + enc.length);
  file.set(header);
  file.set(enc.bytes(), header.length);
  const fs = new MemFs();
  fs.write("/d/s", file);
  await assert.rejects(
    replaySnapshot("/d/s", { fs }),
    (e: unknown) => e instanceof CorruptionError && e.offset === badAt && /malformed/.test(e.reason),
  );
});

Deno.test("BinaryCodec seals and applies records staged while a write is in flight", async () => {
  // prepare() seals and applies the staged batch for a write; appends go on; consume() drops
  // what was written.
  const codec = newBinaryCodec(false);
  codec.encode({ type: "alive", name: "a", addr: "10.0.0.1:1" });
  const first = codec.bytesAt(0, codec.prepare(0, codec.staged)).slice();
  codec.encode({ type: "alive", name: "b", addr: "10.0.0.2:1" });
  codec.encode({ type: "not-alive", name: "a" });
  codec.consume(first.length);
  // In pieces: a limit inside the second frame ends the first piece after the first frame.
  const piece = codec.prepare(0, 8);
  assert.ok(piece > 0 && piece < codec.staged, String(piece));
  assert.deepEqual(codec.state.aliveNodes().map((n) => n.name), ["a", "b"], "applied up to the piece only");
  const second = new Uint8Array([
    ...codec.bytesAt(0, piece),
    ...codec.bytesAt(piece, codec.prepare(piece, codec.staged)),
  ]);
  assert.throws(() => codec.bytesAt(0, codec.staged + 8), /not prepared/);
  codec.consume(second.length);
  assert.equal(codec.staged, 0);
  assert.deepEqual(codec.state.aliveNodes(), [{ name: "b", addr: "10.0.0.2:1" }]);
  // Both writes hold whole, checksummed frames: replayed, they give the same state.
  await withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    const bytes = new Uint8Array([...codec.header(), ...first, ...second]);
    await Deno.writeFile(path, bytes);
    const replayed = newBinaryCodec(false);
    const file = await denoFs.open(path, { read: true });
    try {
      const r = await replayBinaryFile(replayed.core, file, bytes.length, path, "strict");
      assert.equal(r.records, 3);
    } finally {
      await file.close();
    }
    assert.deepEqual(replayed.state.aliveNodes(), [{ name: "b", addr: "10.0.0.2:1" }]);
  });
});

Deno.test("replayBinaryFile gives its scan buffer back: an open log's instance does not keep it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    const snap = await Snapshotter.open(path, { format: "binary", sync: "never" });
    for (let i = 0; i < 200; i++) snap.append({ type: "alive", name: `node-${i}`, addr: "10.0.0.1:7946" });
    await snap.close();
    const codec = newBinaryCodec(false);
    const file = await denoFs.open(path, { read: true });
    try {
      const size = await file.size();
      await replayBinaryFile(codec.core, file, size, path, "strict");
      const used = codec.core.exports.mem_used();
      // A second replay into the same instance reuses the first one's 1 MiB buffer.
      const r = await replayBinaryFile(codec.core, file, size, path, "strict");
      assert.equal(r.records, 200);
      assert.equal(codec.core.exports.mem_used(), used);
    } finally {
      await file.close();
    }
  });
});

Deno.test("replay sizes the alive set's table up front: no table built twice for a compacted file", async () => {
  // readBinary/readGoText (every replay: open, replaySnapshot, convert) reserve a table from
  // the file's size; replayBinaryFile alone grows it by doubling, which builds every smaller
  // table first: 2 MiB of them on the way to 9k nodes' 2 MiB table (fresh pages, 0.6 us each to
  // touch), at least 1 MiB of it still taken afterwards (freed tables wait on free lists).
  await withTempDir(async (dir) => {
    for (const format of ["binary", "go-text"] as const) {
      const path = `${dir}/s-${format}.snap`;
      const snap = await Snapshotter.open(path, { format, sync: "never" });
      for (let i = 0; i < 9_000; i++) {
        snap.append({ type: "alive", name: `node-${i}`, addr: "10.0.0.1:7946" });
      }
      await snap.compact();
      await snap.close();
      const file = await denoFs.open(path, { read: true });
      try {
        const size = await file.size();
        let reserved: number, grown: number, nodes: AliveNode[];
        if (format === "binary") {
          const a = newBinaryCodec(false);
          await readBinary(a.state, file, size, path, "strict", null);
          reserved = a.core.exports.mem_used();
          nodes = a.state.aliveNodes();
          const b = newBinaryCodec(false);
          await replayBinaryFile(b.core, file, size, path, "strict");
          grown = b.core.exports.mem_used();
          assert.deepEqual(b.state.aliveNodes(), nodes);
        } else {
          const a = new GoTextReplayer();
          await readGoText(a, file, size, null);
          reserved = a.state.core.exports.mem_used();
          nodes = a.state.aliveNodes();
          const b = new GoTextReplayer();
          await b.readAll(new PositionalReader(file, 0, size));
          grown = b.state.core.exports.mem_used();
          assert.deepEqual(b.state.aliveNodes(), nodes);
        }
        assert.equal(nodes.length, 9_000);
        assert.ok(
          grown - reserved >= 900 << 10,
          `${format}: ${reserved} bytes used with the reserve, ${grown} without`,
        );
      } finally {
        await file.close();
      }
    }
  });
});
