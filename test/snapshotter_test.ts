// Snapshotter behaviour on a healthy disk: replay, serf's event rules, leave/rejoin, compaction
// thresholds, timers (driven by a ManualClock, never by sleeping), group commit, the writer lock,
// bad input, and serf's text format. Failure and crash behaviour is in snapshotter_crash_test.ts.
import assert from "node:assert/strict";
import {
  BackpressureError,
  ClosedError,
  compactSnapshot,
  convertSnapshot,
  CorruptionError,
  LockedError,
  ManualClock,
  PoisonedError,
  readSnapshotRecords,
  replaySnapshot,
  type SnapshotRecord,
  Snapshotter,
  type SnapshotterOptions,
} from "../mod.ts";
import { denoFs } from "../src/fs/deno_fs.ts";
import { FaultFs } from "../src/fs/fault_fs.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import { serfModel } from "./_model.ts";
import { withTempDir } from "./_tmp.ts";

/** A path with a directory, so the snapshotter's syncDir and MemFs's parent agree ("d"). */
const P = "d/s.snap";
const U64_MAX = 2n ** 64n - 1n;
const text = new TextDecoder();

function alive(name: string, addr: string): SnapshotRecord {
  return { type: "alive", name, addr };
}

/** Opens `P` on `mem` with a fresh ManualClock unless one is given. */
function openMem(mem: MemFs | FaultFs, options: SnapshotterOptions = {}): Promise<Snapshotter> {
  return Snapshotter.open(P, { fs: mem, clock: new ManualClock(), ...options });
}

/** The state a reopen sees: alive set and the three clocks. */
async function reopenState(
  mem: MemFs,
  options: SnapshotterOptions = {},
): Promise<{ alive: { name: string; addr: string }[]; clocks: bigint[] }> {
  const s = await openMem(mem, options);
  try {
    return { alive: s.aliveNodes(), clocks: [s.lastClock, s.lastEventClock, s.lastQueryClock] };
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Replay

Deno.test("Snapshotter replays the alive set and three clocks after reopen", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  const records: SnapshotRecord[] = [
    alive("a", "10.0.0.1:7946"),
    alive("b", "10.0.0.2:7946"),
    alive("a", "10.0.0.3:7946"), // last address wins
    alive("c", "[::1]:7946"),
    { type: "not-alive", name: "b" }, // deletes
    { type: "not-alive", name: "zz" }, // unknown name: no effect
    { type: "clock", value: 5n },
    { type: "event-clock", value: 7n },
    { type: "query-clock", value: U64_MAX }, // must survive as a bigint, not a rounded number
    { type: "clock", value: 6n }, // last clock wins, even if lower
    { type: "comment", text: "ignored on replay" },
  ];
  for (const r of records) s.append(r);
  await s.close();

  const expectedAlive = [{ name: "a", addr: "10.0.0.3:7946" }, { name: "c", addr: "[::1]:7946" }];
  const again = await openMem(mem);
  assert.deepEqual(again.aliveNodes(), expectedAlive);
  assert.equal(again.lastClock, 6n);
  assert.equal(again.lastEventClock, 7n);
  assert.equal(again.lastQueryClock, U64_MAX);
  assert.equal(again.openReport.records, records.length);
  assert.equal(again.openReport.bytes, mem.read(P).length);
  assert.equal(again.openReport.tornTailBytes, 0);
  assert.equal(again.openReport.created, false);
  await again.close();
});

Deno.test("replaySnapshot reads the same state without changing the file", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  s.append(alive("b", "10.0.0.2:7946"));
  s.append({ type: "not-alive", name: "a" });
  s.append({ type: "clock", value: 2n ** 63n + 1n });
  s.append({ type: "event-clock", value: 3n });
  s.append({ type: "query-clock", value: 4n });
  await s.close();
  const before = mem.read(P);
  const opsBefore = mem.ops.length;

  const state = await replaySnapshot(P, { fs: mem });
  assert.equal(state.format, "binary");
  assert.deepEqual(state.aliveNodes, [{ name: "b", addr: "10.0.0.2:7946" }]);
  assert.equal(state.lastClock, 2n ** 63n + 1n);
  assert.equal(state.lastEventClock, 3n);
  assert.equal(state.lastQueryClock, 4n);
  assert.equal(state.records, 6);
  assert.equal(state.bytes, before.length);
  assert.equal(state.tornTailBytes, 0);
  assert.deepEqual(state.warnings, []);
  assert.deepEqual(mem.read(P), before);
  // Read-only: it opened the file, nothing else (no write, truncate, rename or lock file).
  assert.deepEqual(
    mem.ops.slice(opsBefore).filter((op) => !op.startsWith("open ") && !op.startsWith("close ")),
    [],
  );

  const reopened = await reopenState(mem);
  assert.deepEqual(reopened.alive, state.aliveNodes);
  assert.deepEqual(reopened.clocks, [state.lastClock, state.lastEventClock, state.lastQueryClock]);
});

// ---------------------------------------------------------------------------------------------
// 2. Leave and rejoin

async function leftSnapshot(mem: MemFs): Promise<void> {
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  s.append({ type: "clock", value: 9n });
  s.append({ type: "event-clock", value: 8n });
  s.append({ type: "query-clock", value: 7n });
  await s.leave();
  await s.close();
}

Deno.test("Snapshotter reopens empty after leave without rejoinAfterLeave", async () => {
  const mem = new MemFs();
  await leftSnapshot(mem);
  assert.deepEqual(await reopenState(mem, { rejoinAfterLeave: false }), { alive: [], clocks: [0n, 0n, 0n] });
});

Deno.test("Snapshotter keeps state after leave with rejoinAfterLeave", async () => {
  const mem = new MemFs();
  await leftSnapshot(mem);
  assert.deepEqual(await reopenState(mem, { rejoinAfterLeave: true }), {
    alive: [{ name: "a", addr: "10.0.0.1:7946" }],
    clocks: [9n, 8n, 7n],
  });
});

Deno.test("Snapshotter leave makes the record durable before it resolves", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, { sync: "never" });
  s.append(alive("a", "10.0.0.1:7946"));
  await s.leave();
  mem.crash(); // no close: only what leave() synced survives
  assert.deepEqual(await reopenState(mem, { rejoinAfterLeave: true }), {
    alive: [{ name: "a", addr: "10.0.0.1:7946" }],
    clocks: [0n, 0n, 0n],
  });
  assert.deepEqual((await reopenState(mem)).alive, []);
});

Deno.test("Snapshotter handleEvent records nothing after leave", async () => {
  const mem = new MemFs();
  let lamport = 10n;
  const s = await openMem(mem, { rejoinAfterLeave: true, lamportClock: () => lamport });
  await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
  await s.leave();
  const appended = s.stats.appended;
  await s.handleEvent({ type: "member-join", members: [{ name: "b", addr: "10.0.0.2:7946" }] });
  await s.handleEvent({ type: "member-failed", members: [{ name: "a" }] });
  await s.handleEvent({ type: "user", ltime: 100n });
  await s.handleEvent({ type: "query", ltime: 100n });
  lamport = 11n; // advanced (10n > 9n), but after leave member events record nothing
  await s.handleEvent({ type: "member-update", members: [{ name: "a" }] });
  assert.equal(s.stats.appended, appended);
  assert.deepEqual(s.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
  lamport = 10n; // close must not write a clock that did not advance (9n is already recorded)
  await s.close();
  assert.deepEqual(await reopenState(mem, { rejoinAfterLeave: true }), {
    alive: [{ name: "a", addr: "10.0.0.1:7946" }],
    clocks: [9n, 0n, 0n],
  });
});

Deno.test("Snapshotter close writes the final member clock after leave (serf fixture 05)", async () => {
  const mem = new MemFs();
  let lamport = 10n;
  const s = await openMem(mem, { lamportClock: () => lamport });
  await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
  assert.equal(s.lastClock, 9n);
  await s.leave();
  lamport = 20n;
  await s.close();
  // The leave cleared everything; the clock written on close comes after it.
  const state = await replaySnapshot(P, { fs: mem });
  assert.deepEqual(state.aliveNodes, []);
  assert.equal(state.lastClock, 19n);
  assert.equal(state.records, 4); // alive, clock 9, leave, clock 19
});

// ---------------------------------------------------------------------------------------------
// 3. handleEvent rules

Deno.test("Snapshotter handleEvent applies serf's member rules", async () => {
  const mem = new MemFs();
  let lamport = 5n;
  const s = await openMem(mem, { lamportClock: () => lamport });
  await s.handleEvent({
    type: "member-join",
    members: [{ name: "a", addr: "10.0.0.1:7946" }, { name: "b", addr: "10.0.0.2:7946" }],
  });
  // The member clock record (4) is deferred to the next write: one per batch, not per event.
  assert.equal(s.stats.appended, 2);
  assert.equal(s.lastClock, 4n);
  await s.handleEvent({ type: "member-join", members: [{ name: "c", addr: "10.0.0.3:7946" }] });
  assert.equal(s.stats.appended, 3); // the clock did not advance: nothing more pending
  await s.handleEvent({ type: "member-leave", members: [{ name: "a" }] });
  await s.handleEvent({ type: "member-failed", members: [{ name: "b" }] });
  assert.equal(s.stats.appended, 5);
  assert.deepEqual(s.aliveNodes(), [{ name: "c", addr: "10.0.0.3:7946" }]);
  await s.sync();
  assert.equal(s.stats.appended, 6, "the sync wrote the deferred clock record");
  assert.deepEqual((await replaySnapshot(P, { fs: mem })).lastClock, 4n);

  await s.handleEvent({ type: "member-update", members: [{ name: "c" }] });
  await s.handleEvent({ type: "member-reap", members: [{ name: "c" }] });
  await s.sync();
  assert.equal(s.stats.appended, 6); // update and reap record nothing while the clock stands still
  lamport = 8n;
  await s.handleEvent({ type: "member-update", members: [{ name: "c" }] });
  assert.equal(s.lastClock, 7n);
  lamport = 9n;
  await s.handleEvent({ type: "member-reap", members: [] });
  assert.equal(s.lastClock, 8n);
  await s.sync();
  assert.equal(s.stats.appended, 7, "clocks 7 and 8 coalesced into one record");
  assert.deepEqual(s.aliveNodes(), [{ name: "c", addr: "10.0.0.3:7946" }]); // reap removes nothing
  await s.close();

  assert.deepEqual(await reopenState(mem), {
    alive: [{ name: "c", addr: "10.0.0.3:7946" }],
    clocks: [8n, 0n, 0n],
  });
});

Deno.test("Snapshotter records nothing for a member clock of 0, where serf wraps to 2^64-1 and sticks (fixture 12)", async () => {
  // Serf writes Time()-1 = 2^64-1 for a clock still at 0 (fixture 12), and then never records
  // another member clock: none is greater. Replay reads such a file as serf does (the fixture
  // test); the writer records nothing until the clock has ticked.
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const clock = new ManualClock();
    let lamport = 0n;
    const s = await openMem(mem, { format, clock, lamportClock: () => lamport });
    await s.handleEvent({ type: "member-update", members: [] });
    clock.advance(500); // the periodic tick
    await s.settled();
    assert.equal(s.lastClock, 0n, format);
    assert.equal(s.stats.appended, 0, format);
    lamport = 6n;
    await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
    assert.equal(s.lastClock, 5n, format);
    await s.close();
    const state = await replaySnapshot(P, { fs: mem });
    assert.equal(state.lastClock, 5n, format);
    assert.ok(state.lastClock < U64_MAX);
  }
});

