// readSnapshotRecords: every record in file order, in both formats. The records, applied by
// serf's rules to a plain Map, must give the state replaySnapshot gives, and its notes must be
// replay's warnings: on every Go serf fixture, on random line soups, and on binary files with
// torn tails and damage in every recovery mode.
import assert from "node:assert/strict";
import { serfModel } from "./_model.ts";
import {
  CorruptionError,
  ManualClock,
  readSnapshotRecords,
  replaySnapshot,
  type SnapshotEntry,
  type SnapshotRecord,
  Snapshotter,
} from "../mod.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import { parseGoTextLine, readRecordsPolicy, readRecordsStats } from "../src/serf/read_records.ts";
import { fixtureNames, fixturePath } from "./_fixtures.ts";
import { randomSoup } from "./_soup.ts";
import { fuzzIterations, Rng, testSeed } from "./_rng.ts";

async function readAll(
  path: string,
  options: Parameters<typeof readSnapshotRecords>[1] = {},
): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  for await (const e of readSnapshotRecords(path, options)) out.push(e);
  return out;
}

/** Asserts that `entries` replay to what replaySnapshot recovers from `path`, notes and warnings alike. */
async function assertSameAsReplay(
  path: string,
  entries: SnapshotEntry[],
  fs?: MemFs,
  recovery: "truncate-tail" | "salvage" = "truncate-tail",
): Promise<void> {
  const records = entries.flatMap((e) => e.record === null ? [] : [e.record]);
  for (const rejoinAfterLeave of [false, true]) {
    const state = await replaySnapshot(path, {
      rejoinAfterLeave,
      parallel: false,
      recovery,
      ...(fs ? { fs } : {}),
    });
    const m = serfModel(records, rejoinAfterLeave);
    // Replay lists nodes sorted by name bytes; compare as sets of pairs.
    const key = (a: [string, string][]) => a.map((p) => JSON.stringify(p)).sort();
    assert.deepEqual(
      key([...m.alive]),
      key(state.aliveNodes.map((n) => [n.name, n.addr])),
      `${path} rejoin=${rejoinAfterLeave}`,
    );
    assert.deepEqual(m.clocks, [state.lastClock, state.lastEventClock, state.lastQueryClock]);
    if (state.format === "go-text") {
      // Replay's warnings are the notes of skipped lines (and, with rejoinAfterLeave, serf's
      // "Ignoring previous leave" for each leave record); a torn last line is the last note.
      const notes = entries.filter((e) => e.note !== null && !e.note.startsWith("last line has no newline"));
      const warnings = state.warnings.filter((w) => w.reason !== "Ignoring previous leave in snapshot");
      assert.deepEqual(notes.map((e) => ({ line: e.line, reason: e.note })), warnings);
      const torn = entries.at(-1)?.note?.startsWith("last line has no newline") ? entries.at(-1)! : null;
      assert.equal(torn === null ? 0 : state.bytes - torn.offset, state.tornTailBytes);
      assert.equal(
        entries.filter((e) => e.line !== null && !e.note?.startsWith("last line")).length,
        state.records,
      );
    } else {
      assert.equal(records.length, state.records);
      // Replay's warnings are salvage's skipped regions, at the notes' offsets.
      const skipped = entries.filter((e) => e.note?.startsWith("skipped "));
      assert.deepEqual(skipped.map((e) => ({ line: e.offset, reason: e.note })), state.warnings);
    }
  }
}

Deno.test("readSnapshotRecords reads every Go serf fixture as serf's replay does", async () => {
  const names = fixtureNames();
  assert.ok(names.length > 0);
  for (const name of names) {
    const path = fixturePath(name);
    const entries = await readAll(path);
    await assertSameAsReplay(path, entries);
    // Offsets and line numbers walk the file: each line starts after the previous one's '\n'.
    const bytes = await Deno.readFile(path);
    entries.forEach((e, i) => {
      assert.equal(e.line, i + 1);
      assert.equal(e.offset === 0 || bytes[e.offset - 1] === 0x0a, true, `${name} entry ${i}`);
    });
  }
});

Deno.test("readSnapshotRecords agrees with the Wasm replay on random line soups", async () => {
  const seed = testSeed("readSnapshotRecords soup fuzz");
  const rng = new Rng(seed);
  const fs = new MemFs();
  for (let i = 0; i < fuzzIterations(300); i++) {
    const soup = randomSoup(() => rng.next());
    fs.write("soup", soup);
    const entries = await readAll("soup", { fs });
    await assertSameAsReplay("soup", entries, fs);
  }
});

