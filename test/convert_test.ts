import assert from "node:assert/strict";
import { type ConvertProgress, convertSnapshot } from "../src/serf/convert.ts";
import { replaySnapshot } from "../src/serf/replay.ts";
import { readSnapshotRecords } from "../src/serf/read_records.ts";
import { type SnapshotRecord, Snapshotter } from "../src/serf/snapshotter.ts";
import { CorruptionError, LockedError } from "../src/errors.ts";
import { FaultFs } from "../src/fs/fault_fs.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import type { FileInfo, FileSystem } from "../src/fs/types.ts";
import { Rng, testSeed } from "./_rng.ts";
import { fixtureNames, fixturePath } from "./_fixtures.ts";
import { withTempDir } from "./_tmp.ts";

const fixtures: string[] = fixtureNames();

/** The part of a replayed state a conversion must keep: the alive set and the three clocks. */
async function stateOf(
  path: string,
  rejoinAfterLeave: boolean,
  fs?: FileSystem,
): Promise<{ aliveNodes: unknown; clocks: bigint[] }> {
  const s = await replaySnapshot(path, { rejoinAfterLeave, ...(fs === undefined ? {} : { fs }) });
  return { aliveNodes: s.aliveNodes, clocks: [s.lastClock, s.lastEventClock, s.lastQueryClock] };
}