Deno.test("Snapshotter handleEvent records user and query clocks only when newer", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  await s.handleEvent({ type: "user", ltime: 5n });
  await s.handleEvent({ type: "user", ltime: 3n }); // older
  await s.handleEvent({ type: "user", ltime: 5n }); // equal
  assert.equal(s.stats.appended, 1);
  await s.handleEvent({ type: "user", ltime: 6n });
  await s.handleEvent({ type: "query", ltime: 2n });
  await s.handleEvent({ type: "query", ltime: 1n });
  await s.handleEvent({ type: "query", ltime: 2n });
  assert.equal(s.stats.appended, 3);
  assert.equal(s.lastEventClock, 6n);
  assert.equal(s.lastQueryClock, 2n);
  assert.equal(s.lastClock, 0n); // no lamportClock: user events never write the member clock
  await s.close();
  assert.deepEqual((await reopenState(mem)).clocks, [0n, 6n, 2n]);
});

Deno.test("Snapshotter writes the member clock on its timer when it advanced", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  let lamport = 1n; // Time()-1 = 0: not newer than 0
  const s = await openMem(mem, { clock, lamportClock: () => lamport, clockIntervalMs: 500 });
  clock.advance(500);
  assert.equal(s.stats.appended, 0);
  lamport = 4n;
  clock.advance(499);
  assert.equal(s.stats.appended, 0);
  clock.advance(1);
  assert.equal(s.lastClock, 3n);
  assert.equal(s.stats.appended, 0, "deferred to the next flush");
  clock.advance(500); // the flush timer writes it; the clock tick finds nothing new
  await s.settled();
  assert.equal(s.stats.appended, 1);
  assert.equal((await replaySnapshot(P, { fs: mem })).lastClock, 3n);
  clock.advance(500); // unchanged: nothing
  await s.settled();
  assert.equal(s.stats.appended, 1);
  await s.close();
  assert.deepEqual((await reopenState(mem)).clocks, [3n, 0n, 0n]);
});

// ---------------------------------------------------------------------------------------------
// 4. Compaction thresholds

/** Bytes one `alive("node-N", "10.0.0.1:7946")` frame takes (measured, not assumed). */
async function aliveFrameBytes(): Promise<number> {
  const mem = new MemFs();
  const s = await openMem(mem);
  const before = mem.read(P).length;
  s.append(alive("node-0", "10.0.0.1:7946"));
  await s.sync();
  const n = mem.read(P).length - before;
  await s.close();
  return n;
}

Deno.test("Snapshotter compacts exactly when the file passes alive×256 bytes", async () => {
  const frame = await aliveFrameBytes();
  const mem = new MemFs();
  const clock = new ManualClock();
  // The minimum is far below alive×256 once ten nodes are alive, so alive×256 decides.
  const s = await openMem(mem, { clock, minCompactSizeBytes: 256, flushIntervalMs: 100 });
  const header = s.stats.fileBytes;
  assert.equal(s.stats.compactions, 0);
  const threshold = 10 * 256; // ten distinct nodes stay alive throughout
  let k = 0;
  for (; header + (k + 1) * frame <= threshold; k++) {
    s.append(alive(`node-${k % 10}`, "10.0.0.1:7946"));
    clock.advance(100);
    await s.settled();
    assert.equal(s.stats.compactions, 0, `compacted at ${s.stats.fileBytes} bytes, not over ${threshold}`);
  }
  assert.equal(mem.read(P).length, threshold - (threshold - header) % frame);
  const state = s.aliveNodes();
  s.append(alive(`node-${k % 10}`, "10.0.0.1:7946")); // crosses the threshold
  clock.advance(100);
  await s.settled();
  assert.equal(s.stats.compactions, 1);
  assert.ok(mem.read(P).length < threshold, `compacted file is ${mem.read(P).length} bytes`);
  assert.equal(s.stats.fileBytes, mem.read(P).length);
  await s.close();
  assert.deepEqual((await reopenState(mem)).alive, state);
});

Deno.test("Snapshotter does not compact a file exactly at minCompactSizeBytes", async () => {
  const frame = await aliveFrameBytes();
  const mem = new MemFs();
  const clock = new ManualClock();
  const header = 24;
  const threshold = header + 20 * frame; // "passes" means strictly greater
  const s = await openMem(mem, { clock, minCompactSizeBytes: threshold, flushIntervalMs: 100 });
  assert.equal(s.stats.fileBytes, header);
  for (let i = 0; i < 20; i++) s.append(alive("node-0", "10.0.0.1:7946"));
  clock.advance(100);
  await s.settled();
  assert.equal(mem.read(P).length, threshold);
  assert.equal(s.stats.compactions, 0);
  s.append(alive("node-0", "10.0.0.2:7946"));
  clock.advance(100);
  await s.settled();
  assert.equal(s.stats.compactions, 1);
  await s.close();
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "node-0", addr: "10.0.0.2:7946" }]);
});

Deno.test("Snapshotter compacts past minCompactSizeBytes and replays the same state", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await openMem(mem, { clock, minCompactSizeBytes: 2048 });
  for (let i = 0; i < 100; i++) s.append(alive(`n${i % 3}`, `10.0.0.${i}:7946`));
  s.append({ type: "clock", value: 12n });
  s.append({ type: "event-clock", value: 13n });
  const big = s.stats.bufferedBytes + s.stats.fileBytes;
  assert.ok(big > 2048);
  clock.advance(500);
  await s.settled();
  assert.equal(s.stats.compactions, 1);
  const size = mem.read(P).length;
  assert.ok(size < 2048, `compacted to ${size} bytes`);
  const alive3 = s.aliveNodes();
  assert.equal(alive3.length, 3);
  await s.close();
  const again = await reopenState(mem);
  assert.deepEqual(again, { alive: alive3, clocks: [12n, 13n, 0n] });
});

Deno.test("Snapshotter does not compact below the threshold", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await openMem(mem, { clock, minCompactSizeBytes: 8192 });
  mem.ops.length = 0; // (creating the file renamed its header into place)
  for (let i = 0; i < 100; i++) s.append(alive(`n${i % 3}`, `10.0.0.${i}:7946`));
  clock.advance(500);
  await s.settled();
  const size = mem.read(P).length;
  assert.ok(size > 2048 && size <= 8192, `file is ${size} bytes`);
  assert.equal(s.stats.compactions, 0);
  assert.ok(!mem.ops.some((op) => op.startsWith("rename ")));
  await s.close();
});

Deno.test("Snapshotter compacts on open when the file is over the threshold", async () => {
  const mem = new MemFs();
  const s = await openMem(mem); // default threshold: 128 KiB, not reached
  for (let i = 0; i < 100; i++) s.append(alive(`n${i % 3}`, `10.0.0.${i}:7946`));
  s.append({ type: "query-clock", value: 77n });
  await s.close();
  const before = mem.read(P).length;
  const state = await reopenState(mem);

  const again = await openMem(mem, { minCompactSizeBytes: 1024 });
  assert.equal(again.openReport.compactedOnOpen, true);
  assert.equal(again.stats.compactions, 1);
  assert.deepEqual(again.aliveNodes(), state.alive);
  await again.close();
  assert.ok(mem.read(P).length < before);
  assert.deepEqual(await reopenState(mem), state);
});

Deno.test("Snapshotter compact includes buffered records and replays the same state", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  for (let i = 0; i < 50; i++) s.append(alive(`n${i % 4}`, `10.0.0.${i}:7946`));
  await s.sync();
  s.append({ type: "not-alive", name: "n0" }); // still buffered when compact() runs
  s.append({ type: "event-clock", value: 5n });
  const before = mem.read(P).length;
  const expected = s.aliveNodes();
  await s.compact();
  assert.equal(s.stats.compactions, 1);
  assert.equal(s.stats.bufferedBytes, 0);
  assert.equal(s.stats.durableBytes, s.stats.fileBytes);
  assert.ok(mem.read(P).length < before);
  const state = await replaySnapshot(P, { fs: mem }); // the compacted file alone, before close
  assert.deepEqual(state.aliveNodes, expected);
  assert.equal(state.lastEventClock, 5n);
  assert.equal(expected.length, 3);
  s.append(alive("n9", "10.0.0.9:7946")); // appends go to the new file
  await s.close();
  assert.deepEqual((await reopenState(mem)).alive, [...expected, { name: "n9", addr: "10.0.0.9:7946" }]);
});

Deno.test("Snapshotter removes a leftover .compact and .replaced file on open", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  await s.close();
  mem.write(`${P}.compact`, new Uint8Array([1, 2, 3]));
  mem.write(`${P}.replaced`, new Uint8Array([4, 5]));
  const state = await reopenState(mem);
  assert.equal(await mem.stat(`${P}.compact`), null);
  assert.equal(await mem.stat(`${P}.replaced`), null);
  assert.deepEqual(state.alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
});

