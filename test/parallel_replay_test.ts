// Parallel replay (src/serf/_parallel.ts): in the "always" split mode, every replay splits
// at 55 % of the file, and must give exactly what a sequential replay gives: the state, the
// counts, the warnings with their line numbers, torn tails and damage handling.
import assert from "node:assert/strict";
import { CorruptionError, replaySnapshot, type SnapshotRecord, Snapshotter } from "../mod.ts";
import type { ReplayOptions } from "../src/serf/replay.ts";
import {
  mayReplayInParallel,
  parallelStats,
  replayDelta,
  replayRate,
  resetReplayRates,
  setParallelReplayMode,
  setWorkerCost,
  splitPoint,
} from "../src/serf/_parallel.ts";
import { WasmCore } from "../src/_wasm/core.ts";
import { FrameEncoder } from "../src/core/frame.ts";
import { encodeBinaryRecord, SERF_LIMITS } from "../src/serf/binary.ts";
import { fixtureNames, fixturePath } from "./_fixtures.ts";
import { fuzzIterations, Rng, testSeed } from "./_rng.ts";
import { asVersion1, fileSalt, withTempDir } from "./_tmp.ts";
import { SerfState, type StateDelta } from "../src/serf/_state.ts";
import { WARNINGS_CHARS_MAX } from "../src/serf/gotext.ts";

/** A delta's slots as a sorted list of [name, addr, dead] (their order is the table's). */
function deltaSet(d: StateDelta): { bytes: Uint8Array; entries: Uint8Array; slots: string[] } {
  const view = new DataView(d.entries.buffer, d.entries.byteOffset, d.entries.byteLength);
  const slots: string[] = [];
  for (let k = 0, at = 0; k < d.count; k++) {
    const nl = view.getUint32(k * 12, true), al = view.getUint32(k * 12 + 4, true);
    const dead = view.getUint32(k * 12 + 8, true);
    slots.push(
      JSON.stringify([
        [...d.bytes.subarray(at, at + nl)],
        [...d.bytes.subarray(at + nl, at + nl + al)],
        dead,
      ]),
    );
    at += nl + al;
  }
  return { bytes: new Uint8Array(), entries: new Uint8Array(), slots: slots.sort() };
}

/** Runs `f` with every replay split in two ("always" mode: at 55 % of the file). */
async function splitting<T>(f: () => Promise<T>): Promise<T> {
  const old = setParallelReplayMode("always");
  try {
    return await f();
  } finally {
    setParallelReplayMode(old);
  }
}

/** Replays `path` both ways and checks that they agree; returns how the parallel one ended. */
async function assertSameBothWays(
  path: string,
  options: ReplayOptions = {},
  what = path,
): Promise<"merged" | "redone" | "whole"> {
  const sequential = await replaySnapshot(path, { ...options, parallel: false });
  const merged0 = parallelStats.merged, redone0 = parallelStats.redone;
  const parallel = await splitting(() => replaySnapshot(path, options));
  assert.deepEqual(parallel, sequential, what);
  // "whole": the file had no record boundary after the split point (tiny or torn files).
  return parallelStats.merged > merged0 ? "merged" : parallelStats.redone > redone0 ? "redone" : "whole";
}

async function writeBinary(path: string, records: readonly SnapshotRecord[]): Promise<void> {
  const snap = await Snapshotter.open(path, {
    format: "binary",
    sync: "never",
    minCompactSizeBytes: 2 ** 52,
  });
  for (const r of records) snap.append(r);
  await snap.close();
  await Deno.remove(`${path}.lock`).catch(() => {});
}

/** A churning cluster with a leave, clocks set before and after it, and re-joins. */
function churn(
  rng: Rng,
  n: number,
  opts: { leaveAt?: number | undefined; nodes?: number } = {},
): SnapshotRecord[] {
  const nodes = opts.nodes ?? 300;
  const out: SnapshotRecord[] = [];
  for (let i = 0; i < n; i++) {
    if (i === opts.leaveAt) out.push({ type: "leave" });
    const k = rng.int(10);
    const name = `node-${rng.int(nodes)}`;
    if (k < 5) {
      out.push({ type: "alive", name, addr: `10.0.${rng.int(256)}.${rng.int(256)}:${7946 + rng.int(3)}` });
    } else if (k < 8) out.push({ type: "not-alive", name });
    else if (k === 8) out.push({ type: "clock", value: BigInt(i) });
    else out.push({ type: rng.int(2) === 0 ? "event-clock" : "query-clock", value: BigInt(rng.int(1000)) });
  }
  return out;
}