async function assertSameState(a: string, b: string, what: string, fs?: FileSystem): Promise<void> {
  for (const rejoin of [false, true]) {
    assert.deepEqual(await stateOf(b, rejoin, fs), await stateOf(a, rejoin, fs), `${what} rejoin=${rejoin}`);
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

for (const name of fixtures) {
  Deno.test(`convertSnapshot keeps the state of ${name} through binary and back`, () =>
    withTempDir(async (dir) => {
      const src = fixturePath(name);
      for (const rejoin of [false, true]) {
        const report = await convertSnapshot(src, `${dir}/a.snap`, {
          to: "binary",
          rejoinAfterLeave: rejoin,
        });
        const source = await replaySnapshot(src, { rejoinAfterLeave: rejoin });
        assert.equal(report.to, "binary");
        if (source.bytes > 0) assert.equal(report.from, "go-text");
        assert.equal(report.aliveCount, source.aliveNodes.length);
        assert.deepEqual(
          [report.lastClock, report.lastEventClock, report.lastQueryClock],
          [source.lastClock, source.lastEventClock, source.lastQueryClock],
        );
        assert.deepEqual(report.warnings, source.warnings);
        assert.equal(report.records, source.records);
        assert.equal(report.tornTailBytes, source.tornTailBytes);
        assert.equal(report.bytesWritten, (await Deno.stat(`${dir}/a.snap`)).size);
        assert.equal((await replaySnapshot(`${dir}/a.snap`)).format, "binary");
        // Whatever mode the report describes, the output keeps both.
        await assertSameState(src, `${dir}/a.snap`, `${name} -> binary`);

        await convertSnapshot(`${dir}/a.snap`, `${dir}/b.snapshot`, {
          to: "go-text",
          rejoinAfterLeave: rejoin,
        });
        assert.equal((await replaySnapshot(`${dir}/b.snapshot`)).format, "go-text");
        await assertSameState(src, `${dir}/b.snapshot`, `${name} -> binary -> go-text`);

        // go-text to go-text is a compaction that keeps both leave modes.
        await convertSnapshot(src, `${dir}/c.snapshot`, { to: "go-text", from: "go-text" });
        await assertSameState(src, `${dir}/c.snapshot`, `${name} -> go-text`);
        // Each output keeps the writer lock file a conversion takes, as a live log's does.
        assert.deepEqual(names(dir), [
          "a.snap",
          "a.snap.lock",
          "b.snapshot",
          "b.snapshot.lock",
          "c.snapshot",
          "c.snapshot.lock",
        ]);
      }
    }));
}

Deno.test({
  name: "convertSnapshot creates its output 0644 and keeps the mode of an output it replaces",
  ignore: Deno.build.os === "windows",
  fn: () =>
    withTempDir(async (dir) => {
      const src = `${dir}/in.snapshot`;
      await Deno.writeTextFile(src, "alive: a 10.0.0.1:7946\nclock: 3\n");
      await convertSnapshot(src, `${dir}/new.snap`, { to: "binary" });
      assert.equal((await Deno.stat(`${dir}/new.snap`)).mode! & 0o777, 0o644);
      await Deno.writeTextFile(`${dir}/old.snap`, "");
      await Deno.chmod(`${dir}/old.snap`, 0o600);
      await convertSnapshot(src, `${dir}/old.snap`, { to: "binary" });
      assert.equal((await Deno.stat(`${dir}/old.snap`)).mode! & 0o777, 0o600, "the conversion widened it");
      assert.equal((await replaySnapshot(`${dir}/old.snap`)).lastClock, 3n);
    }),
});

Deno.test("convertSnapshot keeps a trailing leave: both leave modes replay as the source", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/in.snapshot`,
      "alive: a 10.0.0.1:7946\nclock: 4\nevent-clock: 2\nleave\nclock: 5\nnot-alive: a\n",
    );
    const r = await convertSnapshot(`${dir}/in.snapshot`, `${dir}/out.snap`, { to: "binary" });
    assert.equal(r.leaveRecorded, true);
    assert.equal(r.aliveCount, 0);
    assert.equal(r.lastClock, 5n);
    assert.equal(r.lastEventClock, 0n);
    await assertSameState(`${dir}/in.snapshot`, `${dir}/out.snap`, "trailing leave");
    // Without a leave, the output is a plain compaction.
    await Deno.writeTextFile(
      `${dir}/in2.snapshot`,
      "alive: a 10.0.0.1:7946\nalive: b 10.0.0.2:7946\nclock: 4\n",
    );
    const r2 = await convertSnapshot(`${dir}/in2.snapshot`, `${dir}/out2.snapshot`, { to: "go-text" });
    assert.equal(r2.leaveRecorded, false);
    assert.equal(
      await Deno.readTextFile(`${dir}/out2.snapshot`),
      "alive: a 10.0.0.1:7946\nalive: b 10.0.0.2:7946\nclock: 4\nevent-clock: 0\nquery-clock: 0\n",
    );
  }));

/** A random node name: spaces, `\r`, non-ASCII and an empty name all replay exactly in both formats. */
function randomName(rng: Rng): string {
  switch (rng.int(8)) {
    case 0:
      return "";
    case 1:
      return `node ${rng.int(30)} with spaces`;
    case 2:
      return `nöde-${rng.int(30)}-日本\r`;
    case 3:
      return `emoji-${rng.int(30)}-😀`;
    default:
      return `node-${rng.int(60)}`;
  }
}

function randomAddr(rng: Rng): string {
  return rng.pick([
    `10.0.${rng.int(4)}.${rng.int(256)}:7946`,
    `[fe80::${rng.int(65536).toString(16)}]:${rng.int(65536)}`,
    ":7946",
    "",
    "10.0.0.1:7946\r",
  ]);
}

function randomRecord(rng: Rng): SnapshotRecord {
  const r = rng.int(100);
  if (r < 45) return { type: "alive", name: randomName(rng), addr: randomAddr(rng) };
  if (r < 65) return { type: "not-alive", name: randomName(rng) };
  if (r < 90) {
    const value = rng.int(10) === 0
      ? 0xffff_ffff_ffff_ffffn - BigInt(rng.int(3))
      : BigInt(rng.int(1_000_000));
    return { type: rng.pick(["clock", "event-clock", "query-clock"] as const), value };
  }
  if (r < 95) return { type: "leave" };
  return { type: "comment", text: `comment ${rng.int(1000)}` };
}

Deno.test("convertSnapshot round-trips a seeded random binary history through go-text", async () => {
  const seed = testSeed("convertSnapshot random history");
  const rng = new Rng(seed);
  for (let round = 0; round < 20; round++) {
    await withTempDir(async (dir) => {
      const snap = await Snapshotter.open(`${dir}/src.snap`, {
        format: "binary",
        sync: "never",
        minCompactSizeBytes: 1 << 30,
      });
      const n = rng.int(400);
      for (let i = 0; i < n; i++) snap.append(randomRecord(rng));
      await snap.close();
      const what = `seed ${seed} round ${round}`;
      const r1 = await convertSnapshot(`${dir}/src.snap`, `${dir}/mid.snapshot`, { to: "go-text" });
      assert.equal(r1.from, "binary", what);
      await assertSameState(`${dir}/src.snap`, `${dir}/mid.snapshot`, `${what}: binary -> go-text`);
      await convertSnapshot(`${dir}/mid.snapshot`, `${dir}/back.snap`, { to: "binary" });
      await assertSameState(`${dir}/src.snap`, `${dir}/back.snap`, `${what}: -> go-text -> binary`);
      // A converted file converts to the same bytes again: the output is deterministic.
      await convertSnapshot(`${dir}/back.snap`, `${dir}/again.snapshot`, { to: "go-text" });
      assert.deepEqual(
        await Deno.readFile(`${dir}/again.snapshot`),
        await Deno.readFile(`${dir}/mid.snapshot`),
      );
    });
  }
});

Deno.test("convertSnapshot refuses to overwrite its input, however the path is spelled", () =>
  withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/x`);
    const input = `${dir}/x/file`;
    await Deno.writeTextFile(input, "alive: a 10.0.0.1:7946\nclock: 1\n");
    await Deno.symlink(input, `${dir}/link`);
    await Deno.link(input, `${dir}/hard`);
    const before = await Deno.readFile(input);
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    try {
      for (
        const out of [input, `${dir}/x/../x/file`, "./x/../x/file", "x//file", `${dir}/link`, `${dir}/hard`]
      ) {
        await assert.rejects(
          convertSnapshot(input, out, { to: "binary" }),
          (err: Error) => /is the input file/.test(err.message),
          out,
        );
        // Also with the input spelled differently.
        await assert.rejects(convertSnapshot("./x/../x/file", out, { to: "go-text" }), /is the input file/);
      }
    } finally {
      Deno.chdir(cwd);
    }
    assert.deepEqual(await Deno.readFile(input), before);
    assert.deepEqual(names(`${dir}/x`), ["file"]);
    assert.deepEqual(names(dir), ["hard", "link", "x"]);
  }));