Deno.test({
  name: "Snapshotter writes the compacted file with mode 0644 on disk",
  ignore: Deno.build.os === "windows",
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/s.snap`;
      await (await Snapshotter.open(path, { clock: new ManualClock() })).close();
      // A crashed compaction's leftover (the snapshot is there, so it is one).
      await Deno.writeFile(`${path}.compact`, new Uint8Array([9]), { mode: 0o600 });
      const s = await Snapshotter.open(path, { clock: new ManualClock() });
      assert.equal(await denoFs.stat(`${path}.compact`), null); // leftover removed on open
      for (let i = 0; i < 20; i++) s.append(alive(`n${i % 2}`, `10.0.0.${i}:7946`));
      await s.compact();
      assert.equal(s.stats.compactions, 1);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
      await s.close();
      // The replaced file's second name (a hard link on disk) is gone once close() returns.
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["s.snap", "s.snap.lock"]);
      assert.equal((await replaySnapshot(path)).aliveNodes.length, 2);
    }),
});

Deno.test({
  name: "Snapshotter keeps a snapshot's narrowed mode through compaction and in its .broken copy",
  ignore: Deno.build.os === "windows",
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/s.snap`;
      const s = await Snapshotter.open(path, { clock: new ManualClock() });
      for (let i = 0; i < 20; i++) s.append(alive(`n${i % 2}`, `10.0.0.${i}:7946`));
      await s.close();
      await Deno.chmod(path, 0o600); // the operator narrows it
      const t = await Snapshotter.open(path, { clock: new ManualClock() });
      await t.compact();
      assert.equal(t.stats.compactions, 1);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600, "compaction widened the mode");
      await t.close();
      // A torn tail: the evidence copy holds the snapshot's bytes, so it gets its mode too.
      const bytes = await Deno.readFile(path);
      await Deno.writeFile(path, bytes.subarray(0, bytes.length - 3));
      const u = await Snapshotter.open(path, { clock: new ManualClock() });
      assert.equal(u.openReport.brokenCopy, `${path}.broken`);
      assert.equal((await Deno.stat(`${path}.broken`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      // Made read-only while the log runs: the compacted file keeps the rest of the bits, but
      // the owner can still write it, or the log could not reopen it after the rename.
      await Deno.chmod(path, 0o440);
      u.append(alive("n9", "10.0.0.9:7946"));
      await u.compact();
      assert.equal(u.stats.compactions, 1);
      await u.sync();
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640);
      // Serf's compacted files are 0755: a snapshot is data, the execute bits go.
      await Deno.chmod(path, 0o755);
      u.append(alive("n8", "10.0.0.8:7946"));
      await u.compact();
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
      await u.close();
      assert.equal((await replaySnapshot(path)).aliveNodes.length, 4);
    }),
});

// ---------------------------------------------------------------------------------------------
// 5. Timers

Deno.test("Snapshotter writes nothing to the file before flushIntervalMs", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await openMem(mem, { clock, flushIntervalMs: 500, sync: "never" });
  const empty = mem.read(P);
  s.append(alive("a", "10.0.0.1:7946"));
  clock.advance(499);
  await s.settled();
  assert.deepEqual(mem.read(P), empty);
  assert.ok(s.stats.bufferedBytes > 0);
  clock.advance(1);
  await s.settled();
  assert.ok(mem.read(P).length > empty.length);
  assert.equal(s.stats.bufferedBytes, 0);
  assert.equal(s.stats.fileBytes, mem.read(P).length);
  // The bytes in the file alone replay to the record.
  assert.deepEqual((await replaySnapshot(P, { fs: mem })).aliveNodes, [{ name: "a", addr: "10.0.0.1:7946" }]);
  await s.close();
});

Deno.test("Snapshotter fsyncs syncIntervalMs after a flush with sync interval", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await openMem(mem, { clock, flushIntervalMs: 100, sync: "interval", syncIntervalMs: 1000 });
  const base = mem.syncCount;
  s.append(alive("a", "10.0.0.1:7946"));
  clock.advance(100);
  await s.settled();
  assert.equal(mem.syncCount, base);
  assert.ok(s.stats.durableBytes < s.stats.fileBytes);
  clock.advance(999);
  await s.settled();
  assert.equal(mem.syncCount, base);
  clock.advance(1);
  await s.settled();
  assert.equal(mem.syncCount, base + 1);
  assert.equal(s.stats.durableBytes, s.stats.fileBytes);
  clock.advance(10_000); // nothing new: no more fsyncs
  await s.settled();
  assert.equal(mem.syncCount, base + 1);
  mem.crash(); // the interval fsync made the record durable without close
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
});

Deno.test("Snapshotter with sync never fsyncs only on sync() and close()", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await openMem(mem, { clock, flushIntervalMs: 100, sync: "never" });
  const base = mem.syncCount;
  s.append(alive("a", "10.0.0.1:7946"));
  clock.advance(100_000);
  await s.settled();
  assert.equal(mem.syncCount, base);
  assert.equal(s.stats.bufferedBytes, 0); // flushed, but not fsynced
  await s.sync();
  assert.equal(mem.syncCount, base + 1);
  s.append(alive("b", "10.0.0.2:7946"));
  clock.advance(100_000);
  await s.settled();
  assert.equal(mem.syncCount, base + 1);
  await s.close();
  assert.equal(mem.syncCount, base + 2);
  mem.crash();
  assert.equal((await reopenState(mem)).alive.length, 2);
});