function goText(records: readonly SnapshotRecord[]): string {
  return records.map((r) => {
    switch (r.type) {
      case "alive":
        return `alive: ${r.name} ${r.addr}\n`;
      case "not-alive":
        return `not-alive: ${r.name}\n`;
      case "leave":
        return "leave\n";
      case "clock":
      case "event-clock":
      case "query-clock":
        return `${r.type}: ${r.value}\n`;
      default:
        return "";
    }
  }).join("");
}

Deno.test("parallel replay equals sequential replay on churning binary and Go text files, both leave modes", async () => {
  const seed = testSeed("parallel replay churn");
  const rng = new Rng(seed);
  await withTempDir(async (dir) => {
    for (let round = 0; round < 6; round++) {
      // A leave in the second half (round 0, 3), in the first half (1, 4), or none.
      const n = 3000 + rng.int(3000);
      const leaveAt = round % 3 === 0
        ? Math.floor(n * 0.8)
        : round % 3 === 1
        ? Math.floor(n * 0.2)
        : undefined;
      const records = churn(rng, n, { leaveAt });
      const bin = `${dir}/r${round}.snap`, txt = `${dir}/r${round}.txt`;
      await writeBinary(bin, records);
      // Go text with a malformed line and a comment in each half, and a torn last line.
      const lines = goText(records).split("\n");
      lines.splice(Math.floor(lines.length * 0.3), 0, "alive: nospace", "# a comment");
      lines.splice(Math.floor(lines.length * 0.8), 0, "clock: 12x", "bogus line");
      await Deno.writeTextFile(txt, lines.join("\n") + "alive: torn 10.0.0.1:7946");
      for (const rejoinAfterLeave of [false, true]) {
        const what = `seed ${seed} round ${round} rejoin ${rejoinAfterLeave}`;
        assert.equal(await assertSameBothWays(bin, { rejoinAfterLeave }, `${what} binary`), "merged");
        assert.equal(await assertSameBothWays(txt, { rejoinAfterLeave }, `${what} go-text`), "merged");
      }
    }
  });
});

Deno.test("parallel replay equals sequential replay wherever the split falls (seeded split points)", async () => {
  // The merge must not depend on where the Worker starts: inside a frame header, a payload,
  // a line, before or after the leave, just past the first records or just before the end.
  const seed = testSeed("parallel replay split points");
  const rng = new Rng(seed);
  const splits = fuzzIterations(6);
  await withTempDir(async (dir) => {
    const n = 2000;
    const records = churn(rng, n, { leaveAt: Math.floor(n / 2), nodes: 150 });
    const bin = `${dir}/s.snap`, txt = `${dir}/s.txt`;
    await writeBinary(bin, records);
    await Deno.writeTextFile(txt, goText(records) + "alive: torn 10.0.0.1:7946");
    const merged0 = parallelStats.merged;
    let tries = 0;
    for (let i = 0; i < splits; i++) {
      const at = 0.01 + 0.98 * (rng.int(1_000_000) / 1_000_000);
      for (const path of [bin, txt]) {
        for (const rejoinAfterLeave of [false, true]) {
          const sequential = await replaySnapshot(path, { rejoinAfterLeave, parallel: false });
          const old = setParallelReplayMode("always", at);
          let parallel;
          try {
            parallel = await replaySnapshot(path, { rejoinAfterLeave });
          } finally {
            setParallelReplayMode(old);
          }
          assert.deepEqual(
            parallel,
            sequential,
            `seed ${seed}: split at ${at} of ${path}, rejoin ${rejoinAfterLeave}`,
          );
          tries++;
        }
      }
    }
    // Go text always merges (lines split at '\n'); binary merges unless the resync lands in a record.
    assert.ok(
      parallelStats.merged - merged0 >= tries / 2,
      `${parallelStats.merged - merged0} merges of ${tries}`,
    );
  });
});