Deno.test("convertSnapshot refuses an input named like its temporary file, and a directory as output", () =>
  withTempDir(async (dir) => {
    // The output is written to <OUT>.convert first, truncating it, and removed on failure: an
    // input of that name was destroyed (and with OUT a directory, the output failed too).
    const text = "alive: a 10.0.0.1:7946\nclock: 1\n";
    await Deno.writeTextFile(`${dir}/out.convert`, text);
    await Deno.mkdir(`${dir}/dir`);
    await Deno.writeTextFile(`${dir}/in`, text);
    await assert.rejects(
      convertSnapshot(`${dir}/out.convert`, `${dir}/out`, { to: "binary" }),
      /the input is the temporary file/,
    );
    await assert.rejects(
      convertSnapshot(`${dir}/in`, `${dir}/dir`, { to: "binary" }),
      /exists and is not a regular file/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/out.convert`), text);
    assert.deepEqual(names(dir), ["dir", "in", "out.convert"]); // no output, no temp, no lock file
    assert.deepEqual(names(`${dir}/dir`), []);
  }));

Deno.test("convertSnapshot refuses what go-text cannot hold, leaving no output and no temp file", () =>
  withTempDir(async (dir) => {
    for (
      const [record, re] of [
        [{ type: "alive", name: "evil\nleave", addr: "10.0.0.1:7946" }, /name contains "\\n"/],
        [{ type: "alive", name: "a", addr: "10.0.0.1 7946" }, /address "10.0.0.1 7946" contains " "/],
        [{ type: "alive", name: "a", addr: "10.0.0.1:7946\n" }, /contains "\\n"/],
      ] as const
    ) {
      const snap = await Snapshotter.open(`${dir}/src.snap`, { format: "binary" });
      snap.append({ type: "alive", name: "good", addr: "10.0.0.9:7946" });
      snap.append(record);
      await snap.close();
      await assert.rejects(
        convertSnapshot(`${dir}/src.snap`, `${dir}/out.snapshot`, { to: "go-text" }),
        (err) => {
          assert.ok(err instanceof RangeError);
          assert.match(err.message, re);
          return true;
        },
      );
      assert.deepEqual(names(dir), ["src.snap", "src.snap.lock"]);
      // An existing output stays as it was.
      await Deno.writeTextFile(`${dir}/out.snapshot`, "old\n");
      await assert.rejects(
        convertSnapshot(`${dir}/src.snap`, `${dir}/out.snapshot`, { to: "go-text" }),
        RangeError,
      );
      assert.equal(await Deno.readTextFile(`${dir}/out.snapshot`), "old\n");
      assert.deepEqual(names(dir), ["out.snapshot", "src.snap", "src.snap.lock"]);
      await Deno.remove(`${dir}/out.snapshot`);
      await Deno.remove(`${dir}/src.snap`);
      // The same snapshot converts to binary: that format holds any bytes.
    }
  }));

Deno.test("convertSnapshot refuses a name over 65535 bytes for the binary format", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.snapshot`, `alive: ${"n".repeat(70_000)} 10.0.0.1:7946\n`);
    await assert.rejects(
      convertSnapshot(`${dir}/in.snapshot`, `${dir}/out.snap`, { to: "binary" }),
      /name is 70000 bytes, the limit is 65535/,
    );
    assert.deepEqual(names(dir), ["in.snapshot"]);
  }));