Deno.test("Snapshotter on systemClock does not keep the process alive", async () => {
  await withTempDir(async (dir) => {
    const mod = new URL("../mod.ts", import.meta.url).href;
    // Hour-long timers: if any of them were ref'd, the child would outlive the guard below.
    const code = `
      import { Snapshotter } from ${JSON.stringify(mod)};
      const s = await Snapshotter.open(${JSON.stringify(`${dir}/s.snap`)}, {
        flushIntervalMs: 3_600_000, syncIntervalMs: 3_600_000, clockIntervalMs: 3_600_000,
        lamportClock: () => 5n,
      });
      s.append({ type: "alive", name: "a", addr: "10.0.0.1:7946" });
      console.log("appended");
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    assert.equal(out.signal, null, "the child had to be killed: a timer kept it alive");
    assert.equal(out.code, 0, text.decode(out.stderr));
    assert.equal(text.decode(out.stdout).trim(), "appended");
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Group commit

Deno.test("Snapshotter shares fsyncs among 100 concurrent sync() calls", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const s = await openMem(fs, { sync: "never" });
  for (let i = 0; i < 100; i++) s.append(alive(`n${i}`, "10.0.0.1:7946"));
  const base = fs.syncCounts.get(P) ?? 0;
  const calls = Array.from({ length: 100 }, () => s.sync());
  // Group commit: one running sync, and every later caller joins the single next one.
  assert.ok(new Set(calls).size <= 2, `${new Set(calls).size} distinct syncs for 100 callers`);
  await Promise.all(calls);
  const used = (fs.syncCounts.get(P) ?? 0) - base;
  assert.ok(used >= 1 && used <= 2, `${used} fdatasyncs for 100 sync() calls`);
  mem.crash();
  assert.equal((await reopenState(mem)).alive.length, 100);
});

Deno.test("Snapshotter shares fsyncs among 64 concurrent appends with sync always", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const s = await openMem(fs, { sync: "always" });
  const base = fs.syncCounts.get(P) ?? 0;
  await Promise.all(Array.from({ length: 64 }, (_, i) => s.append(alive(`n${i}`, "10.0.0.1:7946"))));
  const used = (fs.syncCounts.get(P) ?? 0) - base;
  assert.ok(used >= 1 && used <= 2, `${used} fdatasyncs for 64 appends`);
  // A second wave, while nothing is running, also resolves with every record durable.
  await Promise.all(Array.from({ length: 64 }, (_, i) => s.append(alive(`m${i}`, "10.0.0.1:7946"))));
  assert.equal(s.stats.durableBytes, s.stats.fileBytes);
  mem.crash(); // no close: every awaited append must be on "disk"
  assert.equal((await reopenState(mem)).alive.length, 128);
});

Deno.test("Snapshotter sync always makes each awaited append durable at once", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, { sync: "always" });
  await s.append(alive("a", "10.0.0.1:7946"));
  assert.equal(s.stats.durableBytes, s.stats.fileBytes);
  mem.crash();
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
});

// ---------------------------------------------------------------------------------------------
// 7. Memory after a burst

/** A MemFs that can hold writes until the test lets them go. */
class HeldWritesFs extends MemFs {
  readonly #holds: { begun: () => void; gate: Promise<void> }[] = [];

  /** Holds a coming write (the next one not held yet): `started` resolves when it has begun, `release()` lets it finish. */
  holdWrite(): { started: Promise<void>; release: () => void } {
    const started = Promise.withResolvers<void>();
    const gate = Promise.withResolvers<void>();
    this.#holds.push({ begun: started.resolve, gate: gate.promise });
    return { started: started.promise, release: gate.resolve };
  }

  override async open(path: string, options: Parameters<MemFs["open"]>[1]): ReturnType<MemFs["open"]> {
    const h = await super.open(path, options);
    const write = h.write.bind(h);
    h.write = async (data, position) => {
      const hold = this.#holds.shift();
      if (hold !== undefined) {
        hold.begun();
        await hold.gate;
      }
      return write(data, position);
    };
    return h;
  }
}

for (const format of ["binary", "go-text"] as const) {
  Deno.test(`Snapshotter (${format}) gives back the memory a burst took after eight small writes, the records staged meanwhile kept`, async () => {
    const mem = new HeldWritesFs();
    const s = await openMem(mem, { format, sync: "never", minCompactSizeBytes: 1 << 30 });
    const records: SnapshotRecord[] = [];
    const append = (r: SnapshotRecord): void => {
      s.append(r);
      records.push(r);
    };
    const start = s.stats.memoryBytes;
    for (let i = 0; i < 600_000; i++) { // one loop: nothing is written until it yields
      const n = i % 5000;
      append(
        i % 3 === 2
          ? { type: "not-alive", name: `node-${n}` }
          : alive(`node-${n}`, `10.0.${n >> 8}.${n & 255}:7946`),
      );
    }
    const peak = s.stats.memoryBytes;
    assert.ok(peak > start + (20 << 20), `a 20 MB burst grew memory from ${start} to only ${peak} bytes`);
    await s.sync();
    // A log that writes large batches keeps the buffers they need: seven small writes later
    // the memory is still held (giving it back and growing it again each batch would cost
    // the batches their speed).
    for (let i = 0; i < 7; i++) {
      append(alive(`quiet-${i}`, "10.3.0.1:7946"));
      await s.sync();
    }
    assert.ok(
      s.stats.memoryBytes > peak / 2,
      `${s.stats.memoryBytes} bytes held, peak ${peak}: given back too soon`,
    );
    // The eighth small write gives it back. Records staged while that write is in flight are
    // in the buffers then (binary: in the Wasm memory left behind), and must come along.
    append(alive("quiet-7", "10.3.0.1:7946"));
    const eighth = mem.holdWrite();
    const next = mem.holdWrite();
    const written = s.sync();
    await eighth.started;
    for (
      const r of [
        alive("late", "10.1.0.1:7946"),
        { type: "not-alive", name: "node-1" },
        alive("node-2", "10.9.9.9:7946"),
        { type: "clock", value: 99n },
      ] satisfies SnapshotRecord[]
    ) append(r);
    const lateSync = s.sync();
    eighth.release();
    await written;
    await next.started; // the eighth write is done, the late records' write has begun
    assert.ok(s.stats.bufferedBytes > 0, "the late records went with the eighth write: the test proves less");
    const after = s.stats.memoryBytes;
    assert.ok(after < 8 << 20, `${after} bytes held after eight small writes (peak ${peak})`);
    next.release();
    await lateSync;
    const model = serfModel(records);
    const expected = [...model.alive].map(([name, addr]) => ({ name, addr }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    assert.deepEqual(s.aliveNodes(), expected);
    assert.equal(s.lastClock, 99n);
    // Appends and a compaction go on working on the new buffers.
    s.append(alive("after", "10.2.0.1:7946"));
    expected.splice(0, 0, { name: "after", addr: "10.2.0.1:7946" });
    await s.compact();
    await s.close();
    const reopened = await reopenState(mem);
    assert.deepEqual(reopened.alive, expected);
    assert.deepEqual(reopened.clocks, [99n, 0n, 0n]);
  });
}

// ---------------------------------------------------------------------------------------------
// 10. The writer lock

Deno.test("Snapshotter refuses a second open in the same process", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  await assert.rejects(openMem(mem), (e: unknown) => e instanceof LockedError && e.path === P);
  s.append(alive("a", "10.0.0.1:7946"));
  await s.close();
  const again = await openMem(mem);
  assert.deepEqual(again.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
  await again.close();
});

async function runLockChild(path: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new URL("./lock_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, path],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  return { code: out.code, stdout: text.decode(out.stdout).trim(), stderr: text.decode(out.stderr) };
}

Deno.test("Snapshotter lock keeps another process out until close", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    const s = await Snapshotter.open(path, { clock: new ManualClock() });
    s.append(alive("a", "10.0.0.1:7946"));
    await s.sync();

    const locked = await runLockChild(path);
    assert.equal(locked.stdout, "locked", locked.stderr);
    assert.equal(locked.code, 3);
    await assert.rejects(Snapshotter.open(path), LockedError); // same process, real flock
    s.append(alive("b", "10.0.0.2:7946"));
    await s.close();

    const free = await runLockChild(path);
    assert.equal(free.stdout, "opened 2", free.stderr);
    assert.equal(free.code, 0);
    const again = await Snapshotter.open(path, { clock: new ManualClock() });
    assert.equal(again.aliveNodes().length, 2);
    await again.close();
  }));

Deno.test("Snapshotter lock covers a symlink to the file, and compaction keeps the link", () =>
  withTempDir(async (dir) => {
    const real = `${dir}/real.snap`;
    const link = `${dir}/link.snap`;
    const s = await Snapshotter.open(real, { clock: new ManualClock() });
    await Deno.symlink(real, link);
    // Another spelling of the same file takes the same lock.
    await assert.rejects(Snapshotter.open(link), (e: unknown) => e instanceof LockedError && e.path === link);
    await assert.rejects(Snapshotter.open(`${dir}/./real.snap`), LockedError);
    s.append(alive("a", "10.0.0.1:7946"));
    await s.close();

    const viaLink = await Snapshotter.open(link, { clock: new ManualClock() });
    await assert.rejects(Snapshotter.open(real), LockedError);
    viaLink.append(alive("b", "10.0.0.2:7946"));
    await viaLink.compact(); // renames over the file the link points to, not over the link
    await viaLink.close();
    assert.ok((await Deno.lstat(link)).isSymlink);
    const names = (await replaySnapshot(real)).aliveNodes.map((n) => n.name);
    assert.deepEqual(names, ["a", "b"]);
  }));

Deno.test("Snapshotter.aliveCount counts buffered records, deletions and a leave without listing", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  assert.equal(s.aliveCount, 0);
  s.append(alive("a", "10.0.0.1:7946"));
  s.append(alive("b", "10.0.0.2:7946"));
  s.append(alive("a", "10.0.0.9:7946")); // a new address, the same node
  assert.equal(s.aliveCount, 2); // buffered, not yet written
  s.append({ type: "not-alive", name: "b" });
  s.append({ type: "not-alive", name: "zz" }); // unknown: nothing to delete
  assert.equal(s.aliveCount, 1);
  await s.close();
  const again = await openMem(mem);
  assert.equal(again.aliveCount, 1);
  await again.leave();
  assert.equal(again.aliveCount, 0);
  await again.close();
});

Deno.test("Snapshotter refuses a second writer that reaches the file through a hard link", async () => {
  // MemFs models flock on the file, not the name; the real file system below.
  const mem = new MemFs();
  const s = await Snapshotter.open("d/a.snap", { fs: mem, clock: new ManualClock() });
  await mem.link("d/a.snap", "d/b.snap");
  await assert.rejects(
    Snapshotter.open("d/b.snap", { fs: mem, clock: new ManualClock() }),
    (e: unknown) =>
      e instanceof LockedError && /another writer through another name \(a hard link\)/.test(e.message),
  );
  await s.compact(); // the new file is locked too (a third name for it would be refused)
  await mem.link("d/a.snap", "d/c.snap");
  await assert.rejects(Snapshotter.open("d/c.snap", { fs: mem, clock: new ManualClock() }), LockedError);
  await s.close();
  const again = await Snapshotter.open("d/c.snap", { fs: mem, clock: new ManualClock() });
  await again.close();
  if (Deno.build.os === "windows") return; // no file lock there (it would keep readers out)
  await withTempDir(async (dir) => {
    const live = await Snapshotter.open(`${dir}/a.snap`, { clock: new ManualClock() });
    await Deno.link(`${dir}/a.snap`, `${dir}/b.snap`);
    await assert.rejects(Snapshotter.open(`${dir}/b.snap`), LockedError);
    // Readers are not writers: a replay through either name works.
    assert.deepEqual((await replaySnapshot(`${dir}/b.snap`)).aliveNodes, []);
    await live.close();
    await (await Snapshotter.open(`${dir}/b.snap`)).close();
  });
});

Deno.test("Snapshotter on a dangling symlink creates the file it names, in both formats, and keeps the link", () =>
  withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/data`);
    for (const format of ["binary", "go-text"] as const) {
      const target = `${dir}/data/${format}.snap`;
      const link = `${dir}/${format}-link.snap`;
      // A relative link through a second, also dangling, link: both are followed.
      await Deno.symlink(`data/${format}.snap`, `${dir}/${format}-hop`);
      await Deno.symlink(`${format}-hop`, link);
      const s = await Snapshotter.open(link, { format, clock: new ManualClock() });
      // Serf opens with O_CREATE through the link; so does snaplog: the target is the snapshot.
      assert.ok((await Deno.lstat(link)).isSymlink, "the link is not replaced by a file");
      assert.equal(s.path, await Deno.realPath(target));
      await assert.rejects(Snapshotter.open(target), LockedError); // one lock, beside the target
      s.append(alive("a", "10.0.0.1:7946"));
      await s.compact(); // renames over the target, not over the link
      await s.close();
      assert.ok((await Deno.lstat(link)).isSymlink);
      assert.deepEqual((await replaySnapshot(target)).aliveNodes, [{ name: "a", addr: "10.0.0.1:7946" }]);
      assert.deepEqual((await replaySnapshot(link)).aliveNodes, [{ name: "a", addr: "10.0.0.1:7946" }]);
    }
    // A loop of links is an error, not a file created somewhere.
    await Deno.symlink(`${dir}/loop-b`, `${dir}/loop-a`);
    await Deno.symlink(`${dir}/loop-a`, `${dir}/loop-b`);
    await assert.rejects(Snapshotter.open(`${dir}/loop-a`));
    assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name), []);
  }));

// ---------------------------------------------------------------------------------------------
// 11. Bad input

Deno.test("Snapshotter append reads each field of a record once: a getter cannot pass the check and write another value", async () => {
  /** A record whose `key` reads `first` once, then `then` (a getter, as a Proxy or a class could). */
  function twoFaced(
    base: Record<string, unknown>,
    key: string,
    first: unknown,
    then: unknown,
  ): SnapshotRecord {
    let reads = 0;
    return Object.defineProperty({ ...base }, key, {
      get: () => reads++ === 0 ? first : then,
      enumerable: true,
    }) as SnapshotRecord;
  }
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const s = await openMem(mem, { format });
    s.append({ type: "clock", value: 5n });
    // Go text: a name checked as "x" and written with a newline would inject a line.
    s.append(twoFaced({ type: "alive", addr: "1.1.1.1:1" }, "name", "x", "x\nalive: injected 6.6.6.6:1"));
    // A clock checked as 8n and then read as a string threw after its frame was staged (as 0).
    s.append(twoFaced({ type: "clock" }, "value", 8n, "not a clock"));
    s.append(twoFaced({ type: "alive", name: "y", addr: "2.2.2.2:2" }, "type", "alive", "clock"));
    assert.equal(s.lastClock, 8n, format);
    await s.close();
    const state = await reopenState(mem);
    assert.deepEqual(
      state.alive,
      [{ name: "x", addr: "1.1.1.1:1" }, { name: "y", addr: "2.2.2.2:2" }],
      format,
    );
    assert.deepEqual(state.clocks, [8n, 0n, 0n], format);
  }
});

Deno.test("Snapshotter append rejects bad records and keeps what was written", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  s.append({ type: "clock", value: 3n });
  await s.sync();
  const bad: [unknown, ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor][] = [
    [null, TypeError],
    ["alive", TypeError],
    [{ type: "dead", name: "a" }, TypeError],
    [{ name: "a", addr: "x" }, TypeError],
    [{ type: "alive", name: 5, addr: "10.0.0.1:1" }, TypeError],
    [{ type: "alive", name: "b" }, TypeError],
    [{ type: "not-alive" }, TypeError],
    [{ type: "clock", value: 5 }, TypeError],
    [{ type: "event-clock", value: "5" }, TypeError],
    [{ type: "comment", text: 1 }, TypeError],
    [{ type: "clock", value: -1n }, RangeError],
    [{ type: "query-clock", value: 2n ** 64n }, RangeError],
    [alive("x".repeat(65536), "10.0.0.1:1"), RangeError],
    [alive("é".repeat(32768), "10.0.0.1:1"), RangeError], // 65536 UTF-8 bytes in 32768 units
    [alive("b", "1".repeat(65536)), RangeError],
    [{ type: "not-alive", name: "x".repeat(65536) }, RangeError],
  ];
  for (const [record, cls] of bad) {
    const appended = s.stats.appended;
    const buffered = s.stats.bufferedBytes;
    assert.throws(() => s.append(record as SnapshotRecord), cls, `for ${Deno.inspect(record).slice(0, 60)}`);
    assert.equal(s.stats.appended, appended);
    assert.equal(s.stats.bufferedBytes, buffered);
  }
  // The limits themselves are accepted.
  s.append(alive("y".repeat(65535), "z".repeat(65535)));
  s.append({ type: "event-clock", value: U64_MAX });
  s.append({ type: "query-clock", value: 0n });
  await s.close();
  const state = await reopenState(mem);
  assert.deepEqual(state.alive.map((n) => n.name.length), [1, 65535]);
  assert.deepEqual(state.clocks, [3n, U64_MAX, 0n]);
});

