// The replays' read-ahead (src/fs/_read_ahead.ts): same bytes as reading the file directly,
// whatever the order of the reads; the next chunk under way while the caller works; errors of
// a chunk read ahead only for a read that asks for its bytes.
import assert from "node:assert/strict";
import { READ_AHEAD_BYTES, ReadAhead } from "../src/fs/_read_ahead.ts";
import { denoFs } from "../src/fs/deno_fs.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import type { FileHandle, FileSystem } from "../src/fs/types.ts";
import { replaySnapshot, type SnapshotState, Snapshotter } from "../mod.ts";
import { GoTextReplayer, PositionalReader } from "../src/serf/gotext.ts";
import { fuzzIterations, Rng, testSeed } from "./_rng.ts";
import { withTempDir } from "./_tmp.ts";

/** A read-only FileHandle over `data` that logs each read (position, length) it is asked for. */
class LoggedFile implements FileHandle {
  readonly reads: [number, number][] = [];
  /** Reads by index (0-based) that reject with this error. */
  readonly failures = new Map<number, Error>();
  constructor(public data: Uint8Array) {}
  read(buf: Uint8Array, position: number): Promise<number> {
    const i = this.reads.length;
    this.reads.push([position, buf.length]);
    const err = this.failures.get(i);
    if (err !== undefined) return Promise.reject(err);
    const n = Math.max(0, Math.min(buf.length, this.data.length - position));
    buf.set(this.data.subarray(position, position + n));
    return Promise.resolve(n);
  }
  write(): Promise<void> {
    throw new Error("read-only");
  }
  truncate(): Promise<void> {
    throw new Error("read-only");
  }
  datasync(): Promise<void> {
    return Promise.resolve();
  }
  size(): Promise<number> {
    return Promise.resolve(this.data.length);
  }
  tryLock(): Promise<boolean> {
    return Promise.resolve(true);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** `file`, its reads going through `read`. */
function withRead(file: FileHandle, read: FileHandle["read"]): FileHandle {
  return {
    read,
    write: (d, p) => file.write(d, p),
    truncate: (n) => file.truncate(n),
    datasync: () => file.datasync(),
    size: () => file.size(),
    tryLock: () => file.tryLock(),
    close: () => file.close(),
  };
}

function pattern(n: number): Uint8Array {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
  return data;
}

Deno.test("ReadAhead returns the file's bytes for any sequence of reads (seeded)", async () => {
  const seed = testSeed("read-ahead fuzz");
  const rng = new Rng(seed);
  const fs = new MemFs();
  for (let iter = 0; iter < fuzzIterations(60); iter++) {
    const data = rng.bytes(rng.int(20_000));
    const path = `f${iter}`;
    const w = await fs.open(path, { write: true, create: true });
    await w.write(data, 0);
    await w.close();
    const file = await fs.open(path, { read: true });
    const chunk = 1 + rng.int(3000);
    const end = rng.int(4) === 0 ? rng.int(data.length + 1) : data.length;
    const ahead = new ReadAhead(file, end, chunk);
    let at = 0;
    for (let step = 0; step < 40; step++) {
      // Mostly on from the last read (a replay), sometimes elsewhere (a search after damage).
      if (rng.int(5) === 0) at = rng.int(data.length + 10);
      const buf = new Uint8Array(rng.int(4000) + 1);
      const n = await ahead.read(buf, at);
      const want = data.subarray(at, at + buf.length);
      const where =
        `seed ${seed}, file ${iter} (${data.length} B, chunk ${chunk}, end ${end}), read at ${at}`;
      assert.ok(n <= want.length, where);
      assert.ok(n > 0 || want.length === 0, `${where}: 0 before the end`);
      assert.deepEqual(buf.subarray(0, n), want.subarray(0, n), where);
      // A read returns all it asked for, or stops at the end of the file or of what is read ahead.
      if (n < want.length) assert.ok(at + n === end || at + n === data.length, `${where}: short, ${n}`);
      at += n;
    }
    await file.close();
  }
});

Deno.test("ReadAhead reads the next chunk while the caller works on this one, and serves it without a read", async () => {
  const file = new LoggedFile(pattern(10_000));
  const ahead = new ReadAhead(file, 10_000, 4096);
  const buf = new Uint8Array(4096);
  assert.equal(await ahead.read(buf, 0), 4096);
  // Before the caller asks again, the chunk after this one is under way.
  assert.deepEqual(file.reads, [[0, 4096], [4096, 4096]]);
  // The next read (4000 bytes: a replay keeps a cut frame back) comes from it; the chunk after
  // it starts at once, only as far as the end.
  assert.equal(await ahead.read(buf.subarray(0, 4000), 4096), 4000);
  assert.deepEqual(buf.subarray(0, 4000), pattern(10_000).subarray(4096, 8096));
  assert.deepEqual(file.reads, [[0, 4096], [4096, 4096], [8192, 1808]]);
  // Across two chunks, to the end of the file, without another read.
  assert.equal(await ahead.read(buf, 8096), 1904);
  assert.deepEqual(buf.subarray(0, 1904), pattern(10_000).subarray(8096));
  assert.equal(file.reads.length, 3);
  assert.equal(await ahead.read(buf, 10_000), 0);
});

Deno.test("ReadAhead reads nothing ahead past its end or after a read that came back short", async () => {
  const file = new LoggedFile(pattern(5000));
  const ahead = new ReadAhead(file, 3000, 1024);
  const buf = new Uint8Array(1024);
  assert.equal(await ahead.read(buf, 0), 1024);
  assert.equal(await ahead.read(buf, 1024), 1024);
  assert.equal(await ahead.read(buf, 2048), 952); // ahead only to the end it was given
  assert.ok(file.reads.every(([p, n]) => p + n <= 3000), JSON.stringify(file.reads));
  const reads = file.reads.length;
  // Past the end it was given: from the file itself.
  assert.equal(await ahead.read(buf, 3000), 1024);
  assert.deepEqual(file.reads[reads], [3000, 1024]);

  // A file shorter than a read: nothing is read ahead after it.
  const small = new LoggedFile(pattern(100));
  const a2 = new ReadAhead(small, Infinity, 64);
  assert.equal(await a2.read(new Uint8Array(64), 0), 64);
  assert.equal(await a2.read(new Uint8Array(64), 64), 36);
  assert.equal(await a2.read(new Uint8Array(64), 100), 0);
  assert.deepEqual(small.reads, [[0, 64], [64, 64], [100, 64]]);
});

Deno.test("ReadAhead throws a failed chunk's error to the read that asks for its bytes, and only to it", async () => {
  const eio = Object.assign(new Error("Cannot read: injected EIO"), { code: "EIO" });
  const file = new LoggedFile(pattern(8192));
  file.failures.set(1, eio); // the read ahead of [4096, 8192)
  const ahead = new ReadAhead(file, 8192, 4096);
  const buf = new Uint8Array(4096);
  assert.equal(await ahead.read(buf, 0), 4096);
  await assert.rejects(ahead.read(buf, 4096), (e) => e === eio);

  // Never asked for: forgotten (no unhandled rejection fails this test), and a read elsewhere
  // goes to the file.
  const f2 = new LoggedFile(pattern(8192));
  f2.failures.set(1, eio);
  const a2 = new ReadAhead(f2, 8192, 4096);
  assert.equal(await a2.read(buf, 0), 4096);
  assert.equal(await a2.read(buf.subarray(0, 100), 200), 100);
  assert.deepEqual(buf.subarray(0, 100), pattern(8192).subarray(200, 300));
});

Deno.test("denoFs starts a call at once when none is in flight, and keeps calls in order", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f`;
    const f = await denoFs.open(path, { read: true, write: true, create: true });
    try {
      // A small write with nothing in flight has reached the file before the caller awaits it
      // (a read ahead relies on the same: its read starts before the caller goes on to scan).
      const w = f.write(new Uint8Array([1, 2, 3]), 0);
      assert.deepEqual(Deno.readFileSync(path), new Uint8Array([1, 2, 3]));
      await w;
      // Calls made while one is in flight wait their turn, each at its own position.
      const a = new Uint8Array(2);
      const b = new Uint8Array(2);
      const results = await Promise.all([
        f.write(new Uint8Array([9, 9, 9, 9]), 3),
        f.read(a, 1),
        f.read(b, 4),
        f.write(new Uint8Array([5]), 0),
      ]);
      assert.deepEqual(results, [undefined, 2, 2, undefined]);
      assert.deepEqual(a, new Uint8Array([2, 3]));
      assert.deepEqual(b, new Uint8Array([9, 9]));
      assert.deepEqual(Deno.readFileSync(path), new Uint8Array([5, 2, 3, 9, 9, 9, 9]));
    } finally {
      await f.close();
    }
  });
});

/** A FileSystem whose handles log the reads they are asked for, in a shared list. */
function loggingFs(inner: FileSystem, reads: [number, number][]): FileSystem {
  return {
    ...inner,
    open: async (path, options) => {
      const f = await inner.open(path, options);
      return withRead(f, (buf, position) => {
        reads.push([position, buf.length]);
        return f.read(buf, position);
      });
    },
    stat: (p) => inner.stat(p),
    rename: (a, b) => inner.rename(a, b),
    remove: (p) => inner.remove(p),
    syncDir: (p) => inner.syncDir(p),
  };
}

Deno.test("replays of both formats read each chunk ahead of the scan", async () => {
  const mem = new MemFs();
  for (const format of ["binary", "go-text"] as const) {
    const path = `log.${format}`;
    const log = await Snapshotter.open(path, {
      fs: mem,
      format,
      sync: "never",
      minCompactSizeBytes: 2 ** 40,
    });
    // 5,000 names: the alive set's table is sized up front, so no scan grows the memory under a
    // read ahead (which would read that chunk again: see the next tests).
    for (let i = 0; i < 100_000; i++) {
      log.append({ type: "alive", name: `node-${i % 5000}`, addr: `10.0.${i >> 8 & 255}.${i & 255}:7946` });
    }
    await log.close();
    const size = mem.read(path).length;
    assert.ok(size > 3 * READ_AHEAD_BYTES, `${format}: ${size} bytes`);
    const reads: [number, number][] = [];
    const state = await replaySnapshot(path, { fs: loggingFs(mem, reads) });
    assert.equal(state.aliveNodes.length, 5000);
    // From the first whole chunk on, every read is a chunk ahead, at chunk boundaries, to the
    // end: the scan's own reads (a chunk less the record its end cut) never reach the file.
    // (Binary: ReadAhead's 1 MiB chunks; Go text: straight into the halves of its 1 MiB
    // buffer, less the room kept before each for a cut line.)
    const step = format === "binary" ? READ_AHEAD_BYTES : READ_AHEAD_BYTES / 2 - (32 << 10);
    const from = reads.findIndex(([, n]) => n === step);
    const chunkReads = reads.slice(from);
    const first = chunkReads[0]![0];
    assert.ok(from >= 0 && chunkReads.length >= 4, `${format}: ${JSON.stringify(reads)}`);
    chunkReads.forEach(([p, n], i) => {
      assert.equal(p, first + i * step, `${format}: read ${i} of ${JSON.stringify(reads)}`);
      assert.equal(n, Math.min(step, size - p), `${format}: read ${i} of ${JSON.stringify(reads)}`);
    });
    const [p, n] = chunkReads[chunkReads.length - 1]!;
    assert.equal(p + n, size, `${format}: the reads end at the end of the file`);
  }
});

// A replay whose torn tail is cut under it (a log's open repairing the file) must end as a
// replay of the file before or after the cut. The search after the damage finds the cut and
// the replay scans again from the damage: chunks read ahead before the cut hold the bytes the
// cut took, and served from them the rescan found a torn tail the file never had (and strict
// mode refused the clean file). Found by a review of the read-ahead (session 17).
{
  const P = "s.snap";
  const build = async (): Promise<{ clean: Uint8Array; torn: Uint8Array }> => {
    const mem = new MemFs();
    const log = await Snapshotter.open(P, {
      fs: mem,
      format: "binary",
      sync: "never",
      minCompactSizeBytes: 2 ** 40,
    });
    // Names of varying length, so chunk edges cut frames (frames of one size line up with 1 MiB).
    for (let i = 0; i < 60_000; i++) {
      log.append({
        type: "alive",
        name: `node-${i}${"x".repeat(i % 13)}`,
        addr: `10.0.${(i >> 8) & 255}.${i & 255}:7946`,
      });
    }
    await log.close();
    const clean = mem.read(P);
    // A torn tail: a frame with a sound header and a bad checksum, then 1.5 MiB holding no frame.
    const frame = clean.slice(24, 24 + 64);
    frame[20]! ^= 0xff;
    const junk = new Rng(12345).bytes(3 << 19);
    const torn = new Uint8Array(clean.length + frame.length + junk.length);
    torn.set(clean);
    torn.set(frame, clean.length);
    torn.set(junk, clean.length + frame.length);
    return { clean, torn };
  };
  /** `mem`, with the file cut to `cutAt` right after a read reaches the end of its `size` bytes. */
  const cutAfterEndRead = (mem: MemFs, size: number, cutAt: number): FileSystem => {
    let cut = false;
    let writer: FileHandle | null = null;
    return {
      ...loggingFs(mem, []),
      open: async (path, options) => {
        writer ??= await mem.open(P, { write: true });
        const h = await mem.open(path, options);
        return withRead(h, async (buf, position) => {
          const n = await h.read(buf, position);
          if (!cut && position + n >= size) {
            cut = true;
            await writer!.truncate(cutAt);
          }
          return n;
        });
      },
    };
  };
  const key = (r: { records: number; bytes: number; tornTailBytes: number }): string =>
    JSON.stringify({ records: r.records, bytes: r.bytes, torn: r.tornTailBytes });

  Deno.test("a replay whose torn tail is cut under it returns the file before or after the cut, not stale bytes read ahead", async () => {
    const { clean, torn } = await build();
    const before = new MemFs();
    before.write(P, torn);
    const after = new MemFs();
    after.write(P, clean);
    const states = [
      key(await replaySnapshot(P, { fs: before, parallel: false })),
      key(await replaySnapshot(P, { fs: after, parallel: false })),
    ];
    const m = new MemFs();
    m.write(P, torn);
    const got = key(
      await replaySnapshot(P, { fs: cutAfterEndRead(m, torn.length, clean.length), parallel: false }),
    );
    assert.ok(states.includes(got), `got ${got}, expected one of ${states.join(" / ")}`);

    // Strict, having seen the cut: the shorter file is clean.
    const s = new MemFs();
    s.write(P, torn);
    const r = await replaySnapshot(P, {
      fs: cutAfterEndRead(s, torn.length, clean.length),
      parallel: false,
      recovery: "strict",
    });
    assert.equal(r.bytes, clean.length);
    assert.equal(r.tornTailBytes, 0);
  });
}

// ---------------------------------------------------------------------------------------------
// The Go text replay reads its next chunk straight into Wasm memory (GoTextReplayer.readAll
// over a PositionalReader), in two regions that take turns.

function textFile(lines: string[]): Uint8Array {
  return new TextEncoder().encode(lines.join(""));
}

/**
 * Asserts that two replays' states are the same, naming the first difference (deepEqual's diff
 * of two 60,000-node lists would take minutes and gigabytes to print).
 */
function assertSameState(got: SnapshotState, want: SnapshotState, where: string): void {
  const text = (s: SnapshotState) =>
    JSON.stringify({ ...s, aliveNodes: s.aliveNodes.length }, (_, v) => typeof v === "bigint" ? `${v}` : v);
  assert.equal(text(got), text(want), where);
  const i = got.aliveNodes.findIndex((n, k) =>
    n.name !== want.aliveNodes[k]!.name || n.addr !== want.aliveNodes[k]!.addr
  );
  assert.equal(
    i,
    -1,
    `${where}: node ${i}: ${JSON.stringify(got.aliveNodes[i])} against ${JSON.stringify(want.aliveNodes[i])}`,
  );
}

/** What a replay of `bytes` pushed in one piece gives (no reads, no read-ahead). */
function pushed(bytes: Uint8Array): SnapshotState {
  const r = new GoTextReplayer();
  r.push(bytes);
  return r.finish();
}

Deno.test("GoTextReplayer reads the next chunk before it scans this one", async () => {
  const lines: string[] = [];
  for (let i = 0; i < 120_000; i++) lines.push(`alive: node-${i % 3000} 10.0.${i & 255}.1:7946\n`);
  const data = textFile(lines);
  const file = new LoggedFile(data);
  const replayer = new GoTextReplayer();
  replayer.state.reserveFor(data.length); // as a replay does: no scan grows the memory here
  const seen: number[] = [];
  const logged = withRead(file, (buf, position) => {
    seen.push(replayer.lines);
    return file.read(buf, position);
  });
  await replayer.readAll(new PositionalReader(logged, 0, data.length));
  assertSameState(replayer.finish(), pushed(data), "read ahead");
  // Each chunk's read starts before the one before it is scanned: when the second read is
  // asked for, no line has been applied yet.
  assert.ok(file.reads.length >= 4, JSON.stringify(file.reads));
  assert.deepEqual(seen.slice(0, 2), [0, 0]);
  const step = file.reads[0]![1];
  file.reads.forEach(([p], i) => assert.equal(p, i * step, JSON.stringify(file.reads)));
});

Deno.test("GoTextReplayer reads a chunk again when a scan grew the memory under its read", async () => {
  // 60,000 names: past the table the replay sizes up front, so scans grow the memory, which
  // detaches the view a read ahead writes into. A file system whose reads land later (here:
  // after the scan) writes into the old memory then; this one drops such a write, as if it
  // had gone to memory the instance no longer uses.
  const lines: string[] = [];
  for (let i = 0; i < 60_000; i++) lines.push(`alive: node-${i} 10.0.${i & 255}.1:7946\n`);
  const data = textFile(lines);
  const reads: number[] = [];
  const late = withRead(new LoggedFile(data), async (buf, position) => {
    reads.push(position);
    const n = Math.max(0, Math.min(buf.length, data.length - position));
    await Promise.resolve(); // the caller's scan runs first
    if (buf.byteLength !== 0) buf.set(data.subarray(position, position + n));
    return n;
  });
  const replayer = new GoTextReplayer();
  await replayer.readAll(new PositionalReader(late, 0, data.length));
  assertSameState(replayer.finish(), pushed(data), JSON.stringify(reads));
  // Some chunk was read twice in a row, the second time into the grown memory.
  assert.ok(reads.some((p, i) => i > 0 && reads[i - 1] === p), JSON.stringify(reads));
});

Deno.test("GoTextReplayer's read-ahead hands long lines, short reads and a moved end over to the plain loop, with the same state", async () => {
  const seed = testSeed("go-text read-ahead hand-over");
  const rng = new Rng(seed);
  for (let iter = 0; iter < 12; iter++) {
    const lines: string[] = [];
    const count = 2000 + rng.int(40_000);
    for (let i = 0; i < count; i++) {
      const r = rng.int(1000);
      if (r === 0) lines.push(`alive: long-${"x".repeat(60_000 + rng.int(200_000))} 10.0.0.1:7946\n`);
      else if (r < 5) lines.push(`clock: ${rng.int(1e9)}\n`);
      else if (r < 8) lines.push(`not-a-line ${i}\n`);
      else lines.push(`alive: node-${rng.int(5000)} 10.0.${i & 255}.1:7946\n`);
    }
    if (rng.int(2) === 0) lines.push("alive: torn-last-line 10.0.0.9:79"); // no '\n'
    const data = textFile(lines);
    const where = `seed ${seed}, file ${iter} (${data.length} bytes)`;
    const chunk = [1 << 16, 1 << 18, 1 << 20][rng.int(3)]!;
    // Reads that return at most `cap` bytes now and then (a short read), and a reader whose
    // end moves on in steps, each readAll going on from the last (a split's boundary).
    const file = new LoggedFile(data);
    const cap = rng.int(2) === 0 ? Infinity : 1 + rng.int(chunk);
    let shortReads = 0;
    const shorter = withRead(file, (buf, position) => {
      if (cap !== Infinity && rng.int(4) === 0) {
        shortReads++;
        return file.read(buf.subarray(0, Math.min(buf.length, cap)), position);
      }
      return file.read(buf, position);
    });
    const replayer = new GoTextReplayer({ chunkSizeBytes: chunk });
    const reader = new PositionalReader(shorter, 0, 0);
    while (reader.end < data.length) {
      reader.end = Math.min(data.length, reader.end + 1 + rng.int(data.length));
      await replayer.readAll(reader);
      assert.equal(reader.position, reader.end, where);
    }
    assertSameState(replayer.finish(), pushed(data), `${where}, chunk ${chunk}, short reads ${shortReads}`);
  }
});

// Four cases a review of the direct read found (session 17), each failing before its fix.
Deno.test("GoTextReplayer: a cut line of exactly the room, then a chunk without '\\n', does not end the replay early", async () => {
  // The pending bytes then fill the buffer; the plain loop read into a view of 0 bytes, took
  // that for the end of the file, and a log's open (and its next compaction) lost the rest.
  const chunk = 1 << 20, room = 64 << 10, size = chunk - room;
  const text = "alive: node-a 10.0.0.1:7946\n" + "# " + "a".repeat(size - room - 31) + "\n" +
    "# " + "b".repeat(room + size + 100) + "\n" + "alive: node-z 10.0.0.9:7946\nclock: 42\n";
  const data = new TextEncoder().encode(text);
  const replayer = new GoTextReplayer();
  await replayer.readAll(new PositionalReader(new LoggedFile(data), 0, data.length));
  assertSameState(replayer.finish(), pushed(data), "room-sized cut line");
  const mem = new MemFs();
  mem.write("log", data);
  const s = await Snapshotter.open("log", { fs: mem, format: "go-text", parallel: false });
  await s.compact();
  await s.close();
  assert.match(new TextDecoder().decode(mem.read("log")), /node-z[^]*clock: 42/);
});

Deno.test("GoTextReplayer: a file system whose reads start a microtask late loses nothing when a scan grows the memory", async () => {
  // The read then finds its view detached: 0 bytes (taken for the end of the file), or a
  // TypeError from a write into it. Both are read again.
  const lines: string[] = [];
  for (let i = 0; i < 60_000; i++) lines.push(`alive: node-${i} 10.0.${i & 255}.1:7946\n`);
  const data = textFile([...lines, "clock: 42\n"]);
  for (const late of ["count", "write"] as const) {
    const file = new LoggedFile(data);
    const handle = withRead(file, async (buf, position) => {
      await null;
      if (late === "write") {
        const n = Math.max(0, Math.min(buf.length, data.length - position));
        buf.set(data.subarray(position, position + n)); // throws on a detached view
        return n;
      }
      return await file.read(buf, position); // a detached view has no room: 0 bytes
    });
    const replayer = new GoTextReplayer();
    await replayer.readAll(new PositionalReader(handle, 0, data.length));
    assertSameState(replayer.finish(), pushed(data), late);
  }
});

Deno.test("GoTextReplayer: no memory for a second region reads on without one, and a small file takes none", async () => {
  const data = new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 3\nalive: b 10.0.0.2:7946\n");
  // Less than a chunk of Wasm memory left: the replay needs no more than before.
  const r = new GoTextReplayer();
  const core = r.state.core;
  const held: [number, number][] = [];
  for (const size of [1 << 20, 64 << 10]) {
    while (true) {
      try {
        held.push([core.alloc(size), size]);
      } catch {
        break;
      }
    }
  }
  for (let i = 0; i < 4; i++) {
    const [p, s] = held.pop()!;
    core.free(p, s);
  }
  const reader = new PositionalReader(new LoggedFile(data), 0, data.length);
  await r.readAll(reader);
  assert.equal(r.lines, 3);
  assert.equal(reader.position, data.length);
  // A file shorter than a chunk: no second region, no memory beyond the replayer's own.
  const small = new GoTextReplayer();
  const before = small.state.core.u8.byteLength;
  await small.readAll(new PositionalReader(new LoggedFile(data), 0, data.length));
  assert.equal(small.lines, 3);
  assert.equal(small.state.core.u8.byteLength, before);
});

Deno.test("GoTextReplayer: a throw as the next read starts (the hook, or a file's read) leaves what was applied and reader.position in step", async () => {
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) lines.push(`alive: node-${i % 4000} 10.0.${i & 255}.1:7946\n`);
  const data = textFile([...lines, "clock: 42\n"]);
  for (const where of ["hook", "read"] as const) {
    const file = new LoggedFile(data);
    let calls = 0;
    const handle = withRead(file, (buf, position) => {
      if (where === "read" && ++calls === 2) throw new Error("read failed at once");
      return file.read(buf, position);
    });
    const reader = new PositionalReader(handle, 0, data.length);
    let hooks = 0;
    if (where === "hook") {
      reader.beforeRead = () => {
        if (++hooks === 2) throw new Error("hook failed once");
      };
    }
    const replayer = new GoTextReplayer();
    await assert.rejects(replayer.readAll(reader), /failed/);
    // What was applied is the file up to reader.position, less the pending bytes.
    const prefix = new GoTextReplayer();
    prefix.push(data.subarray(0, reader.position));
    assert.equal(replayer.lines, prefix.lines, where);
    assert.equal(replayer.pendingBytes, prefix.pendingBytes, where);
    prefix.finish();
    // And a second readAll from there finishes the replay.
    reader.beforeRead = null;
    await replayer.readAll(reader);
    assertSameState(replayer.finish(), pushed(data), where);
  }
});

Deno.test("GoTextReplayer's read-ahead takes no Wasm memory beyond what a replay pushed in pieces takes", async () => {
  // (A second 1 MiB region, taken by a first version, stayed with every open log for good.)
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) lines.push(`alive: node-${i % 4000} 10.0.${i & 255}.1:7946\n`);
  const data = textFile(lines);
  const read = new GoTextReplayer();
  read.state.reserveFor(data.length);
  await read.readAll(new PositionalReader(new LoggedFile(data), 0, data.length));
  const push = new GoTextReplayer();
  push.state.reserveFor(data.length);
  for (let at = 0; at < data.length; at += 1 << 20) push.push(data.subarray(at, at + (1 << 20)));
  assert.equal(read.state.core.u8.byteLength, push.state.core.u8.byteLength);
  assertSameState(read.finish(), push.finish(), "memory");
});