Deno.test("parseGoTextLine follows serf's rules line by line", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(parseGoTextLine(enc("alive: a b 10.0.0.1:7946")), {
    type: "alive",
    name: "a b",
    addr: "10.0.0.1:7946",
  });
  assert.deepEqual(parseGoTextLine(enc("alive: x\r")), "Failed to parse address: alive: x\r");
  assert.deepEqual(parseGoTextLine(enc("alive: a 1:2\r")), { type: "alive", name: "a", addr: "1:2\r" });
  assert.deepEqual(parseGoTextLine(enc("not-alive: a")), { type: "not-alive", name: "a" });
  assert.deepEqual(parseGoTextLine(enc("clock: 18446744073709551615")), {
    type: "clock",
    value: 2n ** 64n - 1n,
  });
  assert.equal(
    parseGoTextLine(enc("event-clock: 18446744073709551616")),
    'Failed to convert event clock time: strconv.ParseUint: parsing "18446744073709551616": value out of range',
  );
  // An overflow before a non-digit is a range error, a non-digit before it a syntax error (Go's order).
  assert.match(parseGoTextLine(enc("query-clock: 99999999999999999999x")) as string, /value out of range$/);
  assert.match(parseGoTextLine(enc("query-clock: 9x9999999999999999999")) as string, /invalid syntax$/);
  assert.match(parseGoTextLine(enc("clock: ")) as string, /parsing "": invalid syntax$/);
  assert.match(parseGoTextLine(enc("clock: +1")) as string, /invalid syntax$/);
  assert.deepEqual(parseGoTextLine(enc("coordinate: {}")), { type: "coordinate", text: "{}" });
  assert.deepEqual(parseGoTextLine(enc("leave")), { type: "leave" });
  assert.equal(parseGoTextLine(enc("leave ")), "Unrecognized snapshot line: leave ");
  assert.deepEqual(parseGoTextLine(enc("# hi")), { type: "comment", text: "hi" });
  assert.deepEqual(parseGoTextLine(enc("#hi")), { type: "comment", text: "hi" });
  assert.equal(parseGoTextLine(enc("")), "Unrecognized snapshot line: ");
  // Bytes that are not UTF-8 show as serf shows them: one U+FFFD per byte that begins no rune.
  assert.deepEqual(parseGoTextLine(new Uint8Array([...enc("not-alive: "), 0xe2, 0x82, 0x41])), {
    type: "not-alive",
    name: "\ufffd\ufffdA",
  });
});

Deno.test("readSnapshotRecords reads a Go text file's torn last line as a note, and lines longer than its buffer", async () => {
  const fs = new MemFs();
  const long = "n".repeat(3 << 20);
  fs.write("t", new TextEncoder().encode(`alive: ${long} 10.0.0.1:7946\nclock: 5\nalive: cut`));
  const entries = await readAll("t", { fs });
  assert.equal(entries.length, 3);
  assert.deepEqual(entries[0]!.record, { type: "alive", name: long, addr: "10.0.0.1:7946" });
  assert.deepEqual(entries[1], {
    offset: long.length + 22,
    line: 2,
    record: { type: "clock", value: 5n },
    note: null,
  });
  assert.deepEqual(entries[2], {
    offset: long.length + 31,
    line: 3,
    record: null,
    note: "last line has no newline: 10 bytes; serf ignores them",
  });
});

/** A binary snapshot in `fs` at "s.snap" holding `records`, appended in order. */
async function binaryFile(fs: MemFs, records: SnapshotRecord[]): Promise<void> {
  const s = await Snapshotter.open("s.snap", { fs, clock: new ManualClock(), minCompactSizeBytes: 2 ** 40 });
  for (const r of records) s.append(r);
  await s.close();
}

function randomRecords(rng: Rng, n: number): SnapshotRecord[] {
  const out: SnapshotRecord[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.int(10);
    const name = `node-${rng.int(50)}${"é☃".slice(0, rng.int(3))}`;
    if (k < 4) {
      out.push({ type: "alive", name, addr: `10.0.${rng.int(256)}.${rng.int(256)}:${rng.int(65536)}` });
    } else if (k < 6) out.push({ type: "not-alive", name });
    else if (k < 9) {
      out.push({
        type: (["clock", "event-clock", "query-clock"] as const)[rng.int(3)]!,
        value: BigInt(rng.int(1e9)) * 2n ** 30n,
      });
    } else {out.push(
        rng.int(4) === 0 ? { type: "leave" } : { type: "comment", text: "x".repeat(rng.int(300)) },
      );}
  }
  return out;
}

Deno.test("readSnapshotRecords yields a binary file's records as they were appended", async () => {
  const seed = testSeed("readSnapshotRecords binary");
  const rng = new Rng(seed);
  for (const n of [0, 1, 5000]) {
    const fs = new MemFs();
    const records = randomRecords(rng, n);
    await binaryFile(fs, records);
    const entries = await readAll("s.snap", { fs });
    assert.deepEqual(entries.map((e) => e.record), records);
    assert.ok(entries.every((e) => e.line === null && e.note === null && e.offset % 8 === 0));
    if (n > 0) assert.equal(entries[0]!.offset, 24);
    await assertSameAsReplay("s.snap", entries, fs);
  }
});