Deno.test("parallel replay keeps the first half's clocks when the second half sets none", async () => {
  const rng = new Rng(testSeed("parallel replay clocks"));
  await withTempDir(async (dir) => {
    const first = churn(rng, 2000);
    const second = churn(rng, 3000).filter((r) => r.type === "alive" || r.type === "not-alive");
    for (
      const [label, records] of [["no clocks after", [...first, ...second]], [
        "a leave, then no clocks",
        [...first, ...second.slice(0, 100), { type: "leave" } as SnapshotRecord, ...second.slice(100)],
      ]] as const
    ) {
      const bin = `${dir}/c.snap`, txt = `${dir}/c.txt`;
      await Deno.remove(bin).catch(() => {});
      await writeBinary(bin, records);
      await Deno.writeTextFile(txt, goText(records));
      for (const rejoinAfterLeave of [false, true]) {
        assert.equal(await assertSameBothWays(bin, { rejoinAfterLeave }, `${label} binary`), "merged");
        assert.equal(await assertSameBothWays(txt, { rejoinAfterLeave }, `${label} go-text`), "merged");
      }
      const state = await splitting(() => replaySnapshot(bin));
      if (label === "no clocks after") assert.notEqual(state.lastClock, 0n);
      else assert.equal(state.lastClock, 0n);
    }
  });
});

Deno.test("parallel replay equals sequential replay on every serf fixture", async () => {
  let merged = 0;
  for (const name of fixtureNames()) {
    for (const rejoinAfterLeave of [false, true]) {
      const how = await assertSameBothWays(
        fixturePath(name),
        { rejoinAfterLeave },
        `${name} rejoin ${rejoinAfterLeave}`,
      );
      if (how === "merged") merged++;
    }
  }
  assert.ok(merged > 0, "no fixture was replayed in two halves");
});

Deno.test("parallel replay redoes the second half itself on damage or a torn tail", async () => {
  const rng = new Rng(testSeed("parallel replay damage"));
  await withTempDir(async (dir) => {
    const records = churn(rng, 4000);
    const path = `${dir}/d.snap`;
    await writeBinary(path, records);
    const clean = await Deno.readFile(path);

    // A torn tail: both ways report it.
    await Deno.writeFile(path, clean.subarray(0, clean.length - 5));
    assert.equal(await assertSameBothWays(path, {}, "torn tail"), "redone");

    // A flipped byte at 80 %: truncate-tail and strict throw the same error, salvage skips alike.
    const flipped = clean.slice();
    flipped[Math.floor(flipped.length * 0.8)]! ^= 0x55;
    await Deno.writeFile(path, flipped);
    for (const recovery of ["truncate-tail", "strict"] as const) {
      const seq = await replaySnapshot(path, { recovery, parallel: false }).catch((e) => e);
      const par = await splitting(() => replaySnapshot(path, { recovery }).catch((e) => e));
      assert.ok(seq instanceof CorruptionError && par instanceof CorruptionError, recovery);
      assert.equal(par.message, seq.message);
    }
    assert.equal(await assertSameBothWays(path, { recovery: "salvage" }, "salvage"), "redone");
  });
});