Deno.test("Snapshotter handleEvent rejects bad events with TypeError", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  const bad: unknown[] = [
    null,
    { type: "member-boom", members: [] },
    { type: "member-join", members: "a" },
    { type: "member-join", members: [{ name: 1, addr: "x" }] },
    { type: "member-update", members: [{ name: 1 }] },
    { type: "user", ltime: 5 },
  ];
  for (const event of bad) {
    assert.throws(() => s.handleEvent(event as never), TypeError, Deno.inspect(event));
  }
  assert.throws(() => s.handleEvent({ type: "query", ltime: -1n }), RangeError);
  // The messages name the event's field, not a record's.
  assert.throws(
    () => s.handleEvent({ type: "user", ltime: 5 } as never),
    /^TypeError: Cannot handle user event for "d\/s\.snap": ltime must be a bigint, got number$/,
  );
  assert.throws(
    () => s.handleEvent({ type: "query", ltime: 2n ** 64n }),
    /query event for "d\/s\.snap": ltime 18446744073709551616 is outside/,
  );
  // And the log's path, as a record's errors do: a service with several logs can tell which.
  assert.throws(
    () => s.handleEvent({ type: "member-join", members: [{ name: "x".repeat(70_000), addr: "a" }] }),
    /^RangeError: Cannot append alive record to "d\/s\.snap": name is 70000 bytes, the limit is 65535$/,
  );
  assert.throws(
    () => s.handleEvent(null as never),
    /^TypeError: Cannot handle event for "d\/s\.snap": event must be/,
  );
  assert.throws(() => s.append({ type: "clock", value: -1n }), (e: Error) => {
    assert.ok(e instanceof RangeError && e.cause instanceof RangeError);
    assert.match(e.message, /^Cannot append clock record to "d\/s\.snap": value -1 is outside/);
    return true;
  });
  // A caller's own error passes through as it is: its class and its words.
  class ClockUnavailable extends TypeError {}
  const withClock = await openMem(new MemFs(), {
    lamportClock: () => {
      throw new ClockUnavailable("Cannot read clock: agent down");
    },
  });
  assert.throws(
    () => withClock.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:1" }] }),
    (e: Error) => e instanceof ClockUnavailable && e.message === "Cannot read clock: agent down",
  );
  await withClock.close().catch(() => {});
  const plain = await openMem(new MemFs(), {
    lamportClock: () => {
      throw new TypeError("Cannot handle clock read: upstream agent not ready");
    },
  });
  assert.throws(
    () => plain.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:1" }] }),
    (e: Error) => e.message === "Cannot handle clock read: upstream agent not ready" && e.cause === undefined,
  );
  await plain.close().catch(() => {});
  assert.equal(s.stats.appended, 0);
  await s.close();
  assert.deepEqual(await reopenState(mem), { alive: [], clocks: [0n, 0n, 0n] });
});

Deno.test("Snapshotter refuses a lamportClock that returns no uint64, before staging the event", async () => {
  // It returned -5n (recorded as 2^64-5), 2^70 (as 2^64-1), a number (a raw BigInt mixing
  // error after the join was staged, then a failed close): a bad clock is bad input.
  const cases: [unknown, TypeErrorConstructor | RangeErrorConstructor][] = [
    [5, TypeError],
    ["7", TypeError],
    [-5n, RangeError],
    [2n ** 64n + 1n, RangeError],
    [2n ** 70n, RangeError],
  ];
  for (const [value, cls] of cases) {
    const mem = new MemFs();
    const clock = new ManualClock();
    let now: unknown = 10n;
    const errors: unknown[] = [];
    const s = await openMem(mem, {
      clock,
      lamportClock: () => now as bigint,
      onBackgroundError: (e) => errors.push(e),
    });
    await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
    now = value;
    const what = Deno.inspect(value);
    assert.throws(
      () => s.handleEvent({ type: "member-join", members: [{ name: "b", addr: "10.0.0.2:7946" }] }),
      (e: unknown) => e instanceof cls && /lamportClock returned/.test(String(e)),
      what,
    );
    assert.deepEqual(s.aliveNodes().map((n) => n.name), ["a"], what); // b was not staged
    clock.advance(500); // the clock tick reports it too, and records nothing
    assert.ok(errors.length === 1 && errors[0] instanceof cls, what);
    now = 12n;
    await s.close();
    assert.deepEqual(await reopenState(mem), {
      alive: [{ name: "a", addr: "10.0.0.1:7946" }],
      clocks: [11n, 0n, 0n],
    }, what);
  }
});

Deno.test("Snapshotter open rejects options of the wrong type or range", async () => {
  const mem = new MemFs();
  const typeErrors: unknown[] = [
    null,
    "fast",
    { rejoinAfterLeave: 1 },
    { flushIntervalMs: "500" },
    { flushIntervalMs: NaN },
    { sync: "sometimes" },
    { recovery: "lenient" },
    { format: "json" },
    { lamportClock: 5n },
    { bufferSizeMaxBytes: 1n << 20n },
  ];
  for (const options of typeErrors) {
    await assert.rejects(
      Snapshotter.open(P, options as SnapshotterOptions),
      TypeError,
      Deno.inspect(options),
    );
  }
  // The message says which number it got, not just "number".
  await assert.rejects(
    Snapshotter.open(P, { compactRetryMs: Infinity }),
    /compactRetryMs must be a finite number, got Infinity/,
  );
  const rangeErrors: SnapshotterOptions[] = [
    { flushIntervalMs: 0, fs: mem },
    { syncIntervalMs: -1, fs: mem },
    { minCompactSizeBytes: -1, fs: mem },
    { bufferSizeMaxBytes: 1024, fs: mem },
  ];
  for (const options of rangeErrors) {
    await assert.rejects(Snapshotter.open(P, options), RangeError, Deno.inspect(options));
  }
  await assert.rejects(Snapshotter.open("", { fs: mem }), TypeError);
  await assert.rejects(Snapshotter.open(5 as unknown as string, { fs: mem }), TypeError);
  // None of them took the lock or created the file.
  assert.equal(await mem.stat(P), null);
  const s = await openMem(mem);
  await s.close();
});

Deno.test("Snapshotter rejects every write after close with ClosedError, and keeps its final state readable", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  await s.close();
  const bytes = mem.read(P);
  assert.throws(() => s.append(alive("b", "10.0.0.2:7946")), ClosedError);
  assert.throws(() => s.handleEvent({ type: "user", ltime: 1n }), ClosedError);
  await assert.rejects(s.sync(), ClosedError);
  await assert.rejects(s.compact(), ClosedError);
  await assert.rejects(s.leave(), ClosedError);
  await s.close(); // a second close does nothing
  assert.deepEqual(mem.read(P), bytes);
  // Reading is no use of the file: the final state stays readable (serf's AliveNodes does too).
  assert.deepEqual(s.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
  assert.equal(s.aliveCount, 1);
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
});

Deno.test("Snapshotter closes at the end of an await using scope, also one left by a throw", async () => {
  const mem = new MemFs();
  {
    await using s = await openMem(mem, { sync: "never" });
    s.append(alive("a", "10.0.0.1:7946"));
  }
  mem.crash(); // only what close() fsynced survives
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
  await assert.rejects(
    (async () => {
      await using s = await openMem(mem, { sync: "never" });
      s.append(alive("b", "10.0.0.2:7946"));
      throw new Error("the caller's own failure");
    })(),
    /the caller's own failure/,
  );
  mem.crash();
  // The lock was released (reopenState opens the file) and b was flushed and fsynced.
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a", "b"]);
});

Deno.test("Snapshotter append throws BackpressureError at bufferSizeMaxBytes and drops nothing", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, { bufferSizeMaxBytes: 1 << 20, sync: "never" });
  const pad = "x".repeat(1000);
  let accepted = 0;
  let error: unknown = null;
  // Synchronous: no timer or background flush can drain the buffer in between.
  for (let i = 0; i < 10_000; i++) {
    try {
      s.append(alive(`n${i}-${pad}`, "10.0.0.1:7946"));
      accepted++;
    } catch (e) {
      error = e;
      break;
    }
  }
  assert.ok(error instanceof BackpressureError, String(error));
  assert.ok(accepted > 500 && accepted < 1100, `${accepted} records accepted`);
  assert.equal(s.stats.appended, accepted);
  await s.sync();
  s.append(alive("after", "10.0.0.1:7946")); // room again
  await s.close();
  const names = new Set((await reopenState(mem)).alive.map((n) => n.name));
  assert.equal(names.size, accepted + 1);
  for (let i = 0; i < accepted; i++) assert.ok(names.has(`n${i}-${pad}`), `record ${i} lost`);
});

// ---------------------------------------------------------------------------------------------
// 12. Serf's text format

Deno.test("Snapshotter go-text writes serf's exact lines", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, { format: "go-text" });
  assert.equal(s.format, "go-text");
  s.append(alive("a", "10.0.0.1:7946"));
  s.append(alive("b", "[::1]:7946"));
  s.append({ type: "not-alive", name: "a" });
  s.append({ type: "clock", value: 5n });
  s.append({ type: "event-clock", value: U64_MAX });
  s.append({ type: "query-clock", value: 0n });
  s.append({ type: "coordinate", text: '{"Vec":[0.1]}' });
  s.append({ type: "comment", text: "hello" });
  s.append({ type: "leave" });
  await s.close();
  assert.equal(
    text.decode(mem.read(P)),
    "alive: a 10.0.0.1:7946\n" +
      "alive: b [::1]:7946\n" +
      "not-alive: a\n" +
      "clock: 5\n" +
      "event-clock: 18446744073709551615\n" +
      "query-clock: 0\n" +
      'coordinate: {"Vec":[0.1]}\n' +
      "# hello\n" +
      "leave\n",
  );
  assert.deepEqual(await reopenState(mem, { rejoinAfterLeave: true }), {
    alive: [{ name: "b", addr: "[::1]:7946" }],
    clocks: [5n, U64_MAX, 0n],
  });
});