Deno.test("convertSnapshot reports a missing input as NotFound", () =>
  withTempDir(async (dir) => {
    await assert.rejects(
      convertSnapshot(`${dir}/none`, `${dir}/out`, { to: "binary" }),
      Deno.errors.NotFound,
    );
    assert.deepEqual(names(dir), []);
  }));

Deno.test("convertSnapshot writes through the FileSystem seam: temp, fsync, close, rename, syncDir", async () => {
  const mem = new MemFs();
  const f = await mem.open("dir/in.snapshot", { write: true, create: true });
  await f.write(new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 2\n"), 0);
  await f.close();
  mem.ops.length = 0;
  await convertSnapshot("dir/in.snapshot", "dir/out.snap", { to: "binary", fs: mem });
  const ops = mem.ops.filter((op) => !op.endsWith(" dir/in.snapshot")); // reads of the input
  const tmp = ops[1]!.replace(/^open /, "");
  assert.equal(tmp, "dir/out.snap.convert");
  // The output's writer lock is held from before the temp file exists until the rename is durable.
  assert.deepEqual(ops.map((op) => op.replaceAll(tmp, "TMP").replace(/^write TMP \d+ \d+$/, "write TMP")), [
    "open dir/out.snap.lock",
    "open TMP",
    "write TMP",
    "write TMP",
    "datasync TMP",
    "close TMP",
    "rename TMP dir/out.snap",
    "syncDir dir",
    "close dir/out.snap.lock",
  ]);
  assert.deepEqual(mem.files(), ["dir/in.snapshot", "dir/out.snap", "dir/out.snap.lock"]);
  await assertSameState("dir/in.snapshot", "dir/out.snap", "MemFs", mem);
});

Deno.test("convertSnapshot after a crashed convert: the leftover temp file is overwritten, and open removes one", async () => {
  const input = new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 2\n");
  const fresh = async (): Promise<MemFs> => {
    const mem = new MemFs();
    const f = await mem.open("in.snapshot", { write: true, create: true });
    await f.write(input, 0);
    await f.close();
    return mem;
  };
  // Record a convert's steps, then crash a second one just before its rename.
  const recorder = new FaultFs(await fresh());
  await convertSnapshot("in.snapshot", "out.snap", { to: "binary", fs: recorder });
  const renameAt = recorder.ops.findIndex((op) => op.startsWith("rename "));
  assert.ok(renameAt > 0, recorder.ops.join("\n"));
  for (const next of ["convert", "open"] as const) {
    const mem = await fresh();
    const fs = new FaultFs(mem);
    fs.crashAt(renameAt);
    await assert.rejects(convertSnapshot("in.snapshot", "out.snap", { to: "binary", fs }));
    // The process died; the machine did not (a power loss would take the unsynced entry too).
    assert.deepEqual(
      mem.files(),
      ["in.snapshot", "out.snap.convert", "out.snap.lock"],
      "the crash's leftover",
    );
    if (next === "convert") {
      // The next convert overwrites it and renames it in: nothing is left beside the output.
      await convertSnapshot("in.snapshot", "out.snap", { to: "binary", fs: mem });
      await assertSameState("in.snapshot", "out.snap", "after a crashed convert", mem);
    } else {
      // A log opened on the output removes it, as it removes a crashed compaction's.
      const snap = await Snapshotter.open("out.snap", { fs: mem });
      await snap.close();
    }
    assert.deepEqual(mem.files(), ["in.snapshot", "out.snap", "out.snap.lock"], next);
  }
});

Deno.test("convertSnapshot removes its temp file when a write, fsync or rename fails", async () => {
  for (const op of ["write", "datasync", "rename"] as const) {
    const mem = new MemFs();
    const f = await mem.open("in.snapshot", { write: true, create: true });
    await f.write(new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 2\n"), 0);
    await f.close();
    const g = await mem.open("out.snap", { write: true, create: true });
    await g.write(new Uint8Array([1, 2, 3]), 0);
    await g.close();
    const fs = new FaultFs(mem);
    fs.failNext(op);
    await assert.rejects(convertSnapshot("in.snapshot", "out.snap", { to: "binary", fs }), /injected/);
    assert.deepEqual(mem.files(), ["in.snapshot", "out.snap", "out.snap.lock"], op);
    assert.deepEqual(mem.read("out.snap"), new Uint8Array([1, 2, 3]), op);
    // A retry succeeds.
    await convertSnapshot("in.snapshot", "out.snap", { to: "binary", fs });
    await assertSameState("in.snapshot", "out.snap", `retry after ${op}`, mem);
  }
  // After the rename, the output is replaced: a failed directory fsync says so (it said nothing
  // of it, under the promise that a failure leaves the output as it was).
  const mem = new MemFs();
  mem.write("in.snapshot", new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 2\n"));
  const fs = new FaultFs(mem);
  fs.failNextSyncDir();
  await assert.rejects(
    convertSnapshot("in.snapshot", "out.snap", { to: "binary", fs }),
    /"out.snap" was replaced, but fsyncing its directory failed .*injected/,
  );
  await assertSameState("in.snapshot", "out.snap", "after a failed directory fsync", mem);
});

/** Calls are increasing, at most 8 MiB apart, and end exactly at bytesTotal (the input's size). */
function assertProgress(calls: ConvertProgress[], size: number): void {
  assert.ok(calls.length >= 2, `only ${calls.length} progress calls`);
  let last = 0;
  for (const c of calls) {
    assert.equal(c.bytesTotal, size);
    assert.ok(c.bytesRead > last || (c.bytesRead === size && last === size), `${c.bytesRead} after ${last}`);
    assert.ok(c.bytesRead - last <= 8 << 20, `gap ${c.bytesRead - last}`);
    last = c.bytesRead;
  }
  assert.equal(calls.at(-1)!.bytesRead, size);
}

Deno.test("convertSnapshot reports progress, increasing, at least every 8 MiB, ending at bytesTotal", () =>
  withTempDir(async (dir) => {
    // About 20 MiB of go-text with 2,000 long-named nodes: a 20 MiB binary file to read back.
    const parts: string[] = [];
    for (let i = 0; i < 2000; i++) {
      parts.push(`alive: ${String(i).padEnd(10_000, "n")} 10.0.0.1:7946\nclock: ${i}\n`);
    }
    await Deno.writeTextFile(`${dir}/big.snapshot`, parts.join(""));
    const textSize = (await Deno.stat(`${dir}/big.snapshot`)).size;
    const textCalls: ConvertProgress[] = [];
    await convertSnapshot(`${dir}/big.snapshot`, `${dir}/big.snap`, {
      to: "binary",
      onProgress: (p) => textCalls.push({ ...p }),
    });
    assertProgress(textCalls, textSize);

    const binSize = (await Deno.stat(`${dir}/big.snap`)).size;
    assert.ok(binSize > 16 << 20);
    const binCalls: ConvertProgress[] = [];
    await convertSnapshot(`${dir}/big.snap`, `${dir}/again.snapshot`, {
      to: "go-text",
      onProgress: (p) => binCalls.push({ ...p }),
    });
    assertProgress(binCalls, binSize);
    await assertSameState(`${dir}/big.snapshot`, `${dir}/again.snapshot`, "big");

    // An empty input: one call, 0 of 0.
    await Deno.writeFile(`${dir}/empty`, new Uint8Array(0));
    const emptyCalls: ConvertProgress[] = [];
    await convertSnapshot(`${dir}/empty`, `${dir}/empty.snap`, {
      to: "binary",
      onProgress: (p) => emptyCalls.push(p),
    });
    assert.deepEqual(emptyCalls, [{ bytesRead: 0, bytesTotal: 0 }]);
  }));

Deno.test("convertSnapshot checks its arguments", async () => {
  await assert.rejects(convertSnapshot("", "out", { to: "binary" }), TypeError);
  await assert.rejects(convertSnapshot("in", "", { to: "binary" }), TypeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(convertSnapshot("in", "out", { to: "xml" as any }), TypeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(convertSnapshot("in", "out", { to: "binary", from: "csv" as any }), TypeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(convertSnapshot("in", "out", { to: "binary", rejoinAfterLeave: 1 as any }), TypeError);
  // null is not "the default" (as in Snapshotter.open): a caller's null is a bug to report.
  for (const bad of [{ from: null }, { rejoinAfterLeave: null }, { onProgress: null }, { fs: null }]) {
    await assert.rejects(
      convertSnapshot("in", "out", { to: "binary", ...bad } as never),
      TypeError,
      Deno.inspect(bad),
    );
  }
});

Deno.test("convertSnapshot refuses to replace an output a live Snapshotter is writing", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.snapshot`, "alive: a 10.0.0.1:7946\n");
    const live = await Snapshotter.open(`${dir}/out.snap`, { format: "binary" });
    live.append({ type: "alive", name: "live", addr: "10.0.0.2:7946" });
    await live.sync();
    await Deno.symlink(`${dir}/out.snap`, `${dir}/alias.snap`);
    for (const out of [`${dir}/out.snap`, `${dir}/alias.snap`]) {
      await assert.rejects(convertSnapshot(`${dir}/in.snapshot`, out, { to: "binary" }), LockedError);
    }
    // The live log's records are where it wrote them, and it goes on writing there.
    live.append({ type: "alive", name: "later", addr: "10.0.0.3:7946" });
    await live.close();
    const state = await replaySnapshot(`${dir}/out.snap`);
    assert.deepEqual(state.aliveNodes.map((n) => n.name), ["later", "live"]);
    assert.deepEqual(names(dir), ["alias.snap", "in.snapshot", "out.snap", "out.snap.lock"]);
    // Once the log is closed, the conversion replaces the file (through the link too).
    await convertSnapshot(`${dir}/in.snapshot`, `${dir}/alias.snap`, { to: "binary" });
    assert.ok((await Deno.lstat(`${dir}/alias.snap`)).isSymlink);
    assert.deepEqual((await replaySnapshot(`${dir}/out.snap`)).aliveNodes.map((n) => n.name), ["a"]);
  }));

Deno.test("convertSnapshot's recovery: salvage converts the records around damage, the others refuse it", async () => {
  const mem = new MemFs();
  const s = await Snapshotter.open("in.snap", { fs: mem, format: "binary" });
  for (let i = 0; i < 5; i++) s.append({ type: "alive", name: `n${i}`, addr: `10.0.0.${i}:7946` });
  s.append({ type: "clock", value: 9n });
  await s.close();
  const bytes = mem.read("in.snap");
  const starts: number[] = [];
  for (let at = 24; at < bytes.length;) { // frame starts: 12-byte header, 8-byte aligned
    starts.push(at);
    at += (12 + new DataView(bytes.buffer, bytes.byteOffset + at + 4, 4).getUint32(0, true) + 7) & ~7;
  }
  const bad = bytes.slice();
  bad[starts[2]! + 14]! ^= 0x01; // n2's name: its checksum fails
  mem.write("bad.snap", bad);
  for (const recovery of [undefined, "truncate-tail", "strict"] as const) {
    await assert.rejects(
      convertSnapshot("bad.snap", "out.txt", { to: "go-text", fs: mem, ...(recovery ? { recovery } : {}) }),
      CorruptionError,
      String(recovery),
    );
    assert.equal(await mem.stat("out.txt"), null);
  }
  const r = await convertSnapshot("bad.snap", "out.txt", { to: "go-text", fs: mem, recovery: "salvage" });
  assert.equal(r.warnings.length, 1);
  assert.equal(r.warnings[0]!.line, starts[2]);
  const out = await replaySnapshot("out.txt", { fs: mem });
  assert.deepEqual(out.aliveNodes.map((n) => n.name), ["n0", "n1", "n3", "n4"]);
  assert.equal(out.lastClock, 9n);
  assert.deepEqual(mem.read("bad.snap"), bad, "the input was modified");
  // strict refuses a torn tail that truncate-tail leaves out.
  mem.write("torn.snap", bytes.slice(0, bytes.length - 3));
  await assert.rejects(
    convertSnapshot("torn.snap", "t.txt", { to: "go-text", fs: mem, recovery: "strict" }),
    CorruptionError,
  );
  const t = await convertSnapshot("torn.snap", "t.txt", { to: "go-text", fs: mem });
  assert.ok(t.tornTailBytes > 0);
  await assert.rejects(
    // @ts-expect-error: a wrong value on purpose
    convertSnapshot("bad.snap", "out.txt", { to: "go-text", fs: mem, recovery: "fix" }),
    TypeError,
  );
});

Deno.test("convertSnapshot backs up a live log without its lock: what was synced, and the log goes on", () =>
  withTempDir(async (dir) => {
    const live = `${dir}/live.snap`;
    const s = await Snapshotter.open(live);
    for (let i = 0; i < 500; i++) {
      s.append({ type: "alive", name: `n${i}`, addr: `10.0.${i >> 8}.${i & 255}:7946` });
    }
    await s.sync();
    s.append({ type: "alive", name: "buffered", addr: "10.9.9.9:7946" }); // not in the file yet
    const r = await convertSnapshot(live, `${dir}/backup.snap`, { to: "binary" });
    assert.equal(r.aliveCount, 500);
    assert.equal((await replaySnapshot(`${dir}/backup.snap`)).aliveNodes.length, 500);
    // Reading the file changed nothing the live log checks: it syncs and compacts on.
    s.append({ type: "not-alive", name: "n0" });
    await s.sync();
    await s.compact();
    await s.close();
    assert.equal((await replaySnapshot(live)).aliveNodes.length, 500); // +buffered, -n0
  }));

Deno.test("reading a binary file as go-text is refused, not an empty state: replay, records, convert", async () => {
  // Serf's rules read a binary file as no records at all: replaySnapshot returned an empty
  // state with no warning, and convertSnapshot replaced its output with an empty snapshot.
  const mem = new MemFs();
  const s = await Snapshotter.open("in.snap", { fs: mem, format: "binary" });
  s.append({ type: "alive", name: "a", addr: "10.0.0.1:7946" });
  await s.close();
  mem.write("out.snap", new TextEncoder().encode("alive: keep 10.0.0.2:7946\n"));
  const before = mem.read("out.snap");
  const asText = /Cannot read "in.snap" as go-text: the file is in snaplog's binary format/;
  await assert.rejects(replaySnapshot("in.snap", { fs: mem, format: "go-text" }), TypeError);
  await assert.rejects(replaySnapshot("in.snap", { fs: mem, format: "go-text" }), asText);
  await assert.rejects(
    (async () => {
      for await (const _ of readSnapshotRecords("in.snap", { fs: mem, format: "go-text" })) { /* none */ }
    })(),
    asText,
  );
  await assert.rejects(
    convertSnapshot("in.snap", "out.snap", { fs: mem, from: "go-text", to: "go-text" }),
    asText,
  );
  assert.deepEqual(mem.read("out.snap"), before);
  // "auto" and "binary" read it.
  assert.equal((await replaySnapshot("in.snap", { fs: mem, format: "binary" })).aliveNodes.length, 1);
});

Deno.test("reading serf's text file as binary is refused, not rewritten empty by salvage: open, replay, records, convert", async () => {
  // Binary asked of a serf text file went on as binary with a damaged header: a CorruptionError
  // in the default modes, and with salvage an open rewrote the file as an empty binary
  // snapshot (both nodes only in the .broken copy).
  const mem = new MemFs();
  // A blank first line (an edited file) is text all the same.
  const text = new TextEncoder().encode("\nalive: a 10.0.0.1:7946\nalive: b 10.0.0.2:7946\nclock: 4\n");
  mem.write("in.txt", text);
  const asBinary = /Cannot read "in\.txt" as binary: the file is in serf's go-text format/;
  for (const recovery of ["strict", "truncate-tail", "salvage"] as const) {
    await assert.rejects(Snapshotter.open("in.txt", { fs: mem, format: "binary", recovery }), asBinary);
    await assert.rejects(replaySnapshot("in.txt", { fs: mem, format: "binary", recovery }), asBinary);
    await assert.rejects(
      (async () => {
        for await (
          const _ of readSnapshotRecords("in.txt", { fs: mem, format: "binary", recovery })
        ) { /* none */ }
      })(),
      asBinary,
    );
    await assert.rejects(
      convertSnapshot("in.txt", "out.snap", { fs: mem, from: "binary", to: "binary", recovery }),
      asBinary,
    );
  }
  assert.deepEqual(mem.read("in.txt"), text, "untouched");
  assert.equal(await mem.stat("in.txt.broken"), null);
  assert.equal(await mem.stat("out.snap"), null);
  assert.equal(
    (await replaySnapshot("in.txt", { fs: mem })).aliveNodes.length,
    2,
    "auto reads it as serf does",
  );
});

Deno.test("replay, records and convert of a live log read the file they opened, whatever a compaction renames meanwhile", async () => {
  // Each took the size from a stat of the path and then opened the path: a compaction renaming
  // its smaller file in between failed them with "file shrank during replay".
  const mem = new MemFs();
  const P = "d/s.snap";
  const w = await Snapshotter.open(P, { fs: mem, minCompactSizeBytes: 2 ** 40 });
  let armed = false;
  const reader: FileSystem = {
    async stat(p): Promise<FileInfo | null> {
      const info = await mem.stat(p);
      if (armed && p === P) {
        armed = false;
        await w.compact(); // right after the reader's stat
      }
      return info;
    },
    open: (p, o) => mem.open(p, o),
    rename: (a, b) => mem.rename(a, b),
    link: (a, b) => mem.link(a, b),
    remove: (p) => mem.remove(p),
    syncDir: (p) => mem.syncDir(p),
  };
  const readers: [string, () => Promise<unknown>][] = [
    ["replaySnapshot", () => replaySnapshot(P, { fs: reader })],
    ["readSnapshotRecords", async () => {
      for await (const _ of readSnapshotRecords(P, { fs: reader })) { /* all of them */ }
    }],
    ["convertSnapshot", () => convertSnapshot(P, "d/backup.snap", { fs: reader, to: "go-text" })],
  ];
  for (const [name, read] of readers) {
    for (let i = 0; i < 200; i++) {
      w.append({ type: "alive", name: `node-${i % 5}`, addr: `10.0.0.${i}:7946` });
    }
    await w.sync();
    armed = true;
    await read().catch((e) => assert.fail(`${name}: ${e}`));
    assert.equal(armed, false, `${name}: the compaction ran mid-read`);
  }
  await w.close();
  assert.deepEqual(
    (await replaySnapshot("d/backup.snap", { fs: mem })).aliveNodes,
    (await replaySnapshot(P, { fs: mem })).aliveNodes,
  );
});

Deno.test("convertSnapshot names a bad `to` value in its TypeError", async () => {
  await assert.rejects(
    convertSnapshot("a", "b", { to: "text" as "binary" }),
    (e: Error) => e instanceof TypeError && e.message.endsWith('got "text"'),
  );
  await assert.rejects(convertSnapshot("a", "b", {} as { to: "binary" }), TypeError);
});