Deno.test("parallel replay is not fooled by a node name that contains a whole valid frame (version 1, unsalted)", async () => {
  // A frame for `alive: evilN 6.6.6.6:1` whose every byte is ASCII, so that a name can carry it
  // byte for byte (a UTF-8 name cannot hold bytes >= 0x80 as themselves).
  const core = new WasmCore();
  let fake = "";
  for (let n = 0; fake === "" && n < 10_000; n++) {
    const enc = new FrameEncoder(core, SERF_LIMITS, 256);
    encodeBinaryRecord(core, enc, { type: "alive", name: `evil${n}`, addr: "6.6.6.6:1" });
    const bytes = enc.bytes();
    if (bytes.every((b) => b < 0x80)) fake = String.fromCharCode(...bytes);
  }
  assert.notEqual(fake, "", "no all-ASCII frame found");
  await withTempDir(async (dir) => {
    // A name starts 14 bytes into its frame, so two bytes of prefix put the fake frame on an
    // 8-byte boundary, where the worker's resync looks. Files of different lengths move the
    // split point across records, so some splits resync into a fake frame and some do not.
    const how: string[] = [];
    for (let extra = 0; extra < 8; extra++) {
      const records: SnapshotRecord[] = [];
      for (let i = 0; i < 1000 + extra; i++) {
        records.push({ type: "alive", name: `xx${fake}-${i}`, addr: "10.0.0.1:7946" });
      }
      const path = `${dir}/sneaky-${extra}.snap`;
      await writeBinary(path, records);
      // Version 2 (salted): the frame in the names is no frame under the file's salt, so no
      // split point is taken in by it.
      assert.equal(await assertSameBothWays(path, {}, `salted, ${1000 + extra} records`), "merged");
      // Version 1 has no salt: there it is a valid frame, which some splits resync into.
      await Deno.writeFile(path, asVersion1(await Deno.readFile(path)));
      how.push(await assertSameBothWays(path, {}, `embedded frames, ${1000 + extra} records`));
      const state = await splitting(() => replaySnapshot(path));
      assert.equal(state.aliveNodes.length, 1000 + extra);
      assert.ok(!state.aliveNodes.some((n) => n.name.startsWith("evil")));
    }
    // The fooled resync happened and was caught (the caller redid the second half).
    assert.ok(how.includes("redone"), how.join(", "));
  });
});

Deno.test("Snapshotter.open replays a binary file in two halves to the sequential state, and appends on", async () => {
  const rng = new Rng(testSeed("parallel open"));
  await withTempDir(async (dir) => {
    const path = `${dir}/open.snap`;
    await writeBinary(path, churn(rng, 5000, { leaveAt: 4000 }));
    const want = await replaySnapshot(path, { parallel: false });
    const merged0 = parallelStats.merged;
    const snap = await splitting(() => Snapshotter.open(path, { minCompactSizeBytes: 2 ** 40 }));
    assert.equal(parallelStats.merged, merged0 + 1, "open did not split the replay");
    assert.deepEqual(snap.aliveNodes(), want.aliveNodes);
    assert.deepEqual([snap.lastClock, snap.lastEventClock, snap.lastQueryClock], [
      want.lastClock,
      want.lastEventClock,
      want.lastQueryClock,
    ]);
    assert.equal(snap.openReport.records, want.records);
    snap.append({ type: "alive", name: "after-open", addr: "10.9.9.9:7946" });
    await snap.close();
    const after = await replaySnapshot(path, { parallel: false });
    assert.equal(after.records, want.records + 1);
    assert.ok(after.aliveNodes.some((n) => n.name === "after-open"));
  });
});

Deno.test("Snapshotter.open replays a Go text file in two halves: same state, warnings and torn tail, then appends", async () => {
  const rng = new Rng(testSeed("parallel open go-text"));
  await withTempDir(async (dir) => {
    const lines = goText(churn(rng, 5000, { leaveAt: 1000 })).split("\n");
    lines.splice(4000, 0, "alive: nospace", "clock: 99x");
    const text = lines.join("\n") + "alive: torn-node 10.0.0.1:79";
    const opened = async (parallel: boolean) => {
      const path = `${dir}/${parallel ? "two" : "one"}.txt`;
      await Deno.writeTextFile(path, text);
      const merged0 = parallelStats.merged;
      const snap = await splitting(() => Snapshotter.open(path, { minCompactSizeBytes: 2 ** 40, parallel }));
      const split = parallelStats.merged > merged0;
      const { records, skipped, tornTailBytes } = snap.openReport;
      const state = [snap.aliveNodes(), snap.lastClock, snap.lastEventClock, snap.lastQueryClock];
      snap.append({ type: "alive", name: "after-open", addr: "10.9.9.9:7946" });
      await snap.close();
      return { split, records, skipped, tornTailBytes, state, after: await replaySnapshot(path) };
    };
    const one = await opened(false), two = await opened(true);
    assert.equal(one.split, false);
    assert.equal(two.split, true, "open did not split the replay");
    assert.deepEqual(two.state, one.state);
    assert.equal(two.records, one.records);
    assert.deepEqual(two.skipped, one.skipped);
    assert.equal(two.skipped.length, 2);
    assert.equal(two.tornTailBytes, "alive: torn-node 10.0.0.1:79".length);
    // The torn line was cut off, so the appended record is a line of its own.
    assert.deepEqual(two.after, one.after);
    assert.ok(two.after.aliveNodes.some((n) => n.name === "after-open"));
    assert.ok(!two.after.aliveNodes.some((n) => n.name.startsWith("torn-node")));
  });
});