Deno.test("Snapshotter detects an existing go-text file and appends text to it", async () => {
  const mem = new MemFs();
  mem.write(P, new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 3\n"));
  const s = await openMem(mem); // format "auto"
  assert.equal(s.format, "go-text");
  assert.equal(s.openReport.format, "go-text");
  assert.equal(s.openReport.records, 2);
  assert.deepEqual(s.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
  assert.equal(s.lastClock, 3n);
  s.append(alive("b", "10.0.0.2:7946"));
  await s.close();
  assert.equal(text.decode(mem.read(P)), "alive: a 10.0.0.1:7946\nclock: 3\nalive: b 10.0.0.2:7946\n");
  // Forcing binary on it is refused, untouched: no header and no frame, so it is no damaged
  // binary file, and salvage would have rewritten it empty.
  const before = mem.read(P);
  await assert.rejects(openMem(mem, { format: "binary" }), /as binary: the file is in serf's go-text format/);
  assert.deepEqual(mem.read(P), before);
});

Deno.test("Snapshotter go-text cuts a torn last line before appending", async () => {
  const mem = new MemFs();
  const original = new TextEncoder().encode("alive: a 10.0.0.1:7946\nalive: b 10.0.");
  mem.write(P, original);
  await assert.rejects(openMem(mem, { recovery: "strict" }), CorruptionError);
  assert.deepEqual(mem.read(P), original); // strict repairs nothing
  const s = await openMem(mem);
  assert.equal(s.openReport.tornTailBytes, "alive: b 10.0.".length);
  assert.equal(s.openReport.brokenCopy, `${P}.broken`);
  assert.deepEqual(mem.read(`${P}.broken`), original);
  assert.deepEqual(s.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
  s.append(alive("c", "10.0.0.3:7946"));
  await s.close();
  // Serf would have glued "alive: b 10.0.alive: c ..." into one bogus line.
  assert.equal(text.decode(mem.read(P)), "alive: a 10.0.0.1:7946\nalive: c 10.0.0.3:7946\n");
});

Deno.test("Snapshotter go-text compaction writes alive lines then the three clocks", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, { format: "go-text" });
  s.append(alive("b", "10.0.0.2:7946"));
  s.append(alive("a", "10.0.0.1:7946"));
  s.append(alive("c", "10.0.0.3:7946"));
  s.append({ type: "not-alive", name: "c" });
  s.append({ type: "clock", value: 4n });
  s.append({ type: "query-clock", value: 6n });
  s.append(alive("a", "10.0.0.9:7946"));
  await s.compact();
  assert.equal(s.stats.compactions, 1);
  // Alive lines come first in table order (serf: Go map order), then the three clocks.
  const lines = text.decode(mem.read(P)).split("\n");
  assert.deepEqual(lines.slice(0, 2).sort(), ["alive: a 10.0.0.9:7946", "alive: b 10.0.0.2:7946"]);
  assert.deepEqual(lines.slice(2), ["clock: 4", "event-clock: 0", "query-clock: 6", ""]);
  s.append({ type: "not-alive", name: "b" });
  await s.close();
  assert.ok(text.decode(mem.read(P)).endsWith("query-clock: 6\nnot-alive: b\n"));
});

Deno.test("Go text compaction keeps a line longer than its chunk, and everything after it", async () => {
  // Compaction builds its image in 512 KiB chunks. A go-text name has no limit but the log's
  // buffer, and a line longer than a chunk once ended the image there: the nodes after it
  // and the three clocks were gone from the file renamed over the snapshot.
  const big = "big-" + "x".repeat(600 << 10);
  const records: SnapshotRecord[] = [];
  for (let i = 0; i < 50; i++) records.push(alive(`node-${i}`, `10.0.0.${i}:7946`));
  records.push(alive(big, "10.9.9.9:7946"), alive("after", "10.9.9.10:7946"));
  records.push({ type: "clock", value: 42n }, { type: "event-clock", value: 7n }, {
    type: "query-clock",
    value: 9n,
  });
  const nodes = records.flatMap((r) => r.type === "alive" ? [{ name: r.name, addr: r.addr }] : []);
  const want = { alive: nodes.sort((a, b) => (a.name < b.name ? -1 : 1)), clocks: [42n, 7n, 9n] };
  // A live log's compaction.
  const mem = new MemFs();
  const s = await openMem(mem, { format: "go-text" });
  for (const r of records) s.append(r);
  await s.compact();
  await s.close();
  assert.deepEqual(await reopenState(mem), want);
  // The offline one, on a file that serf wrote.
  const m2 = new MemFs();
  m2.write(P, new TextEncoder().encode(text.decode(mem.read(P)) + "not-alive: node-0\n"));
  await compactSnapshot(P, { fs: m2, clock: new ManualClock() });
  const after = await reopenState(m2);
  assert.deepEqual(after.clocks, want.clocks);
  assert.deepEqual(after.alive, want.alive.filter((n) => n.name !== "node-0"));
});

Deno.test("Snapshotter go-text rejects a name or address that would inject lines", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, { format: "go-text" });
  s.append(alive("a", "10.0.0.1:7946"));
  assert.throws(() => s.append(alive("evil\nalive: x", "10.0.0.1:7946")), RangeError);
  assert.throws(() => s.append({ type: "not-alive", name: "a\n" }), RangeError);
  assert.throws(() => s.append(alive("b", "10.0.0.1:7946\nleave")), RangeError);
  assert.throws(() => s.append(alive("b", "10.0.0.1 7946")), RangeError);
  assert.throws(() => s.append({ type: "comment", text: "x\nleave" }), RangeError);
  // "\r" too: serf strips only "\n", so a "\r" would end up inside the name on replay.
  assert.throws(() => s.append(alive("c\r", "10.0.0.1:7946")), RangeError);
  assert.throws(() => s.append(alive("c", "10.0.0.1:7946\r")), RangeError);
  assert.throws(() => s.append({ type: "not-alive", name: "a\r" }), RangeError);
  // The event path checks the same, for every member.
  assert.throws(
    () => s.handleEvent({ type: "member-join", members: [{ name: "x\nleave", addr: "1:2" }] }),
    RangeError,
  );
  assert.throws(
    () => s.handleEvent({ type: "member-failed", members: [{ name: "a" }, { name: "a\r" }] }),
    RangeError,
  );
  assert.equal(s.stats.appended, 1);
  await s.close();
  assert.equal(text.decode(mem.read(P)), "alive: a 10.0.0.1:7946\n");
});

Deno.test("Snapshotter does not recompact a file that has not doubled since its last compaction", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await Snapshotter.open(P, { fs: mem, clock, minCompactSizeBytes: 0 });
  assert.equal(s.openReport.compactedOnOpen, true, "an empty file over a zero minimum compacts once");
  const afterOpen = s.stats.compactions;
  s.append({ type: "clock", value: 1n }); // the file grows a little, but not to twice its size
  clock.advance(500);
  await s.settled();
  assert.equal(s.stats.compactions, afterOpen);
  await s.close();
});

Deno.test("Snapshotter keeps a deferred member clock ordered against leave and explicit clocks", async () => {
  const mem = new MemFs();
  let lamport = 11n;
  const s = await openMem(mem, { lamportClock: () => lamport });
  await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
  assert.equal(s.lastClock, 10n); // deferred
  s.append({ type: "clock", value: 3n }); // an explicit clock supersedes the deferred one
  assert.equal(s.lastClock, 3n);
  await s.sync();
  assert.equal((await replaySnapshot(P, { fs: mem })).lastClock, 3n);

  lamport = 21n;
  await s.handleEvent({ type: "member-join", members: [{ name: "b", addr: "10.0.0.2:7946" }] });
  await s.leave(); // the deferred clock 20 must land before the leave, which clears it
  await s.sync();
  const left = await replaySnapshot(P, { fs: mem });
  assert.equal(left.lastClock, 0n);
  assert.deepEqual(left.aliveNodes, []);
  const kept = await replaySnapshot(P, { fs: mem, rejoinAfterLeave: true });
  assert.equal(kept.lastClock, 20n);
  assert.equal(kept.aliveNodes.length, 2);
  await s.close();
});

Deno.test("Snapshotter reports the lines serf would skip when it opens a go-text file", async () => {
  const mem = new MemFs();
  mem.write(P, new TextEncoder().encode("alive: a 10.0.0.1:7946\nbogus line\nclock: x\nclock: 5\n"));
  const s = await openMem(mem);
  assert.equal(s.format, "go-text");
  assert.deepEqual(s.openReport.skipped.map((w) => w.line), [2, 3]);
  assert.match(s.openReport.skipped[0]!.reason, /Unrecognized snapshot line/);
  assert.equal(s.lastClock, 5n);
  await s.close();
});

Deno.test('Snapshotter with sync: "always" compacts when the file passes the threshold', async () => {
  // No flush timer runs in this mode: the check after each sync is what triggers it.
  const frame = await aliveFrameBytes();
  const mem = new MemFs();
  const s = await openMem(mem, { clock: new ManualClock(), sync: "always", minCompactSizeBytes: 1024 });
  let compactedAt = -1;
  for (let i = 0; i < 200 && compactedAt < 0; i++) {
    await s.append(alive("node-0", "10.0.0.1:7946"));
    await s.settled();
    if (s.stats.compactions > 0) compactedAt = i;
  }
  // It compacts on the first append past 1024 bytes, not later.
  assert.equal(compactedAt, Math.ceil((1024 - 24) / frame));
  assert.ok(mem.read(P).length < 1024);
  await s.close();
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "node-0", addr: "10.0.0.1:7946" }]);
});

Deno.test({
  name: "Snapshotter opens and compacts a snapshot whose name leaves no room for .replaced (247 bytes)",
  ignore: Deno.build.os === "windows",
  fn: () =>
    withTempDir(async (dir) => {
      // 247 + ".replaced" is 256 bytes, over ext4's 255: open's clean-up and compaction's second
      // name must take that as "no such file", not fail.
      const path = `${dir}/${"x".repeat(242)}.snap`;
      const s = await Snapshotter.open(path, { clock: new ManualClock() });
      for (let i = 0; i < 20; i++) s.append(alive(`n${i % 2}`, `10.0.0.${i}:7946`));
      await s.compact();
      assert.equal(s.stats.compactions, 1);
      await s.close();
      assert.equal((await replaySnapshot(path)).aliveNodes.length, 2);
    }),
});

Deno.test({
  name:
    "Snapshotter fsyncs the directory a file named with a backslash is in (a backslash separates only on Windows)",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const mem = new MemFs();
    const s = await Snapshotter.open("d/a\\b.snap", { fs: mem, clock: new ManualClock() });
    await s.close();
    // The directory whose entry must be durable is d, not d/a.
    assert.ok(mem.ops.includes("syncDir d"), mem.ops.join("\n"));
    assert.ok(!mem.ops.includes("syncDir d/a"), mem.ops.join("\n"));
    mem.crash();
    assert.notEqual(await mem.stat("d/a\\b.snap"), null, "the new snapshot vanished in a crash");
  },
});