Deno.test("readSnapshotRecords on a damaged binary file: notes in salvage and for a torn tail, errors otherwise", async () => {
  const fs = new MemFs();
  const records: SnapshotRecord[] = Array.from(
    { length: 6 },
    (_, i) => ({ type: "alive", name: `n${i}`, addr: `10.0.0.${i}:7946` }),
  );
  await binaryFile(fs, records);
  const good = fs.read("s.snap");
  const offsets = (await readAll("s.snap", { fs })).map((e) => e.offset);
  // A flipped byte in the third record's payload: corruption in the middle.
  const middle = good.slice();
  middle[offsets[2]! + 14]! ^= 0xff;
  fs.write("s.snap", middle);
  const salvaged = await readAll("s.snap", { fs, recovery: "salvage" });
  assert.deepEqual(salvaged.map((e) => e.record), [
    records[0],
    records[1],
    null,
    records[3],
    records[4],
    records[5],
  ]);
  assert.deepEqual(salvaged[2], {
    offset: offsets[2],
    line: null,
    record: null,
    note: "skipped 32 bytes: checksum mismatch",
  });
  await assertSameAsReplay("s.snap", salvaged, fs, "salvage");
  for (const recovery of ["truncate-tail", "strict"] as const) {
    await assert.rejects(readAll("s.snap", { fs, recovery }), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.equal(e.offset, offsets[2]);
      return true;
    });
  }
  // The last record cut short: a torn tail, a note in truncate-tail and salvage, an error in strict.
  fs.write("s.snap", good.subarray(0, good.length - 5));
  for (const recovery of ["truncate-tail", "salvage"] as const) {
    const torn = await readAll("s.snap", { fs, recovery });
    assert.deepEqual(torn.map((e) => e.record), [...records.slice(0, 5), null]);
    assert.deepEqual(torn[5], {
      offset: offsets[5],
      line: null,
      record: null,
      note: `torn tail: ${good.length - 5 - offsets[5]!} bytes (incomplete last frame); replay ignores them`,
    });
  }
  await assert.rejects(readAll("s.snap", { fs, recovery: "strict" }), CorruptionError);
  // Shorter than a header.
  fs.write("s.snap", good.subarray(0, 10));
  assert.deepEqual(await readAll("s.snap", { fs, format: "binary" }), [
    { offset: 0, line: null, record: null, note: "torn file header: 10 bytes (no record)" },
  ]);
});

Deno.test("readSnapshotRecords checks its arguments at the call and reports a missing file", async () => {
  assert.throws(() => readSnapshotRecords(""), TypeError);
  assert.throws(() => readSnapshotRecords("x", { format: "text" as "binary" }), TypeError);
  assert.throws(() => readSnapshotRecords("x", { recovery: "fix" as "strict" }), TypeError);
  assert.throws(() => readSnapshotRecords("x", { fs: {} as MemFs }), TypeError);
  await assert.rejects(readAll("missing", { fs: new MemFs() }), Deno.errors.NotFound);
});

Deno.test("readSnapshotRecords walks a file with many damaged regions in segments, with the same entries", async () => {
  // It held one entry per damaged region of the file (a file damaged every other frame: one
  // per frame); now each replay stops once it lists a segment's worth and the next goes on.
  const fs = new MemFs();
  const rng = new Rng(testSeed("readSnapshotRecords segments"));
  const records: SnapshotRecord[] = Array.from(
    { length: 300 },
    (_, i) => ({ type: "alive", name: `n${i}`, addr: `10.0.0.${i % 250}:7946` }),
  );
  await binaryFile(fs, records);
  const good = fs.read("s.snap");
  const offsets = (await readAll("s.snap", { fs })).map((e) => e.offset);
  const bad = good.slice();
  bad[3] = 0; // the header too
  for (let i = 0; i < 300; i++) if (rng.int(3) === 0) bad[offsets[i]! + 13]! ^= 1 + rng.int(255);
  fs.write("s.snap", bad);
  const saved = readRecordsPolicy.segmentRegions;
  try {
    const runs: SnapshotEntry[][] = [];
    for (const segment of [4096, 1, 2, 7]) {
      readRecordsPolicy.segmentRegions = segment;
      const before = readRecordsStats.segments;
      runs.push(await readAll("s.snap", { fs, recovery: "salvage" }));
      const regions = runs.at(-1)!.filter((e) => e.record === null).length;
      const walked = readRecordsStats.segments - before;
      const full = Math.ceil(regions / segment); // (and one more when the last ends a full list)
      assert.ok(walked === full || walked === full + 1, `${walked} segments of ${segment} for ${regions}`);
    }
    for (const run of runs.slice(1)) assert.deepEqual(run, runs[0]);
    assert.ok(runs[0]!.filter((e) => e.record === null).length > 50);
    await assertSameAsReplay("s.snap", runs[0]!, fs, "salvage");
  } finally {
    readRecordsPolicy.segmentRegions = saved;
  }
});