Deno.test("splitPoint splits only when a Worker saves time, where both threads finish together", () => {
  const MiB = 1 << 20;
  const base = { at: 2 * MiB, size: 60 * MiB, bytesPerMs: 250_000, blockMs: 20, startMs: 30 };
  const split = splitPoint(base);
  assert.ok(split !== null);
  const rest = base.size - base.at, x = split - base.at;
  const caller = base.blockMs + x / base.bytesPerMs;
  const worker = base.startMs + (rest - x) / base.bytesPerMs;
  assert.ok(Math.abs(caller - worker) < 0.01, `this thread done at ${caller} ms, the worker at ${worker} ms`);
  // A worker that starts later gets less of the file.
  assert.ok(splitPoint({ ...base, startMs: 60 })! > split);
  // The saving is (rest/rate - blockMs - startMs) / 2: exactly the 40 ms minimum at 130 ms of rest.
  assert.notEqual(splitPoint({ ...base, size: base.at + 130 * base.bytesPerMs }), null);
  assert.equal(splitPoint({ ...base, size: base.at + 130 * base.bytesPerMs - 1 }), null);
  // The same file on a machine 8x as fast is not worth a Worker.
  assert.equal(splitPoint({ ...base, bytesPerMs: 8 * base.bytesPerMs }), null);
});

Deno.test("a probe slower than the last ones counts at their median, per format", () => {
  resetReplayRates();
  try {
    // A process's first replays decide on their own probe, slow or not.
    assert.equal(replayRate("binary", 300), 300);
    assert.equal(replayRate("binary", 100), 100);
    assert.equal(replayRate("binary", 500), 500);
    // From the fourth on, never below the median of the last five (300 of 300, 100, 500).
    assert.equal(replayRate("binary", 150), 300);
    assert.equal(replayRate("binary", 900), 900, "a fast probe counts as it is");
    // The other format has its own history.
    assert.equal(replayRate("go-text", 120), 120);
    // It keeps the last five: 300, 100, 500, 150, 900 (median 300), then 100 ... 80 (median 150).
    assert.equal(replayRate("binary", 80), 300);
    assert.equal(replayRate("binary", 60), 150);
    // A slow probe with that rate in the model would have split: at the median it does not.
    const MiB = 1 << 20;
    const input = { at: 5 * MiB, size: 34 * MiB, blockMs: 25, startMs: 40 };
    assert.notEqual(splitPoint({ ...input, bytesPerMs: 175_000 }), null);
    assert.equal(splitPoint({ ...input, bytesPerMs: 380_000 }), null);
  } finally {
    resetReplayRates();
  }
});