Deno.test("Snapshotter finishes a compaction serf left between removing the snapshot and renaming the new one", async () => {
  // Serf compacts by writing and fsyncing <path>.compact, removing the snapshot, then renaming:
  // a serf that died in between left its whole state only in <path>.compact.
  const mem = new MemFs();
  const text = "alive: a 10.0.0.1:7946\nalive: b 10.0.0.2:7946\nclock: 7\nevent-clock: 3\nquery-clock: 0\n";
  mem.write("d/serf.snapshot.compact", new TextEncoder().encode(text));
  await assert.rejects(replaySnapshot("d/serf.snapshot", { fs: mem }), /serf\.snapshot\.compact" exists/);
  await assert.rejects(
    convertSnapshot("d/serf.snapshot", "d/out.snap", { to: "binary", fs: mem }),
    /serf\.snapshot\.compact" exists/,
  );
  const s = await Snapshotter.open("d/serf.snapshot", { fs: mem, clock: new ManualClock() });
  assert.equal(s.openReport.finishedCompaction, true);
  assert.equal(s.openReport.created, false);
  assert.equal(s.format, "go-text");
  assert.deepEqual(s.aliveNodes().map((n) => n.name), ["a", "b"]);
  assert.equal(s.lastClock, 7n);
  await s.close();
  assert.equal(await mem.stat("d/serf.snapshot.compact"), null);
  mem.crash(); // the rename was made durable
  assert.equal(new TextDecoder().decode(mem.read("d/serf.snapshot")), text);

  // Anything but a whole compacted snapshot is a leftover, not a state: an empty file or a bare
  // header (a creation cut short), a compaction's file cut short mid-write (text or binary).
  const full = new MemFs();
  const w = await Snapshotter.open("d/w.snap", { fs: full, clock: new ManualClock() });
  for (let i = 0; i < 3; i++) w.append(alive(`n${i}`, `10.0.0.${i}:7946`));
  await w.compact();
  await w.close();
  const compacted = full.read("d/w.snap"); // alive frames, then the three clock frames
  const leftovers: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["a bare header", compacted.subarray(0, 24)],
    ["binary cut short", compacted.subarray(0, compacted.length - 24)],
    [
      "binary, last frame damaged",
      Uint8Array.from(compacted, (b, i) => i === compacted.length - 1 ? b ^ 1 : b),
    ],
    ["text cut short", new TextEncoder().encode(text.slice(0, text.indexOf("query-clock")))],
    ["text, torn last line", new TextEncoder().encode(text.slice(0, -1))],
  ];
  for (const [what, bytes] of leftovers) {
    const m = new MemFs();
    m.write("d/x.snap.compact", bytes);
    const t = await Snapshotter.open("d/x.snap", { fs: m, clock: new ManualClock() });
    assert.equal(t.openReport.finishedCompaction, false, what);
    assert.equal(t.openReport.created, true, what);
    assert.deepEqual(t.aliveNodes(), [], what);
    await t.close();
    assert.equal(await m.stat("d/x.snap.compact"), null, what);
  }
  // A whole binary one (snaplog's format) is a state.
  const mb = new MemFs();
  mb.write("d/x.snap.compact", compacted);
  const b = await Snapshotter.open("d/x.snap", { fs: mb, clock: new ManualClock() });
  assert.equal(b.openReport.finishedCompaction, true);
  assert.deepEqual(b.aliveNodes().map((n) => n.name), ["n0", "n1", "n2"]);
  await b.close();

  // The offline compaction takes it for the snapshot it is, not for a missing file.
  const m3 = new MemFs();
  m3.write("d/serf.snapshot.compact", new TextEncoder().encode(text));
  const r = await compactSnapshot("d/serf.snapshot", { fs: m3, clock: new ManualClock() });
  assert.equal(r.aliveNodes, 2);
  assert.equal((await replaySnapshot("d/serf.snapshot", { fs: m3 })).lastClock, 7n);
  await assert.rejects(compactSnapshot("d/none.snapshot", { fs: m3 }), Deno.errors.NotFound);
});

Deno.test("Snapshotter creates a binary file with its header in place, and opens an existing empty file as Go text", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  // The header is written beside the file and renamed in: there is never an empty snapshot.
  assert.deepEqual(mem.ops.slice(0, 10), [
    `open ${P}.lock`,
    `remove ${P}.compact`, // a crash's leftovers
    `remove ${P}.replaced`,
    `remove ${P}.convert`,
    `open ${P}.compact`,
    `write ${P}.compact 0 24`,
    `datasync ${P}.compact`,
    `close ${P}.compact`,
    `rename ${P}.compact ${P}`,
    `syncDir d`,
  ]);
  assert.equal(s.format, "binary");
  await s.close();

  // An empty file is what serf leaves before its first write: "auto" keeps its format.
  const serf = await mem.open("d/serf.snapshot", { write: true, create: true });
  await serf.close();
  const t = await Snapshotter.open("d/serf.snapshot", { fs: mem, clock: new ManualClock() });
  assert.equal(t.format, "go-text");
  assert.equal(t.openReport.created, false);
  t.append(alive("a", "10.0.0.1:7946"));
  await t.close();
  assert.equal(
    new TextDecoder().decode(mem.read("d/serf.snapshot")).startsWith("alive: a 10.0.0.1:7946\n"),
    true,
  );
  assert.equal((await replaySnapshot("d/serf.snapshot", { fs: mem })).format, "go-text");
});

Deno.test("Snapshotter binary rejects a lone surrogate instead of merging two names into one", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  // "a\uD800" and "a\uD801" differ, but both would be written as "a\uFFFD".
  assert.throws(() => s.append(alive("a\uD800", "10.0.0.1:7946")), /name contains a lone surrogate/);
  assert.throws(() => s.append(alive("a\uD801", "10.0.0.2:7946")), RangeError);
  assert.throws(() => s.append(alive("b", "10.0.0.2:7946\uDC00")), RangeError);
  assert.throws(() => s.append({ type: "not-alive", name: "\uDFFFx" }), RangeError);
  s.append(alive("c\u00e9\uD83D\uDE00", "10.0.0.3:7946")); // a proper pair is fine
  await s.close();
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["c\u00e9\uD83D\uDE00"]);
});

Deno.test("Snapshotter handleEvent records a member event whole or not at all", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    let clock = 5n;
    const s = await openMem(mem, { format, lamportClock: () => clock });
    await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
    await s.sync();
    const size = mem.read(P).length;
    clock = 9n;
    const bad = format === "go-text" ? "evil\nleave" : "x".repeat(70_000);
    for (
      const [members, err] of [
        [[{ name: "b", addr: "10.0.0.2:7946" }, { name: bad, addr: "10.0.0.3:7946" }], RangeError],
        [[{ name: "b", addr: "10.0.0.2:7946" }, { name: "c", addr: 7946 }], TypeError],
        [[{ name: "b", addr: "10.0.0.2:7946" }, null], TypeError],
      ] as const
    ) {
      assert.throws(() => s.handleEvent({ type: "member-join", members } as never), err, format);
      await assert.rejects(
        Promise.resolve().then(() =>
          s.handleEvent({ type: "member-failed", members: [{ name: "a" }, { name: 3 }] } as never)
        ),
        TypeError,
      );
    }
    await s.sync();
    assert.equal(mem.read(P).length, size, `${format}: nothing of the failed events was written`);
    assert.equal(s.stats.fileBytes, size);
    assert.deepEqual(s.aliveNodes().map((n) => n.name), ["a"]);
    assert.equal(s.lastClock, 4n, "the clock of a failed event is not recorded");
    await s.close();
  }
});

Deno.test("Snapshotter open in a missing directory names the snapshot, not its lock file", () =>
  withTempDir(async (dir) => {
    const path = `${dir}/none/s.snap`;
    await assert.rejects(
      Snapshotter.open(path),
      (e: unknown) =>
        e instanceof Deno.errors.NotFound &&
        e.message === `Cannot open "${path}": its directory does not exist`,
    );
  }));

Deno.test("Snapshotter open says when the lock file itself cannot be created, not that the directory is missing", () =>
  withTempDir(async (dir) => {
    // A dangling symlink where the lock file goes: creating it fails with NotFound though the
    // directory is there (as on a file system that lets no file be created beside the snapshot).
    const path = `${dir}/s.snap`;
    await Deno.writeTextFile(path, "alive: a 10.0.0.1:7946\n");
    await Deno.symlink(`${dir}/none/target`, `${path}.lock`);
    const canonical = await Deno.realPath(path);
    await assert.rejects(Snapshotter.open(path), (e: unknown) => {
      assert.ok(e instanceof Deno.errors.NotFound, String(e));
      assert.match(e.message, new RegExp(`^Cannot open "${path}": cannot create its lock file "`));
      assert.ok(e.message.includes(`"${canonical}.lock"`), e.message);
      assert.ok(e.message.includes(`symbolic link to "${dir}/none/target", which does not exist`), e.message);
      return true;
    });
    assert.equal(await Deno.readTextFile(path), "alive: a 10.0.0.1:7946\n");
  }));

Deno.test("A name or address that begins with U+FEFF keeps it (it is not a byte-order mark here)", async () => {
  // Binary: through the live state and a replay.
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("\ufeffx", "\ufeff10.0.0.1:7946"));
  s.append(alive("x", "10.0.0.2:7946"));
  const want = [{ name: "x", addr: "10.0.0.2:7946" }, { name: "\ufeffx", addr: "\ufeff10.0.0.1:7946" }];
  assert.deepEqual(s.aliveNodes(), want);
  await s.close();
  assert.deepEqual((await replaySnapshot(P, { fs: mem })).aliveNodes, want);
  // Go text, as serf reads it (two nodes), and in a warning's quoted line.
  const text = new MemFs();
  const f = await text.open("d/serf.snapshot", { write: true, create: true });
  await f.write(
    new TextEncoder().encode("alive: \ufeffnode-b 10.0.0.1:7946\nalive: node-b 10.0.0.2:7946\n\ufeffbogus\n"),
    0,
  );
  await f.close();
  const state = await replaySnapshot("d/serf.snapshot", { fs: text });
  assert.deepEqual(state.aliveNodes.map((n) => n.name), ["node-b", "\ufeffnode-b"]);
  assert.deepEqual(state.warnings, [{ line: 3, reason: "Unrecognized snapshot line: \ufeffbogus" }]);
});