Deno.test("auto mode measures first, then splits a large file only when the cost model says it pays, not on a first replay", async () => {
  const rng = new Rng(testSeed("parallel auto"));
  await withTempDir(async (dir) => {
    const records = churn(rng, 360_000, { nodes: 5000, leaveAt: 250_000 }); // over 8 MiB as go-text, whatever the seed
    const bin = `${dir}/auto.snap`, txt = `${dir}/auto.txt`;
    await writeBinary(bin, records);
    await Deno.writeTextFile(txt, goText(records));
    for (const path of [bin, txt]) {
      const size = (await Deno.stat(path)).size;
      assert.ok(mayReplayInParallel(size), `${path}: ${size} bytes is too small to test the split`);
      const want = await replaySnapshot(path, { parallel: false });
      // Costs that make every split pay (negative), so the decision does not depend on this machine.
      // A process's first replay of a format splits only a file of 64 MiB or more, whatever the
      // costs: the start-up replay, whose probe nothing can check.
      resetReplayRates();
      const restoreCosts = setWorkerCost(-1e9, -1e9);
      try {
        const merged0 = parallelStats.merged;
        assert.deepEqual(await replaySnapshot(path), want, `${path}, first replay`);
        assert.equal(
          parallelStats.merged,
          merged0,
          `${path}: a first replay of ${size} bytes must not split`,
        );
      } finally {
        restoreCosts();
      }
      for (const [blockMs, splits] of [[-1e9, true], [60_000, false]] as const) {
        const restore = setWorkerCost(blockMs, blockMs);
        try {
          const merged0 = parallelStats.merged, redone0 = parallelStats.redone;
          assert.deepEqual(await replaySnapshot(path), want, `${path} with workers costing ${blockMs} ms`);
          assert.equal(parallelStats.merged, merged0 + (splits ? 1 : 0), `${path}: merged`);
          assert.equal(parallelStats.redone, redone0, `${path}: redone`);
        } finally {
          restore();
        }
      }
    }
    // A file below the minimum never starts a Worker, whatever the costs.
    const small = `${dir}/small.snap`;
    await writeBinary(small, records.slice(0, 2000));
    assert.equal(mayReplayInParallel((await Deno.stat(small)).size), false);
    const restore = setWorkerCost(-1e9, -1e9);
    try {
      const merged0 = parallelStats.merged;
      assert.deepEqual(await replaySnapshot(small), await replaySnapshot(small, { parallel: false }));
      assert.equal(parallelStats.merged, merged0);
    } finally {
      restore();
    }
  });
});

Deno.test("parallel replay never merges the rest of a file renamed over the path meanwhile", async () => {
  // The Worker opens the path again. A rename-swap between the caller's open and the Worker's
  // (a compaction, `mv`) gave it another file; where the record boundaries agreed, its second
  // half was merged: a state of neither file. The Worker now checks the file's identity.
  await withTempDir(async (dir) => {
    const path = `${dir}/serf.snap`;
    const nodes = (addr: string): SnapshotRecord[] =>
      Array.from(
        { length: 2000 },
        (_, i) => ({ type: "alive", name: `node-${String(i).padStart(4, "0")}`, addr }),
      );
    for (const format of ["binary", "go-text"] as const) {
      const write = async (p: string, records: SnapshotRecord[]): Promise<void> => {
        if (format === "binary") await writeBinary(p, records);
        else await Deno.writeTextFile(p, goText(records));
      };
      await write(path, nodes("10.0.0.1:7946"));
      await write(`${dir}/next`, nodes("10.9.9.9:7946")); // same sizes and boundaries
      const old = await replaySnapshot(path, { parallel: false });
      // The swap lands right after the caller's open, before the Worker's.
      const realOpen = Deno.open;
      let swapped = false;
      Deno.open = async (p, o) => {
        const f = await realOpen(p, o);
        if (!swapped && String(p).endsWith("serf.snap")) {
          swapped = true;
          await Deno.rename(`${dir}/next`, path);
        }
        return f;
      };
      const redone0 = parallelStats.redone;
      try {
        const parallel = await splitting(() => replaySnapshot(path));
        assert.ok(swapped, format);
        assert.deepEqual(parallel, old, `${format}: the caller's file, all of it`);
        assert.equal(parallelStats.redone, redone0 + 1, format);
      } finally {
        Deno.open = realOpen;
      }
    }
  });
});

Deno.test("the replay Worker reads no further than the caller's end, even if the file has grown", async () => {
  const rng = new Rng(testSeed("parallel end"));
  await withTempDir(async (dir) => {
    const first = churn(rng, 3000), more = churn(rng, 1000);
    const bin = `${dir}/grow.snap`, txt = `${dir}/grow.txt`;
    await writeBinary(bin, first);
    await Deno.writeTextFile(txt, goText(first));
    const binEnd = (await Deno.stat(bin)).size, txtEnd = (await Deno.stat(txt)).size;
    // Copies as they were when the caller looked, then the originals grow.
    await Deno.copyFile(bin, `${bin}.then`);
    await Deno.copyFile(txt, `${txt}.then`);
    const snap = await Snapshotter.open(bin, { sync: "never", minCompactSizeBytes: 2 ** 52 });
    for (const r of more) snap.append(r);
    await snap.close();
    await Deno.writeTextFile(txt, goText(more), { append: true });
    for (const [format, path, end] of [["binary", bin, binEnd], ["go-text", txt, txtEnd]] as const) {
      const from = Math.floor(end / 2) & ~7;
      const req = { format, from, end, rejoinAfterLeave: false, salt: await fileSalt(path) };
      const grown = await replayDelta({ ...req, path });
      const then = await replayDelta({ ...req, path: `${path}.then` });
      assert.ok(grown.ok && then.ok, format);
      // Slots leave in table order, which each instance's hash key shuffles: compare as sets.
      const norm = (r: typeof grown) =>
        r.ok && { ...r, startedAt: 0, delta: { ...r.delta, ...deltaSet(r.delta) } };
      assert.deepEqual(norm(grown), norm(then), format);
      // Without the bound the Worker would have read the new records too.
      const unbounded = await replayDelta({ ...req, path, end: Infinity });
      assert.ok(unbounded.ok && unbounded.records > then.records, format);
    }
  });
});

Deno.test("a Go text file of garbage replays on two threads with a bounded warning list", async () => {
  await withTempDir(async (dir) => {
    // 300,000 unrecognized lines, and a few good ones: the Worker's half alone has
    // ~135,000 warnings (a spread of them into push() overflowed the call stack).
    const path = `${dir}/garbage.snapshot`;
    const lines: string[] = [];
    for (let i = 0; i < 300_000; i++) lines.push(i % 1000 === 0 ? `alive: n${i} 10.0.0.1:7946` : `x${i}`);
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    const good = 300;
    const bad = lines.length - good;
    for (const maxWarnings of [10_000, 7, 0]) {
      const sequential = await replaySnapshot(path, { parallel: false, maxWarnings });
      const merged0 = parallelStats.merged;
      const parallel = await splitting(() => replaySnapshot(path, { maxWarnings }));
      assert.equal(parallelStats.merged, merged0 + 1, "the split was merged");
      assert.deepEqual(parallel, sequential);
      assert.equal(parallel.warnings.length, maxWarnings);
      assert.equal(parallel.warningsOmitted, bad - maxWarnings);
      assert.equal(parallel.aliveNodes.length, good);
      // The listed warnings are the first ones, in file order, with their line numbers.
      parallel.warnings.forEach((w, k) => {
        const line = k + 2 + Math.floor(k / 999);
        assert.deepEqual(w, { line, reason: `Unrecognized snapshot line: x${line - 1}` });
      });
    }
  });
});

Deno.test("a delta that churns through new names is dropped past its bounds: the caller replays that part, memory stays with the alive set", async () => {
  // A Worker's delta keeps every name it saw die (it may delete a node of the first half):
  // 160,000 names each alive then not-alive (72,000 in the second 45 %) grew it with the file (a 256
  // MiB file of such churn peaked at 645 MiB, 50 MiB on one thread).
  await withTempDir(async (dir) => {
    const records: SnapshotRecord[] = [];
    for (let i = 0; i < 200; i++) records.push({ type: "alive", name: `keep-${i}`, addr: "10.0.0.1:7946" });
    for (let i = 0; i < 160_000; i++) {
      records.push({ type: "alive", name: `gone-${i}`, addr: "10.0.0.2:7946" });
      records.push({ type: "not-alive", name: `gone-${i}` });
    }
    records.push({ type: "not-alive", name: "keep-7" }, { type: "clock", value: 9n });
    const bin = `${dir}/churn.snap`, txt = `${dir}/churn.txt`;
    await writeBinary(bin, records);
    await Deno.writeTextFile(txt, goText(records));
    for (const path of [bin, txt]) {
      const req = {
        format: path === bin ? "binary" : "go-text",
        from: 1 << 12,
        end: Infinity,
        path,
        salt: path === bin ? await fileSalt(path) : 0,
      } as const;
      // (The Worker posts what replayDelta throws as { ok: false, reason }.)
      await assert.rejects(
        () => replayDelta({ ...req, rejoinAfterLeave: false }),
        /dropped, it held far more dead/,
      );
      assert.equal(await assertSameBothWays(path), "redone", path);
      const state = await replaySnapshot(path);
      assert.equal(state.aliveNodes.length, 199);
      assert.equal(state.lastClock, 9n);
    }
  });
});