Deno.test("A Go text file whose first line begins with SNLG is still Go text", async () => {
  for (const body of ["SNLGx\nalive: a 1\n", "SN", "SNLG\u0001\u0000garbage-but-short"]) {
    const mem = new MemFs();
    const f = await mem.open("d/t.snapshot", { write: true, create: true });
    await f.write(new TextEncoder().encode(body), 0);
    await f.close();
    const state = await replaySnapshot("d/t.snapshot", { fs: mem });
    assert.equal(state.format, "go-text", JSON.stringify(body));
  }
  const mem = new MemFs();
  const f = await mem.open("d/t.snapshot", { write: true, create: true });
  await f.write(new TextEncoder().encode("SNLGx\nalive: a 1\n"), 0);
  await f.close();
  const s = await Snapshotter.open("d/t.snapshot", { fs: mem, clock: new ManualClock() });
  assert.equal(s.format, "go-text");
  assert.deepEqual(s.aliveNodes(), [{ name: "a", addr: "1" }]);
  assert.equal(s.openReport.brokenCopy, null);
  await s.close();
});

Deno.test("Options that are objects or timeouts are checked at once, naming the option", async () => {
  const mem = new MemFs();
  for (const clock of [{}, 5, "x", null]) {
    await assert.rejects(openMem(mem, { clock } as never), /clock must be a Clock/, String(clock));
  }
  for (const fs of [{}, 5]) {
    await assert.rejects(Snapshotter.open(P, { fs } as never), /fs must be a FileSystem/);
    await assert.rejects(replaySnapshot(P, { fs } as never), /fs must be a FileSystem/);
  }
  for (const parallel of ["no", 0, NaN]) {
    await assert.rejects(replaySnapshot(P, { fs: mem, parallel } as never), /parallel must be a boolean/);
  }
  // null is not "the default", in replay as in open: a caller's null is a bug to report.
  for (const key of ["rejoinAfterLeave", "recovery", "format", "maxWarnings", "parallel", "fs"]) {
    await assert.rejects(replaySnapshot(P, { fs: mem, [key]: null } as never), TypeError, key);
    if (key !== "maxWarnings") await assert.rejects(openMem(mem, { [key]: null } as never), TypeError, key);
  }
  assert.equal(await mem.stat(P), null, "nothing was created");
  const s = await openMem(mem);
  for (
    const [timeoutMs, err] of [[NaN, TypeError], ["1", TypeError], [-1, RangeError], [2 ** 31, RangeError]]
  ) {
    await assert.rejects(s.close({ timeoutMs } as never), err as ErrorConstructor, String(timeoutMs));
  }
  await assert.rejects(s.close({ timeoutMs: NaN }), /timeoutMs must be a number, got NaN/);
  s.append(alive("a", "10.0.0.1:7946"));
  await s.close({ timeoutMs: Infinity }); // waits, as without a timeout
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a"]);
});

Deno.test("Byte-count options must be integers: a fraction failed later, mid-append, instead of at open", async () => {
  const mem = new MemFs();
  await assert.rejects(
    openMem(mem, { bufferSizeMaxBytes: 1048576.5 }),
    /bufferSizeMaxBytes must be an integer/,
  );
  await assert.rejects(openMem(mem, { minCompactSizeBytes: 0.5 }), /minCompactSizeBytes must be an integer/);
  assert.deepEqual(mem.files(), []);
  // A fractional interval is a valid timer delay.
  const s = await openMem(mem, { syncIntervalMs: 1.5 });
  await s.close();
});

Deno.test("A misspelt option is a TypeError naming it at every entry point, before any file is touched", async () => {
  const mem = new MemFs();
  // `sycn: "always"` ignored would be a log that acknowledges records before they are on disk.
  await assert.rejects(openMem(mem, { sycn: "always" } as never), /unknown option "sycn" \(known: .*sync/);
  await assert.rejects(openMem(mem, { flushIntervalMS: 5 } as never), /did you mean "flushIntervalMs"\?/);
  await assert.rejects(
    compactSnapshot(P, { fs: mem, recover: "strict" } as never),
    /unknown option "recover"/,
  );
  assert.deepEqual(mem.files(), [], "no snapshot or lock file was created");
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  await s.sync();
  const before = mem.read(P);
  await assert.rejects(replaySnapshot(P, { fs: mem, rejoinAfterleave: true } as never), /"rejoinAfterLeave"/);
  assert.throws(
    () => readSnapshotRecords(P, { fs: mem, fromat: "binary" } as never),
    /unknown option "fromat"/,
  );
  await assert.rejects(
    convertSnapshot(P, "d/out.txt", { fs: mem, to: "go-text", onprogress: () => {} } as never),
    /did you mean "onProgress"/,
  );
  await assert.rejects(s.close({ timeout: 5 } as never), /Cannot close ".*": unknown option "timeout"/);
  s.append(alive("b", "10.0.0.2:7946")); // the bad close did not close it
  await s.close();
  assert.deepEqual(mem.read(P).subarray(0, before.length), before);
  assert.equal(await mem.stat("d/out.txt"), null);
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a", "b"]);
});

Deno.test("compactSnapshot of a missing file is NotFound and creates nothing", async () => {
  const mem = new MemFs();
  await assert.rejects(compactSnapshot("d/none.snap", { fs: mem }), Deno.errors.NotFound);
  assert.deepEqual(mem.files(), []);
});

Deno.test("The error classes keep what they report", () => {
  assert.equal(new BackpressureError("a", 1024).bufferedBytes, 1024);
  assert.equal(new ClosedError("a", "sync").action, "sync");
  assert.equal(new PoisonedError("a", "append to", new Error("EIO")).action, "append to");
});

Deno.test("Snapshotter after leave() writes a member clock only if it moved, as serf (whose Leave keeps its clock)", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    let lamport = 2n;
    const s = await openMem(mem, { format, lamportClock: () => lamport });
    await s.handleEvent({ type: "member-join", members: [{ name: "a", addr: "10.0.0.1:7946" }] });
    lamport = 3n;
    await s.handleEvent({ type: "member-join", members: [{ name: "b", addr: "10.0.0.2:7946" }] });
    await s.handleEvent({ type: "user", ltime: 5n });
    await s.leave();
    assert.equal(s.lastClock, 0n, "the state a replay gives: leave resets the clocks");
    await s.close(); // Time()-1 = 2: not newer than the clock serf still holds
    const state = await replaySnapshot(P, { fs: mem });
    assert.deepEqual([state.aliveNodes, state.lastClock, state.lastEventClock], [[], 0n, 0n], format);
    if (format === "go-text") assert.match(text.decode(mem.read(P)), /\nleave\n$/);
    // A clock that moved after the leave is written (fixture 05: serf's shutdown does it).
    lamport = 5n;
    const again = await openMem(mem, { format, lamportClock: () => lamport });
    await again.close();
    assert.equal((await replaySnapshot(P, { fs: mem })).lastClock, 4n, format);
  }
});

Deno.test("Snapshotter leaves no timer behind when close() overlaps a timer flush", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const s = await openMem(mem, { clock }); // sync "interval": a flush arms the fsync timer
  s.append(alive("a", "10.0.0.1:7946"));
  clock.advance(500); // the timer flush starts writing
  await s.close();
  await s.settled();
  assert.equal(clock.pending, 0);
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a"]);
});

Deno.test("Bad arguments to close, compactSnapshot, the clocks and FaultFs are TypeError or RangeError, never a half-done call", async () => {
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  // A comment or coordinate with a lone surrogate: RangeError, as for names (and as in go-text).
  assert.throws(() => s.append({ type: "comment", text: "x\ud800y" }), RangeError);
  assert.throws(() => s.append({ type: "coordinate", text: "\udc00" }), RangeError);
  await assert.rejects(s.close(null as unknown as { timeoutMs?: number }), TypeError); // rejected, not thrown
  await assert.rejects(s.close(5 as unknown as { timeoutMs?: number }), TypeError);
  await s.close(); // the bad calls did not close it
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
  await assert.rejects(compactSnapshot(P, null as unknown as { fs: MemFs }), TypeError);

  const clock = new ManualClock();
  let fired = 0;
  clock.setTimeout(() => fired++, 10);
  for (const ms of [NaN, -5, Infinity]) assert.throws(() => clock.advance(ms), RangeError, String(ms));
  for (const ms of ["5", 5n, undefined]) {
    assert.throws(() => clock.advance(ms as unknown as number), TypeError, String(ms));
  }
  assert.equal(clock.now(), 0);
  assert.throws(() => clock.setTimeout("x" as unknown as () => void, 1), TypeError);
  assert.throws(() => clock.setTimeout(() => {}, NaN), TypeError);
  clock.advance(10);
  assert.equal(fired, 1, "the clock still runs");

  const fs = new FaultFs(new MemFs());
  assert.throws(() => fs.failNext("wirte" as "write"), TypeError);
  assert.throws(() => fs.failNext("write", "str" as unknown as Error), TypeError);
  assert.throws(() => new FaultFs(null as unknown as MemFs), TypeError);
  await fs.stat("d").catch(() => {}); // not a state-changing step
  const file = await fs.open("f", { create: true, write: true });
  await file.write(new Uint8Array(1), 0);
  await file.close();
  assert.equal(fs.opCount, 3);
  // A crash armed at a step that already happened would never come: the test would pass
  // without one.
  assert.throws(() => fs.crashAt(2), /3 steps already happened/);
  fs.crashAt(3);
  await assert.rejects(fs.open("f", { write: true }), (e) => FaultFs.isSimulatedCrash(e));
});

Deno.test("new Snapshotter() from JavaScript is a TypeError that names Snapshotter.open", () => {
  const Ctor = Snapshotter as unknown as new () => unknown;
  assert.throws(
    () => new Ctor(),
    (e: unknown) => e instanceof TypeError && /Snapshotter\.open/.test(e.message),
  );
});

Deno.test("An injected clock whose setTimeout throws does not fail an append whose record is staged", async () => {
  const mem = new MemFs();
  const errors: unknown[] = [];
  const clock = new ManualClock();
  const s = await openMem(mem, { clock, onBackgroundError: (e) => errors.push(e) });
  clock.setTimeout = (): never => {
    throw new Error("clock broke");
  };
  // The append resolves: its record is staged and written by the next sync, once, not twice
  // by a caller retrying an append that threw after staging.
  await s.append(alive("a", "10.0.0.1:1"));
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /clock broke/);
  await s.sync();
  await s.close();
  const state = await replaySnapshot(P, { fs: mem });
  assert.equal(state.records, 1);
  assert.deepEqual(state.aliveNodes, [{ name: "a", addr: "10.0.0.1:1" }]);
});