Deno.test("SerfState delta: dead names past both bounds drop the delta (its memory freed, later records ignored); revived names do not count", () => {
  const state = new SerfState();
  const x = state.exports;
  state.reset(false, true);
  x.state_delta_dead_max(100, 1 << 20);
  for (let i = 0; i < 60; i++) state.alive(`a-${i}`, "1");
  for (let i = 0; i < 100; i++) state.notAlive(`d-${i}`); // 100 dead: at the bound, kept
  assert.equal(x.state_delta_flags() & 32, 0);
  for (let i = 0; i < 100; i++) state.alive(`d-${i}`, "2"); // revived: no longer dead
  for (let i = 0; i < 101; i++) state.notAlive(`e-${i}`); // 101 dead, 160 alive: kept
  assert.equal(x.state_delta_flags() & 32, 0);
  assert.equal(state.exportDelta().count, 160 + 101);
  for (let i = 0; i < 300; i++) state.notAlive(`f-${i}`); // 401 dead > 2 x 160 alive: dropped
  assert.equal(x.state_delta_flags() & 32, 32);
  assert.equal(state.capacity, 0, "its table freed");
  state.alive("late", "1");
  assert.equal(state.count, 0, "later records are no-ops");
  assert.throws(() => state.exportDelta(), /dropped, it held far more dead names/);
  // The byte bound: few names, long ones.
  state.reset(false, true);
  x.state_delta_dead_max(1_000_000, 4096);
  state.alive("a", "x".repeat(1000));
  for (let i = 0; i < 4; i++) state.notAlive(`${i}`.padEnd(1000, "n")); // 4000 bytes: kept
  assert.equal(x.state_delta_flags() & 32, 0);
  state.notAlive("z".repeat(200)); // 4200 > 4096 and > 2 x 1001 alive bytes: dropped
  assert.equal(x.state_delta_flags() & 32, 32);
  // A fresh reset starts a new delta.
  state.reset(false, true);
  state.notAlive("n");
  assert.equal(x.state_delta_flags() & 32, 0);
});

Deno.test("Go text warnings stop at 1 Mi characters of text as well as at maxWarnings, on one thread or two, and at open", async () => {
  // 10,000 skipped lines of 4,000 bytes held 150-600 MiB of warnings: now they are listed in
  // file order until one does not fit, and the rest counted.
  await withTempDir(async (dir) => {
    const path = `${dir}/long-garbage.snapshot`;
    const lines: string[] = [];
    for (let i = 0; i < 3000; i++) {
      lines.push(i % 100 === 0 ? `alive: n${i} 10.0.0.1:7946` : `x${i} ${"g".repeat(2000)}`);
    }
    lines.push(`clock: ${"9".repeat(3 << 20)}`); // one line of 3 MiB: over the budget alone
    lines.push("clock: 12");
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    const sequential = await replaySnapshot(path, { parallel: false });
    const chars = sequential.warnings.reduce((n, w) => n + w.reason.length, 0);
    assert.ok(chars <= WARNINGS_CHARS_MAX && chars > WARNINGS_CHARS_MAX - 2100, `${chars}`);
    assert.equal(sequential.warnings.length + sequential.warningsOmitted, 2970 + 1);
    assert.equal(sequential.warnings[0]!.line, 2);
    assert.equal(sequential.lastClock, 12n);
    assert.equal(sequential.aliveNodes.length, 30);
    const merged0 = parallelStats.merged;
    const parallel = await splitting(() => replaySnapshot(path));
    assert.equal(parallelStats.merged, merged0 + 1, "split and merged");
    assert.deepEqual(parallel, sequential);
    const snap = await Snapshotter.open(path, { parallel: false });
    assert.deepEqual(snap.openReport.skipped, sequential.warnings);
    assert.equal(snap.openReport.skippedOmitted, sequential.warningsOmitted);
    await snap.close();
  });
});
