// Snapshotter under failure: failed fsyncs and writes (raft-wal-style fault injection), a crash
// before every step of a compaction, torn tails at every byte offset and corruption in the middle
// (an etcd-style harness), torn MemFs crashes, and a seeded fuzz against a Map model.
import assert from "node:assert/strict";
import {
  BackpressureError,
  ClosedError,
  CorruptionError,
  crc32c,
  FileChangedError,
  LockedError,
  ManualClock,
  PoisonedError,
  readSnapshotRecords,
  replaySnapshot,
  type SnapshotRecord,
  Snapshotter,
  type SnapshotterOptions,
} from "../mod.ts";
import { FaultFs } from "../src/fs/fault_fs.ts";
import type { FileHandle, FileSystem, OpenOptions } from "../src/fs/types.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import { encodeFileHeader, FileKind, frameSize } from "../src/core/frame.ts";
import { writePolicy } from "../src/serf/snapshotter.ts";
import { applyFaults } from "../src/serf/_codec.ts";
import { fuzzIterations, Rng, testSeed } from "./_rng.ts";
import { asVersion1 } from "./_tmp.ts";
import { nameHoldingAFrame } from "./_crafted.ts";

const P = "d/s.snap";

function alive(name: string, addr: string): SnapshotRecord {
  return { type: "alive", name, addr };
}

/** For background failures a test injects on purpose and checks otherwise. */
const QUIET = (): void => {};

function openMem(fs: MemFs | FaultFs, options: SnapshotterOptions = {}): Promise<Snapshotter> {
  return Snapshotter.open(P, { fs, clock: new ManualClock(), ...options });
}

/** A Snapshotter (sync "never") on a FaultFs over a MemFs, with node "a" synced; `before` is the file then. */
async function oneRecordSynced(): Promise<{ mem: MemFs; fs: FaultFs; s: Snapshotter; before: Uint8Array }> {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const s = await openMem(fs, { sync: "never" });
  s.append(alive("a", "10.0.0.1:7946"));
  await s.sync();
  return { mem, fs, s, before: mem.read(P) };
}

interface State {
  alive: { name: string; addr: string }[];
  clocks: bigint[];
}

function stateOf(s: Snapshotter): State {
  return { alive: s.aliveNodes(), clocks: [s.lastClock, s.lastEventClock, s.lastQueryClock] };
}

async function reopenState(mem: MemFs, options: SnapshotterOptions = {}): Promise<State> {
  const s = await openMem(mem, options);
  try {
    return stateOf(s);
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 7. Failed fsync and failed writes

Deno.test("Snapshotter refuses writes after a failed fsync until reopened", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const s = await openMem(fs, { sync: "never" });
  s.append(alive("a", "10.0.0.1:7946"));
  s.append(alive("b", "10.0.0.2:7946"));
  await s.sync();
  s.append(alive("c", "10.0.0.3:7946"));
  fs.failNextSync();
  await assert.rejects(s.sync(), PoisonedError);
  assert.throws(() => s.append(alive("d", "10.0.0.4:7946")), PoisonedError);
  assert.throws(() => s.handleEvent({ type: "user", ltime: 1n }), PoisonedError);
  await assert.rejects(s.sync(), PoisonedError); // a retry must not "succeed" (fsyncgate)
  await assert.rejects(s.compact(), PoisonedError);
  const synced = fs.syncCounts.get(P);
  await assert.rejects(s.close(), /not fsynced/); // close reports the loss and releases the lock
  assert.equal(fs.syncCounts.get(P), synced);
  mem.crash(); // the failed fsync's bytes were never durable
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a", "b"]);
});

Deno.test("Snapshotter recovers from a failed write with the records still buffered", async () => {
  const { mem, fs, s, before } = await oneRecordSynced();
  s.append(alive("b", "10.0.0.2:7946"));
  fs.failNextWrite();
  await assert.rejects(s.sync(), /records stay buffered/);
  assert.deepEqual(mem.read(P), before);
  assert.ok(s.stats.bufferedBytes > 0);
  assert.equal(s.stats.fileBytes, before.length);
  s.append(alive("c", "10.0.0.3:7946")); // not poisoned
  await s.sync();
  assert.equal(s.stats.bufferedBytes, 0);
  mem.crash();
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a", "b", "c"]);
});

Deno.test("Snapshotter cuts a partial write on a full disk back to the last good frame", async () => {
  const { mem, fs, s, before } = await oneRecordSynced();
  for (let i = 0; i < 10; i++) s.append(alive(`n${i}`, "10.0.0.9:7946"));
  fs.failAfterBytes(50); // one frame and a bit: a torn frame reaches the file
  await assert.rejects(s.sync(), (e: unknown) => e instanceof Error && /No space left/.test(e.message));
  assert.deepEqual(mem.read(P), before); // truncated back
  await assert.rejects(s.sync(), /No space left/); // still full: still nothing lost
  assert.deepEqual(mem.read(P), before);
  fs.failAfterBytes(Infinity);
  await s.sync();
  mem.crash();
  const names = (await reopenState(mem)).alive.map((n) => n.name);
  assert.deepEqual(names, ["a", ...Array.from({ length: 10 }, (_, i) => `n${i}`)]);
});

/** A log on a FaultFs over a MemFs with a ManualClock; `errors` collects what goes to onBackgroundError. */
async function watchedLog(
  options: SnapshotterOptions,
): Promise<{ mem: MemFs; fs: FaultFs; clock: ManualClock; errors: unknown[]; s: Snapshotter }> {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const s = await openMem(fs, { clock, onBackgroundError: (e) => errors.push(e), ...options });
  return { mem, fs, clock, errors, s };
}

Deno.test("Snapshotter reports a failed timer flush to onBackgroundError and keeps the records", async () => {
  const { mem, fs, clock, errors, s } = await watchedLog({ sync: "never", flushIntervalMs: 100 });
  const before = mem.read(P);
  s.append(alive("a", "10.0.0.1:7946"));
  fs.failNextWrite();
  clock.advance(100);
  await s.settled();
  assert.deepEqual(mem.read(P), before);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /Cannot write .*records stay buffered/);
  // sync() reports its own outcome: it writes the records the timer could not, and they are durable.
  await s.sync();
  mem.crash();
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
});

Deno.test("Snapshotter ignores an onBackgroundError that throws or rejects (an async handler): no unhandled rejection", async () => {
  // A rejected promise is unhandled (and Deno ends the process) unless something attaches a
  // rejection handler to it: the handler's promise records whether one was attached, so the
  // test needs no turn of the event loop to see Deno's report.
  class Watched<T> extends Promise<T> {
    static caught = 0;
    override then<A = T, B = never>(
      onOk?: ((v: T) => A | PromiseLike<A>) | null,
      onErr?: ((e: unknown) => B | PromiseLike<B>) | null,
    ): Promise<A | B> {
      if (typeof onErr === "function") Watched.caught++;
      return super.then(onOk, onErr);
    }
  }
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const clock = new ManualClock();
  const seen: unknown[] = [];
  for (
    const handler of [
      (e: unknown): Promise<void> => {
        seen.push(e);
        return Watched.reject(new Error("logger down")) as Promise<void>;
      },
      (e: unknown): void => {
        seen.push(e);
        throw new Error("logger down");
      },
    ]
  ) {
    const s = await openMem(fs, { clock, sync: "never", flushIntervalMs: 100, onBackgroundError: handler });
    s.append(alive("a", "10.0.0.1:7946"));
    fs.failNextWrite();
    clock.advance(100); // the timer flush fails; its error goes to the handler
    await s.settled();
    await s.close(); // the records were kept and written
    assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
  }
  assert.equal(seen.length, 2);
  assert.equal(Watched.caught, 1, "the async handler's rejection was handled");
});

Deno.test('Snapshotter with sync: "interval" keeps fsyncing by timer after a failed timer flush', async () => {
  // The failed flush's error used to wait for the next sync(), and the sync timer's own sync()
  // took it, failed with it without writing, and put it back: no timer fsync ever again.
  const { mem, fs, clock, errors, s } = await watchedLog({
    sync: "interval",
    flushIntervalMs: 100,
    syncIntervalMs: 100,
  });
  for (let round = 0; round < 20; round++) {
    if (round === 5) fs.failNextWrite();
    s.append(alive(`n${round}`, `10.0.0.${round}:7946`));
    clock.advance(100); // the flush
    await s.settled();
    clock.advance(100); // the fsync
    await s.settled();
  }
  assert.equal(errors.length, 1);
  assert.equal(s.stats.durableBytes, s.stats.fileBytes);
  assert.equal(s.stats.bufferedBytes, 0);
  mem.crash();
  assert.equal((await reopenState(mem)).alive.length, 20);
});

Deno.test("Snapshotter's flush timer writes what a busy or failed flush left, without another append", async () => {
  // A timer that fired while a flush was writing found it busy and did nothing; a timer flush
  // whose write failed was not retried: the records waited for the next append or close.
  for (const sync of ["never", "interval"] as const) {
    const { mem, fs, clock, errors, s } = await watchedLog({ sync, flushIntervalMs: 10, syncIntervalMs: 10 });
    let injected = false;
    fs.beforeOp = (op) => {
      if (!injected && op.startsWith(`write ${P}`)) {
        injected = true;
        s.append(alive("late", "10.0.0.9:7946")); // after the flush took the buffer
        clock.advance(10); // its timer fires while the flush writes
      }
    };
    for (let i = 0; s.stats.bufferedBytes < (1 << 20); i++) s.append(alive(`n${i}`, "10.0.0.1:7946"));
    await s.settled(); // the 1 MiB flush
    for (let k = 0; k < 3; k++) (clock.advance(10), await s.settled());
    assert.equal(s.stats.bufferedBytes, 0, `${sync}: the late record was written by a timer`);
    s.append(alive("after", "10.0.0.8:7946"));
    fs.failNextWrite();
    for (let k = 0; k < 3; k++) (clock.advance(10), await s.settled());
    assert.equal(errors.length, 1, sync);
    assert.equal(s.stats.bufferedBytes, 0, `${sync}: the failed flush was tried again by a timer`);
    if (sync === "interval") {
      assert.equal(s.stats.durableBytes, s.stats.fileBytes);
      mem.crash();
      assert.ok((await reopenState(mem)).alive.some((n) => n.name === "after"));
    } else await s.close();
  }
});

Deno.test("Snapshotter keeps a deferred member clock when an explicit clock is refused for back-pressure", async () => {
  // The explicit clock dropped the deferred one before it was itself staged: refused, it took
  // an acknowledged member clock with it (in the file: never written, not even by close).
  for (const format of ["binary", "go-text"] as const) {
    let lamport = 1n;
    const mem = new MemFs();
    const s = await openMem(mem, {
      format,
      sync: "always",
      bufferSizeMaxBytes: 1 << 20,
      lamportClock: () => lamport,
    });
    const pending: Promise<void>[] = [];
    assert.throws(() => {
      for (;;) pending.push(s.append({ type: "clock", value: 50n })); // as long as the one refused below
    }, BackpressureError);
    lamport = 101n; // the member event defers clock 100: no room needed now
    const joined = s.handleEvent({ type: "member-update", members: [{ name: "x" }] });
    assert.throws(() => s.append({ type: "clock", value: 50n }), BackpressureError);
    await joined;
    await Promise.all(pending);
    assert.equal(s.lastClock, 100n, format);
    mem.crash(); // the handleEvent was acknowledged
    assert.equal((await reopenState(mem)).clocks[0], 100n, format);
  }
});

Deno.test("Snapshotter's member clock tick: a failed sync goes to onBackgroundError, and a poisoned log ticks no more", async () => {
  // With sync: "always" the tick's sync was dropped: its rejection was unhandled, which ends a
  // Deno process.
  let lamport = 1n;
  const { fs, clock, errors, s } = await watchedLog({ sync: "always", lamportClock: () => lamport });
  await s.append(alive("a", "10.0.0.1:7946"));
  fs.failNextSync();
  lamport = 10n;
  clock.advance(500); // the tick records clock 9 and syncs: the fsync fails
  await s.settled();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof PoisonedError, String(errors[0]));
  lamport = 20n;
  const ops = fs.ops.length;
  clock.advance(5000);
  await s.settled();
  assert.equal(fs.ops.length, ops, "no I/O from ticks of a poisoned log");
  assert.equal(errors.length, 1);
  await assert.rejects(s.close(), /Cannot close/);
});

Deno.test("Snapshotter sync() retried in the failed sync's catch tries again", async () => {
  // The failed sync's markers were cleared two microtasks after it settled: a retry in its
  // catch joined it and got the same rejection, with no write tried.
  const { mem, fs, s } = await watchedLog({ sync: "never" });
  s.append(alive("a", "10.0.0.1:7946"));
  fs.failNextWrite();
  await s.sync().catch(() => s.sync());
  mem.crash();
  assert.deepEqual((await reopenState(mem)).alive, [{ name: "a", addr: "10.0.0.1:7946" }]);
});

Deno.test("Snapshotter close() called twice gives both callers the first one's outcome", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const s = await openMem(fs);
  s.append(alive("a", "10.0.0.1:7946"));
  fs.failNextSync();
  const first = s.close();
  const second = s.close();
  assert.equal(second, first);
  await assert.rejects(second, /not fsynced/);
  await assert.rejects(s.close(), /not fsynced/);
  // Bad options are refused without closing.
  const t = await openMem(new MemFs());
  await assert.rejects(t.close({ timeoutMs: -1 }), RangeError);
  t.append(alive("b", "10.0.0.2:7946"));
  await t.close();
});

// ---------------------------------------------------------------------------------------------
// 7b. The file changed behind the log

/** Asserts that `p` rejects with a PoisonedError caused by a FileChangedError matching `reason`. */
async function rejectsChanged(p: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PoisonedError, String(e));
    assert.ok(e.cause instanceof FileChangedError, String(e.cause));
    assert.match(e.cause.reason, reason);
    assert.equal(e.cause.path, P);
    assert.match(e.message, /is no longer the file this log writes/);
    return true;
  });
}

/** The bytes of a closed binary snapshot at `path` in `mem` holding only node `name`. */
async function otherSnapshot(mem: MemFs, path: string, name: string): Promise<Uint8Array> {
  const o = await Snapshotter.open(path, { fs: mem, clock: new ManualClock() });
  o.append(alive(name, "10.9.9.9:7946"));
  await o.close();
  return mem.read(path);
}

Deno.test("Snapshotter refuses to go on when its file was renamed away or removed", async () => {
  for (const how of ["rename", "remove"] as const) {
    const mem = new MemFs();
    const s = await openMem(mem, { sync: "never" });
    s.append(alive("a", "10.0.0.1:7946"));
    await s.sync();
    if (how === "rename") await mem.rename(P, `${P}.bak`);
    else await mem.remove(P);
    s.append(alive("b", "10.0.0.2:7946"));
    // The fsync reached only a file no reopen reads: the sync must not be acknowledged.
    await rejectsChanged(s.sync(), /removed or renamed away/);
    assert.throws(() => s.append(alive("c", "10.0.0.3:7946")), PoisonedError);
    await rejectsChanged(s.compact(), /removed or renamed away/);
    await assert.rejects(s.close(), /Cannot close/);
    assert.equal(await mem.stat(P), null, "nothing was recreated under the path");
    // The lock is released: a reopen starts on what is at the path now (nothing).
    assert.deepEqual((await reopenState(mem)).alive, []);
  }
});

Deno.test("Snapshotter never compacts over a file put in its place, and says so on the next sync", async () => {
  for (const first of ["sync", "compact"] as const) {
    const mem = new MemFs();
    const s = await openMem(mem, { sync: "never" });
    s.append(alive("a", "10.0.0.1:7946"));
    await s.sync();
    // An operator restores another snapshot over the live one, as `mv other.snap s.snap` does.
    const other = await otherSnapshot(mem, "d/other.snap", "restored");
    await mem.rename("d/other.snap", P);
    s.append(alive("b", "10.0.0.2:7946"));
    if (first === "sync") await rejectsChanged(s.sync(), /another file was put in its place/);
    await rejectsChanged(s.compact(), /another file was put in its place/);
    assert.deepEqual(mem.read(P), other, "the restored file is untouched");
    assert.equal(await mem.stat(`${P}.compact`), null);
    await assert.rejects(s.close(), /Cannot close/);
    assert.deepEqual((await reopenState(mem)).alive, [{ name: "restored", addr: "10.9.9.9:7946" }]);
  }
});

Deno.test("Snapshotter with sync never notices a moved file at its next timer flush", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const s = await Snapshotter.open(P, {
    fs: mem,
    clock,
    sync: "never",
    flushIntervalMs: 100,
    onBackgroundError: (e) => errors.push(e),
  });
  s.append(alive("a", "10.0.0.1:7946"));
  clock.advance(100);
  await s.settled();
  assert.ok(mem.read(P).length > 24, "the timer flushed");
  await mem.rename(P, `${P}.moved`);
  s.append(alive("b", "10.0.0.2:7946"));
  clock.advance(100);
  await s.settled();
  assert.equal(errors.length, 1); // told at once, by the handler
  assert.ok(errors[0] instanceof PoisonedError && errors[0].cause instanceof FileChangedError);
  assert.throws(() => s.append(alive("c", "10.0.0.3:7946")), (e: unknown) => {
    assert.ok(e instanceof PoisonedError && e.cause instanceof FileChangedError, String(e));
    return true;
  });
  await assert.rejects(s.close(), /Cannot close/);
});

Deno.test("Snapshotter notices its file's size changing under it before a write or a compaction: a copy over it, a truncation, growth", async () => {
  const changes = {
    // `cp other.snap s.snap`: the same file, other bytes (shorter than the log's file here).
    copy: async (mem: MemFs) => mem.write(P, await otherSnapshot(mem, "d/o.snap", "copied-over")),
    truncate: (mem: MemFs) => mem.write(P, mem.read(P).subarray(0, mem.read(P).length - 8)),
    // Another writer appending (serf on a go-text file takes no lock).
    grow: (mem: MemFs) => mem.write(P, new Uint8Array([...mem.read(P), ...new Uint8Array(64)])),
  };
  for (const [how, change] of Object.entries(changes)) {
    // A sync checks before its write: a shorter file copied over the log's would otherwise be
    // extended by the write to the size the checks after it expect, a hole of zeros before it
    // (where a replay stops). A compaction checks before its rename.
    for (const next of ["sync", "compact"]) {
      const mem = new MemFs();
      const s = await openMem(mem, { sync: "never" });
      s.append(alive("a", "10.0.0.1:7946"));
      await s.sync();
      await change(mem);
      const changed = mem.read(P);
      s.append(alive("b", "10.0.0.2:7946"));
      const reason = /bytes long where this log wrote \d+: something else wrote to it or truncated it/;
      if (next === "compact") {
        await rejectsChanged(s.compact(), reason);
        assert.deepEqual(mem.read(P), changed, `${how}: the changed file is renamed over`);
      } else {
        await rejectsChanged(s.sync(), reason);
        assert.deepEqual(mem.read(P), changed, `${how}: the changed file is written to`);
      }
      await s.close().catch(() => {});
    }
  }
});

Deno.test("Snapshotter's file check passes through compactions, reopens and every sync mode", async () => {
  // No false alarm: after a compaction the log writes a new file (a new id), and checks that.
  for (const sync of ["never", "always", "interval"] as const) {
    const mem = new MemFs();
    const clock = new ManualClock();
    let s = await Snapshotter.open(P, { fs: mem, clock, sync, minCompactSizeBytes: 0 });
    for (let i = 0; i < 50; i++) {
      const p = s.append(alive(`n${i % 7}`, `10.0.0.${i}:7946`));
      if (i % 10 === 9) await s.compact();
      if (sync === "always") await p;
      else if (i % 5 === 0) await s.sync();
    }
    await s.sync();
    await s.close();
    s = await Snapshotter.open(P, { fs: mem, clock, sync });
    assert.equal(s.aliveNodes().length, 7);
    s.append(alive("late", "10.1.1.1:7946"));
    await s.sync();
    await s.close();
  }
});

Deno.test("Snapshotter file-change fuzz: no false alarm, and after a change no sync is acknowledged and nothing renamed over", async () => {
  const seed = testSeed("Snapshotter file-change fuzz");
  const rng = new Rng(seed);
  for (let it = 0; it < fuzzIterations(150); it++) {
    const mem = new MemFs();
    const clock = new ManualClock();
    const format = rng.pick(["binary", "go-text"] as const);
    const sync = rng.pick(["interval", "always", "never"] as const);
    const action = rng.pick(["none", "rename", "remove", "replace", "grow"] as const);
    const where = `iteration ${it} (${format}, sync ${sync}, ${action})`;
    const s = await Snapshotter.open(P, {
      fs: mem,
      clock,
      format,
      sync,
      minCompactSizeBytes: rng.pick([0, 300, 2 ** 40]),
      flushIntervalMs: 10,
      syncIntervalMs: 20,
      parallel: false,
      onBackgroundError: QUIET, // the change's errors are checked through sync() below
    });
    // Random appends, syncs, compactions and timer ticks, some left in flight.
    const burst = async (n: number): Promise<PromiseSettledResult<void>[]> => {
      const started: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const x = rng.next();
        try {
          if (x < 0.6) {
            const p = s.append(alive(`n${rng.int(8)}`, `10.0.0.${rng.int(250)}:7946`));
            if (sync === "always") started.push(p);
          } else if (x < 0.8) started.push(s.sync());
          else if (x < 0.9) started.push(s.compact());
          else if (x < 0.95) clock.advance(rng.int(30));
          else await Promise.resolve();
        } catch (e) {
          started.push(Promise.reject(e));
        }
      }
      return await Promise.allSettled(started);
    };
    const before = await burst(rng.int(30));
    for (const r of before) {
      assert.equal(
        r.status,
        "fulfilled",
        `${where}: before the change: ${String((r as PromiseRejectedResult).reason)}`,
      );
    }
    let put: Uint8Array | null = null;
    if (action === "rename") await mem.rename(P, `${P}.moved`);
    else if (action === "remove") await mem.remove(P);
    else if (action === "replace") {
      put = await otherSnapshot(mem, "d/other.snap", "put-there");
      await mem.rename("d/other.snap", P);
    } else if (action === "grow") mem.write(P, new Uint8Array([...mem.read(P), ...new Uint8Array(4096)]));
    const after = await burst(rng.int(30));
    // A sync with something to write, issued after everything else.
    let last: Promise<void>;
    try {
      s.append(alive("last", "10.9.9.9:7946"));
      last = s.sync();
    } catch (e) {
      last = Promise.reject(e);
    }
    const settled = (await Promise.allSettled([last]))[0]!;
    if (action === "none") {
      for (const r of [...after, settled]) {
        assert.equal(r.status, "fulfilled", `${where}: ${String((r as PromiseRejectedResult).reason)}`);
      }
      await s.close();
      continue;
    }
    assert.equal(settled.status, "rejected", where);
    const err = (settled as PromiseRejectedResult).reason;
    assert.ok(
      err instanceof PoisonedError && err.cause instanceof FileChangedError,
      `${where}: ${String(err)}`,
    );
    // Whatever failed failed for that reason, and nothing was renamed over the path.
    for (const r of after) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof PoisonedError && r.reason.cause instanceof FileChangedError, where);
      }
    }
    await assert.rejects(s.close(), /Cannot close/);
    if (put !== null) assert.deepEqual(mem.read(P), put, where);
    if (action === "rename" || action === "remove") assert.equal(await mem.stat(P), null, where);
  }
});

Deno.test("Snapshotter on the real file system: mv of another file over the live one is caught", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/s.snap`;
    const s = await Snapshotter.open(path, { sync: "never" });
    s.append(alive("a", "10.0.0.1:7946"));
    await s.sync();
    const o = await Snapshotter.open(`${dir}/o.snap`);
    o.append(alive("other", "10.9.9.9:7946"));
    await o.close();
    await Deno.rename(`${dir}/o.snap`, path);
    s.append(alive("b", "10.0.0.2:7946"));
    await assert.rejects(s.sync(), (e: unknown) => {
      assert.ok(e instanceof PoisonedError && e.cause instanceof FileChangedError, String(e));
      assert.match(e.message, /another file was put in its place/);
      return true;
    });
    await s.close().catch(() => {});
    assert.deepEqual((await replaySnapshot(path)).aliveNodes, [{ name: "other", addr: "10.9.9.9:7946" }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// 8. Crash window of a compaction

const PRE_RECORDS = 40;

/** The same durable pre-state every time: a file worth compacting, synced and closed. */
async function compactionPreState(format: "binary" | "go-text" = "binary"): Promise<MemFs> {
  const mem = new MemFs();
  const s = await openMem(mem, { format });
  for (let i = 0; i < PRE_RECORDS; i++) s.append(alive(`n${i % 4}`, `10.0.0.${i}:7946`));
  s.append({ type: "clock", value: 7n });
  await s.close();
  return mem;
}

Deno.test("Snapshotter survives a crash before every step of a compaction, both formats", async () => {
  for (const format of ["binary", "go-text"] as const) {
    await crashEveryCompactionStep(format);
  }
});

async function crashEveryCompactionStep(format: "binary" | "go-text"): Promise<void> {
  const record = new FaultFs(await compactionPreState(format));
  const s0 = await openMem(record);
  s0.append(alive("new", "10.0.0.99:7946")); // buffered: lands in the compacted file only
  const before = stateOf(s0);
  const start = record.opCount;
  await s0.compact();
  const steps = record.ops.slice(start);
  await s0.close();
  assert.ok(steps.some((op) => op.startsWith("rename ")), steps.join("\n"));

  const preMem = await compactionPreState(format);
  const preBytes = preMem.read(P).length;
  const pre = await reopenState(preMem);
  let sawOld = false;
  let sawNew = false;
  // After the directory fsync the compaction is durable: what follows is the log's new handle
  // (a failure there poisons the log) and housekeeping (closes, and the removal of the replaced
  // file's second name), whose failure it ignores.
  const durableAt = steps.findIndex((op) => op.startsWith("syncDir "));
  assert.ok(
    durableAt > 0 &&
      steps.slice(durableAt + 1).every((op) => op === `open ${P}` || /^(close|remove) /.test(op)),
    steps.join("\n"),
  );
  for (let i = 0; i <= steps.length; i++) {
    const mem = await compactionPreState(format);
    const fs = new FaultFs(mem);
    const s = await openMem(fs);
    s.append(alive("new", "10.0.0.99:7946"));
    const at = fs.opCount;
    assert.equal(at, start, "the run must repeat the recorded one");
    fs.crashAt(at + i);
    const step = steps[i] ?? "(after the last step)";
    let finished = false;
    try {
      await s.compact();
      finished = true;
      assert.ok(i > durableAt, `compaction finished although it crashed before ${step}`);
    } catch (e) {
      // Before the rename: the wrapped crash; after it: the snapshotter poisons itself.
      const err = e as Error;
      assert.ok(FaultFs.isSimulatedCrash(err.cause) || err instanceof PoisonedError, String(e));
    }
    mem.crash();
    const size = (await mem.stat(P))?.size;
    assert.ok(size !== undefined && size > 0, `snapshot missing or empty after a crash before ${step}`);
    const state = await reopenState(mem);
    // Once compact() resolved, its result (with the buffered record) must survive.
    if (finished || state.alive.some((n) => n.name === "new")) {
      assert.deepEqual(state, before, `${format}: crash before ${step}`);
      sawNew = true;
    } else {
      assert.deepEqual(state, pre, `${format}: crash before ${step}`);
      assert.equal(size, preBytes, `crash before ${step}: old file changed`);
      sawOld = true;
    }
    assert.equal(await mem.stat(`${P}.compact`), null, `leftover .compact after a crash before ${step}`);
    assert.equal(await mem.stat(`${P}.replaced`), null, `leftover .replaced after a crash before ${step}`);
  }
  assert.ok(sawOld && sawNew, format);
  assert.equal((await replaySnapshot(P, { fs: await compactionPreState(format) })).format, format);
}

Deno.test("Snapshotter keeps the old file and keeps appending when a compaction rename fails", async () => {
  const mem = await compactionPreState();
  const fs = new FaultFs(mem);
  const clock = new ManualClock();
  const s = await openMem(fs, { clock, flushIntervalMs: 100, compactRetryMs: 30_000 });
  const pre = stateOf(s);
  const oldBytes = mem.read(P);
  fs.failNextRename();
  await assert.rejects(s.compact(), /old snapshot is intact/);
  assert.equal(s.stats.compactions, 0);
  assert.deepEqual(mem.read(P), oldBytes);
  assert.equal(await mem.stat(`${P}.compact`), null);
  assert.equal(await mem.stat(`${P}.replaced`), null); // the second name given before the rename
  s.append(alive("x", "10.0.0.50:7946")); // appending keeps working
  await s.sync();
  assert.deepEqual((await replaySnapshot(P, { fs: mem })).aliveNodes.length, pre.alive.length + 1);
  await s.close();
});

Deno.test('Snapshotter with sync: "always": a failed automatic compaction fails no append', async () => {
  // The compaction runs after an append's fsync; its failure once went to the next append's
  // promise, which rejected although nothing about that record failed (and it was written
  // later all the same).
  const { mem, fs, errors, s } = await watchedLog({
    sync: "always",
    minCompactSizeBytes: 1024,
    compactRetryMs: 0,
  });
  fs.failNextRename();
  for (let i = 0; i < 100; i++) await s.append(alive(`n${i % 2}`, `10.0.0.${i}:7946`));
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /Cannot compact .*old snapshot is intact/);
  assert.ok(s.stats.compactions >= 1, "the next compaction (no back-off here) succeeded");
  mem.crash(); // every awaited append is durable
  assert.deepEqual((await reopenState(mem)).alive, [
    { name: "n0", addr: "10.0.0.98:7946" },
    { name: "n1", addr: "10.0.0.99:7946" },
  ]);
});

Deno.test("Snapshotter compaction: the replaced file keeps a second name until a background remove", async () => {
  // Whoever drops a file's last name frees its blocks: the close of the replaced file must
  // not be that call (it is synchronous in Deno), so the file is linked aside first.
  const mem = await compactionPreState();
  const s = await openMem(mem);
  s.append(alive("new", "10.0.0.99:7946"));
  const expected = stateOf(s);
  mem.ops.length = 0;
  await s.compact();
  const ops = mem.ops.slice();
  const at = (op: string): number => {
    const i = ops.indexOf(op);
    assert.ok(i >= 0, `${op} missing from:\n${ops.join("\n")}`);
    return i;
  };
  assert.ok(at(`datasync ${P}.compact`) < at(`link ${P} ${P}.replaced`), ops.join("\n"));
  assert.ok(at(`link ${P} ${P}.replaced`) < at(`rename ${P}.compact ${P}`));
  assert.ok(at(`rename ${P}.compact ${P}`) < at("syncDir d"));
  assert.ok(at("syncDir d") < at(`open ${P}`), ops.join("\n")); // the log's new handle, by the snapshot's name
  assert.ok(at(`open ${P}`) < at(`close ${P}`)); // then the replaced file's handle (its path at open)
  assert.ok(at(`close ${P}`) < at(`remove ${P}.replaced`));
  assert.deepEqual(stateOf(s), expected);
  s.append(alive("after", "10.0.0.98:7946")); // appends go to the new file
  const after = stateOf(s);
  await s.close();
  assert.equal(await mem.stat(`${P}.replaced`), null);
  assert.deepEqual(await reopenState(mem), after);
});

Deno.test("Snapshotter: a sync queued behind a compaction that poisons the log is refused, not acknowledged", async () => {
  // The compaction renames its file in and then fails to reopen the snapshot: the log is
  // poisoned. A sync that was already waiting for its I/O turn must not write anywhere (the old
  // handle's file has no name any more: data written there would be acknowledged and lost).
  // Found by the fault fuzz (seed 4277569394).
  const mem = await compactionPreState();
  const fs = new FaultFs(mem);
  const s = await openMem(fs, { sync: "never" });
  s.append(alive("a", "10.0.0.1:7946"));
  let opens = 0;
  fs.beforeOp = (op) => {
    // The reopen after the rename (the compaction's first open is of <path>.compact).
    if (op === `open ${P}` && ++opens === 1) throw new Error("injected: EMFILE");
  };
  const compaction = s.compact();
  s.append(alive("b", "10.0.0.2:7946")); // staged after the image was built
  const synced = s.sync(); // waits for the compaction's turn
  await assert.rejects(compaction, PoisonedError);
  await assert.rejects(synced, PoisonedError);
  await s.close().catch(() => {});
  mem.crash();
  const state = await reopenState(mem);
  assert.ok(state.alive.some((n) => n.name === "a"), "the compacted image holds the record staged before it");
});

Deno.test("Snapshotter compaction without hard links: a failed or missing link only costs the close", async () => {
  for (const variant of ["link fails", "no link method"] as const) {
    const mem = await compactionPreState();
    const fault = new FaultFs(mem);
    // A FileSystem of its own (a custom one, say) with no `link`.
    const fs: FileSystem = variant === "no link method"
      ? {
        open: (path: string, options: OpenOptions): Promise<FileHandle> => mem.open(path, options),
        stat: (path: string) => mem.stat(path),
        rename: (from: string, to: string) => mem.rename(from, to),
        remove: (path: string) => mem.remove(path),
        syncDir: (path: string) => mem.syncDir(path),
      }
      : fault;
    const s = await openMem(mem, { fs });
    s.append(alive("new", "10.0.0.99:7946"));
    const expected = stateOf(s);
    if (variant === "link fails") fault.failNext("link");
    mem.ops.length = 0;
    await s.compact();
    assert.equal(s.stats.compactions, 1, variant);
    assert.ok(!mem.ops.some((op) => op.includes(".replaced")), `${variant}:\n${mem.ops.join("\n")}`);
    assert.ok(mem.ops.indexOf(`close ${P}`) > mem.ops.indexOf(`rename ${P}.compact ${P}`), variant);
    await s.close();
    assert.deepEqual(await reopenState(mem), expected, variant);
  }
});

Deno.test("Snapshotter compacts a multi-chunk image, and a failed middle chunk keeps the old file", async () => {
  for (const format of ["binary", "go-text"] as const) {
    // 30k nodes with 40-byte names: a compacted image of ~2 MB, written in several chunks.
    const mem = new MemFs();
    const s = await openMem(mem, { format });
    for (let i = 0; i < 30_000; i++) {
      s.append(alive(`node-${String(i).padStart(35, "0")}`, `10.1.${i >> 8 & 255}.${i & 255}:7946`));
    }
    s.append({ type: "clock", value: 99n });
    const before = stateOf(s);
    await s.close();
    const oldBytes = mem.read(P);

    const fs = new FaultFs(mem);
    const s2 = await openMem(fs, { format });
    let tmpWrites = 0;
    fs.beforeOp = (op) => {
      if (op.startsWith(`write ${P}.compact `) && ++tmpWrites === 2) throw new Error("injected: disk full");
    };
    await assert.rejects(s2.compact(), /old snapshot is intact/);
    assert.ok(tmpWrites >= 2, `${format}: the image was written in ${tmpWrites} chunk(s)`);
    assert.deepEqual(mem.read(P), oldBytes, `${format}: old file changed`);
    assert.equal(await mem.stat(`${P}.compact`), null);

    tmpWrites = 0;
    fs.beforeOp = (op) => {
      if (op.startsWith(`write ${P}.compact `)) tmpWrites++;
    };
    await s2.compact();
    assert.ok(tmpWrites > 2, `${format}: ${tmpWrites} chunk writes`);
    assert.deepEqual(stateOf(s2), before);
    await s2.close();
    const replayed = await replaySnapshot(P, { fs: mem });
    assert.deepEqual({
      alive: replayed.aliveNodes,
      clocks: [replayed.lastClock, replayed.lastEventClock, replayed.lastQueryClock],
    }, before);
  }
});

/**
 * `mem` as a FileSystem whose handles take `hooks` in place of their own methods (the file
 * system's other calls go straight to `mem`).
 */
function hookedMemFs(mem: MemFs, hooks: (h: FileHandle) => Partial<FileHandle>): FileSystem {
  return {
    async open(path: string, options: OpenOptions): Promise<FileHandle> {
      const h = await mem.open(path, options);
      return {
        read: (buf, position) => h.read(buf, position),
        write: (data, position) => h.write(data, position),
        truncate: (length) => h.truncate(length),
        datasync: () => h.datasync(),
        size: () => h.size(),
        tryLock: () => h.tryLock(),
        close: () => h.close(),
        ...hooks(h),
      };
    },
    stat: (path) => mem.stat(path),
    rename: (from, to) => mem.rename(from, to),
    link: (existing, newPath) => mem.link(existing, newPath),
    remove: (path) => mem.remove(path),
    syncDir: (path) => mem.syncDir(path),
  };
}

/** `mem` with every byte read counted: for tests that bound a replay's reads, not its time. */
function readCounting(mem: MemFs): { fs: FileSystem; bytes: () => number } {
  let read = 0;
  const fs = hookedMemFs(mem, (h) => ({
    read: async (buf, position) => {
      const n = await h.read(buf, position);
      read += n;
      return n;
    },
  }));
  return { fs, bytes: () => read };
}

/**
 * A MemFs whose writes read their data only after the caller has moved on (as a write on one of
 * Deno's I/O threads does), so a buffer reused while a write is in flight shows up as damage.
 */
function lateWrites(mem: MemFs): FileSystem {
  return hookedMemFs(mem, (h) => ({
    write: async (data, position) => {
      // compactInto emits every chunk synchronously: any await resumes after it returned.
      await null;
      await h.write(data, position);
    },
  }));
}

Deno.test("Snapshotter.open closes every handle when its compaction cannot lock the renamed file", async () => {
  // The compaction on open renames its file in, opens it and locks it; when that lock fails
  // (another process got it) the log is poisoned and the open fails: the new handle stayed
  // open, and a second close of the replaced one could hide the error.
  const mem = await compactionPreState();
  const live = new Set<FileHandle>();
  let opensOfP = 0;
  const fs: FileSystem = {
    async open(path: string, options: OpenOptions): Promise<FileHandle> {
      const h = await mem.open(path, options);
      const refuseLock = path === P && ++opensOfP > 1; // the compacted file, after the rename
      let open = true;
      const handle: FileHandle = {
        read: (buf, position) => h.read(buf, position),
        write: (data, position) => h.write(data, position),
        truncate: (length) => h.truncate(length),
        datasync: () => h.datasync(),
        size: () => h.size(),
        tryLock: () => refuseLock ? Promise.resolve(false) : h.tryLock(),
        close: () => {
          if (!open) return Promise.reject(new Error("closed twice"));
          open = false;
          live.delete(handle);
          return h.close();
        },
      };
      live.add(handle);
      return handle;
    },
    stat: (path) => mem.stat(path),
    rename: (from, to) => mem.rename(from, to),
    link: (existing, newPath) => mem.link(existing, newPath),
    remove: (path) => mem.remove(path),
    syncDir: (path) => mem.syncDir(path),
  };
  await assert.rejects(
    Snapshotter.open(P, { fs, clock: new ManualClock(), minCompactSizeBytes: 0 }),
    (e: unknown) => e instanceof PoisonedError && /locked by another process/.test(String(e)),
  );
  assert.equal(live.size, 0, "every handle closed, the lock file's too");
  assert.equal(opensOfP, 2);
});

Deno.test("Snapshotter compacts images that grow and shrink (the image buffer is reused)", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const s = await openMem(mem, { format, fs: lateWrites(mem) });
    const sizes = [20_000, 10, 30_000, 0, 5];
    for (const [round, n] of sizes.entries()) {
      for (let i = 0; i < 30_000; i++) {
        const name = `node-${String(i).padStart(30, "0")}`;
        s.append(
          i < n ? alive(name, `10.${round}.${i >> 8 & 255}.${i & 255}:7946`) : { type: "not-alive", name },
        );
      }
      s.append({ type: "clock", value: BigInt(round + 1) });
      const expected = stateOf(s);
      assert.equal(expected.alive.length, n);
      await s.compact();
      const replayed = await replaySnapshot(P, { fs: mem });
      // One string compare: assert's diff of two 20k-node arrays takes minutes to print.
      const got = {
        alive: replayed.aliveNodes,
        clocks: [replayed.lastClock, replayed.lastEventClock, replayed.lastQueryClock],
      };
      const json = (v: State): string => JSON.stringify(v, (_, x) => typeof x === "bigint" ? `${x}` : x);
      assert.ok(
        json(got) === json(expected),
        `${format}, round ${round}: the compacted file does not replay to the ${n} nodes`,
      );
    }
    await s.close();
  }
});

Deno.test("Snapshotter retries a failed automatic compaction after compactRetryMs", async () => {
  const mem = await compactionPreState();
  const errors: unknown[] = [];
  const fs = new FaultFs(mem);
  const clock = new ManualClock();
  const size = mem.read(P).length;
  const s4 = await Snapshotter.open(P, {
    fs,
    clock,
    flushIntervalMs: 100,
    compactRetryMs: 30_000,
    minCompactSizeBytes: size + 100, // not on open; the next flush crosses it
    onBackgroundError: (e) => errors.push(e),
  });
  assert.equal(s4.stats.compactions, 0);
  const renames = (): number => fs.ops.filter((op) => op.startsWith("rename ")).length;
  const r0 = renames();
  for (let i = 0; i < 10; i++) s4.append(alive("z0", `10.0.2.${i}:7946`));
  fs.failNextRename();
  clock.advance(100);
  await s4.settled();
  assert.equal(renames(), r0 + 1);
  assert.equal(s4.stats.compactions, 0);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /Cannot compact .*the old snapshot is intact/);
  await s4.sync(); // appending and syncing go on: a failed compaction is no failed sync
  s4.append(alive("z0", "10.0.3.1:7946"));
  clock.advance(100); // still over the threshold, but inside the back-off
  await s4.settled();
  assert.equal(renames(), r0 + 1);
  assert.equal(s4.stats.compactions, 0);
  clock.advance(30_000);
  s4.append(alive("z0", "10.0.3.2:7946"));
  clock.advance(100);
  await s4.settled();
  assert.equal(s4.stats.compactions, 1);
  assert.equal(renames(), r0 + 2);
  const final = stateOf(s4);
  await s4.close();
  assert.ok(mem.read(P).length < size);
  mem.crash();
  assert.deepEqual(await reopenState(mem), final);
});

// ---------------------------------------------------------------------------------------------
// 9. Torn tails and corruption

const K = 5;

/** K alive records n0..n(K-1), synced and closed; returns the file and each frame's start. */
async function kRecords(): Promise<{ bytes: Uint8Array; starts: number[] }> {
  const mem = new MemFs();
  const s = await openMem(mem);
  const starts: number[] = [];
  for (let i = 0; i < K; i++) {
    starts.push(s.stats.fileBytes);
    s.append(alive(`n${i}`, `10.0.0.${i}:7946${"0".repeat(i)}`)); // frames of different lengths
    await s.sync();
  }
  await s.close();
  return { bytes: mem.read(P), starts };
}

/** The K records with the last one's final bytes cut off (5 of it kept), on a fresh MemFs. */
async function tornBy5(): Promise<{ mem: MemFs; torn: Uint8Array; bytes: Uint8Array; starts: number[] }> {
  const { bytes, starts } = await kRecords();
  const mem = new MemFs();
  const torn = bytes.slice(0, starts[K - 1]! + 5);
  mem.write(P, torn);
  return { mem, torn, bytes, starts };
}

function names(state: State): string[] {
  return state.alive.map((n) => n.name);
}

const firstK = (k: number): string[] => Array.from({ length: k }, (_, i) => `n${i}`);

Deno.test("Snapshotter truncates a torn last record at every byte offset", async () => {
  const { bytes, starts } = await kRecords();
  const last = starts[K - 1]!;
  for (let len = last + 1; len < bytes.length; len++) {
    const torn = bytes.slice(0, len);
    const mem = new MemFs();
    mem.write(P, torn);
    const err = await openMem(mem, { recovery: "strict" }).catch((e) => e);
    assert.ok(err instanceof CorruptionError, `strict at length ${len}: ${err}`);
    assert.equal(err.path, P);
    assert.equal(err.offset, last);
    assert.deepEqual(mem.read(P), torn, "strict must not repair");

    const s = await openMem(mem);
    assert.equal(s.openReport.records, K - 1);
    assert.equal(s.openReport.tornTailBytes, len - last, `length ${len}`);
    assert.equal(s.openReport.bytes, len);
    assert.equal(s.openReport.brokenCopy, `${P}.broken`);
    assert.deepEqual(mem.read(`${P}.broken`), torn);
    assert.deepEqual(mem.read(P), bytes.slice(0, last));
    assert.deepEqual(names(stateOf(s)), firstK(K - 1));
    s.append(alive("after", "10.0.0.9:7946"));
    await s.close();
    const state = await replaySnapshot(P, { fs: mem, recovery: "strict" });
    assert.deepEqual(state.aliveNodes.map((n) => n.name), ["after", ...firstK(K - 1)]);
  }
});

Deno.test("replaySnapshot reports a torn tail without changing the file", async () => {
  const { mem, torn } = await tornBy5();
  const state = await replaySnapshot(P, { fs: mem });
  assert.equal(state.records, K - 1);
  assert.equal(state.tornTailBytes, 5);
  assert.deepEqual(mem.read(P), torn);
  await assert.rejects(replaySnapshot(P, { fs: mem, recovery: "strict" }), CorruptionError);
});

Deno.test("Snapshotter keeps the .broken copy of a torn tail across a crash", async () => {
  const { mem, torn, bytes, starts } = await tornBy5();
  const s = await openMem(mem);
  assert.equal(s.openReport.tornTailBytes, 5);
  mem.crash(); // power loss right after the repair
  // The truncation was made durable, so the evidence must be too.
  assert.deepEqual(mem.read(P), bytes.slice(0, starts[K - 1]!));
  assert.deepEqual(mem.read(`${P}.broken`), torn);
});

Deno.test("Snapshotter leaves no partial .broken copy when the disk fills during it, and repairs nothing", async () => {
  const { bytes } = await kRecords();
  const torn = bytes.slice(0, bytes.length - 3);
  const mem = new MemFs();
  mem.write(P, torn);
  const fs = new FaultFs(mem);
  fs.failAfterBytes(10); // the copy's first write runs out of room
  await assert.rejects(
    Snapshotter.open(P, { fs, clock: new ManualClock() }),
    (e: Error & { code?: string }) => {
      // Says a repair was needed and what failed, not only the temporary file's name.
      assert.match(
        e.message,
        /^Cannot repair "d\/s\.snap": its copy to "d\/s\.snap\.broken", taken before any repair, failed \(.*No space left on device.*\); the snapshot is untouched$/,
      );
      assert.equal(e.code, "ENOSPC");
      return true;
    },
  );
  assert.deepEqual(mem.read(P), torn, "the damaged file was repaired without its copy");
  assert.equal(await mem.stat(`${P}.broken`), null, "a partial copy passes for the evidence");
  // Room again: the next open copies it whole, then repairs.
  const s = await Snapshotter.open(P, { fs: mem, clock: new ManualClock() });
  assert.equal(s.openReport.brokenCopy, `${P}.broken`);
  assert.deepEqual(mem.read(`${P}.broken`), torn);
  await s.close();
});

Deno.test("Snapshotter: a process killed while copying the evidence leaves no .broken file, and the next open copies it whole", async () => {
  const { bytes } = await kRecords();
  const torn = bytes.slice(0, bytes.length - 3);
  // Record an open that repairs, then kill one at each step up to its rename of the copy.
  const rec = new MemFs();
  rec.write(P, torn);
  const recorder = new FaultFs(rec);
  await (await Snapshotter.open(P, { fs: recorder, clock: new ManualClock() })).close();
  const renameAt = recorder.ops.findIndex((op) => op.startsWith(`rename ${P}.compact ${P}.broken`));
  assert.ok(renameAt > 0, recorder.ops.join("\n"));
  for (let at = 0; at <= renameAt; at++) {
    const mem = new MemFs();
    mem.write(P, torn);
    const fs = new FaultFs(mem);
    fs.crashAt(at);
    await assert.rejects(Snapshotter.open(P, { fs, clock: new ManualClock() }));
    assert.equal(await mem.stat(`${P}.broken`), null, `killed at step ${at}: a partial copy is the evidence`);
    assert.deepEqual(mem.read(P), torn, `killed at step ${at}: repaired without the copy`);
    const s = await Snapshotter.open(P, { fs: mem, clock: new ManualClock() });
    assert.equal(s.openReport.brokenCopy, `${P}.broken`, `after a kill at step ${at}`);
    assert.deepEqual(mem.read(`${P}.broken`), torn);
    assert.equal(await mem.stat(`${P}.compact`), null);
    await s.close();
  }
});

Deno.test("Snapshotter: an open retried after its repair failed keeps the one .broken copy it made", async () => {
  const { mem, torn, bytes, starts } = await tornBy5();
  const fs = new FaultFs(mem);
  for (let attempt = 0; attempt < 3; attempt++) {
    fs.failNext("truncate"); // the repair after the copy fails (an I/O error), the service retries
    await assert.rejects(Snapshotter.open(P, { fs, clock: new ManualClock() }), /injected/);
    assert.deepEqual(mem.read(P), torn);
  }
  const s = await Snapshotter.open(P, { fs, clock: new ManualClock() });
  assert.equal(s.openReport.brokenCopy, `${P}.broken`);
  await s.close();
  assert.deepEqual(mem.read(`${P}.broken`), torn);
  assert.equal(await mem.stat(`${P}.broken.1`), null, "a restart loop must not fill the disk with copies");
  // A different damage of the same length is other evidence: a copy of its own.
  const other = torn.slice();
  other[other.length - 1]! ^= 0xff;
  other.set(bytes.slice(starts[K - 2]!, starts[K - 2]! + 8), 24); // damage before the tail too
  mem.write(P, other);
  const t = await Snapshotter.open(P, { fs: mem, clock: new ManualClock(), recovery: "salvage" });
  assert.equal(t.openReport.brokenCopy, `${P}.broken.1`);
  await t.close();
  assert.deepEqual(mem.read(`${P}.broken.1`), other);
});

Deno.test("Snapshotter keeps every earlier .broken copy when it repairs again", async () => {
  const { bytes, starts } = await kRecords();
  const mem = new MemFs();
  const first = bytes.slice(0, starts[K - 1]! + 3);
  mem.write(P, first);
  await (await openMem(mem)).close();
  const second = bytes.slice(0, starts[K - 2]! + 7);
  mem.write(P, second);
  const s = await openMem(mem);
  assert.equal(s.openReport.brokenCopy, `${P}.broken.1`);
  await s.close();
  assert.deepEqual(mem.read(`${P}.broken`), first);
  assert.deepEqual(mem.read(`${P}.broken.1`), second);
});

Deno.test("Snapshotter rewrites a torn file header", async () => {
  const { bytes } = await kRecords();
  for (let len = 1; len < 24; len++) {
    // From the whole magic on, a cut-short header is a binary file (one to three bytes are
    // text, serf's or not: no record either way).
    const format = len >= 4 ? "binary" : "go-text";
    for (const asked of ["auto", format] as const) {
      const mem = new MemFs();
      mem.write(P, bytes.slice(0, len));
      await assert.rejects(openMem(mem, { recovery: "strict", format: asked }), CorruptionError);
      const replayed = await replaySnapshot(P, { fs: mem });
      assert.equal(replayed.format, format, `replay, ${len} bytes`);
      assert.equal(replayed.tornTailBytes, len);
      mem.ops.length = 0;
      const s = await openMem(mem, { format: asked });
      assert.equal(s.format, format, `open ${asked}, ${len} bytes`);
      assert.equal(s.openReport.records, 0);
      assert.equal(s.openReport.tornTailBytes, len);
      // The header is written over the bytes there, never after a truncate to 0: a crash between
      // the two would leave an empty file, which "auto" opens as Go text.
      if (format === "binary") assert.ok(!mem.ops.includes(`truncate ${P} 0`), mem.ops.join("; "));
      assert.deepEqual(mem.read(`${P}.broken`), bytes.slice(0, len));
      s.append(alive("a", "10.0.0.1:7946"));
      await s.close();
      mem.crash();
      const after = await replaySnapshot(P, { fs: mem, recovery: "strict" });
      assert.equal(after.format, format);
      assert.deepEqual(after.aliveNodes.length, 1);
    }
  }
});

Deno.test("A snaplog file of another kind (a raft segment) is refused in every mode and left alone", async () => {
  const { bytes } = await kRecords();
  const other = bytes.slice();
  other.set(encodeFileHeader(FileKind.raftSegment, 0x5eed, 7n), 0);
  for (const recovery of ["truncate-tail", "strict", "salvage"] as const) {
    const mem = new MemFs();
    mem.write(P, other);
    const err = await openMem(mem, { recovery }).catch((e) => e);
    assert.ok(err instanceof CorruptionError && err.offset === 0, `${recovery}: ${err}`);
    assert.match(err.message, /kind 2 is not a serf snapshot/);
    await assert.rejects(replaySnapshot(P, { fs: mem, recovery }), CorruptionError);
    assert.deepEqual(mem.read(P), other, `${recovery} must not touch the file`);
    assert.equal(await mem.stat(`${P}.broken`), null);
  }
});

Deno.test("Snapshotter treats a flipped byte in a middle record as corruption", async () => {
  const { bytes, starts } = await kRecords();
  const bad = bytes.slice();
  bad[starts[2]! + 14]! ^= 0x01; // inside n2's payload: its checksum fails, n3 and n4 are valid
  for (const recovery of ["truncate-tail", "strict"] as const) {
    const mem = new MemFs();
    mem.write(P, bad);
    const err = await openMem(mem, { recovery }).catch((e) => e);
    assert.ok(err instanceof CorruptionError, `${recovery}: ${err}`);
    assert.equal(err.path, P);
    assert.equal(err.offset, starts[2]);
    assert.deepEqual(mem.read(P), bad, `${recovery} must not touch the file`);
    assert.equal(await mem.stat(`${P}.broken`), null);
    await assert.rejects(replaySnapshot(P, { fs: mem, recovery }), CorruptionError);
  }
});

Deno.test("Snapshotter salvage keeps every other record and reports the skipped region", async () => {
  const { bytes, starts } = await kRecords();
  const bad = bytes.slice();
  bad[starts[2]! + 14]! ^= 0x01;
  const mem = new MemFs();
  mem.write(P, bad);

  const replayed = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
  assert.deepEqual(replayed.aliveNodes.map((n) => n.name), ["n0", "n1", "n3", "n4"]);
  assert.equal(replayed.warnings.length, 1);
  assert.equal(replayed.warnings[0]!.line, starts[2]);
  assert.match(replayed.warnings[0]!.reason, new RegExp(`skipped ${starts[3]! - starts[2]!} bytes`));
  assert.deepEqual(mem.read(P), bad, "replaySnapshot is read-only");

  const s = await openMem(mem, { recovery: "salvage" });
  assert.deepEqual(names(stateOf(s)), ["n0", "n1", "n3", "n4"]);
  assert.equal(s.openReport.records, K - 1);
  assert.equal(s.openReport.skipped.length, 1);
  assert.equal(s.openReport.skipped[0]!.line, starts[2]);
  assert.equal(s.openReport.brokenCopy, `${P}.broken`);
  assert.deepEqual(mem.read(`${P}.broken`), bad);
  s.append(alive("after", "10.0.0.9:7946"));
  await s.close();
  // The file was rewritten: it now opens clean even in strict mode.
  const state = await replaySnapshot(P, { fs: mem, recovery: "strict" });
  assert.deepEqual(state.aliveNodes.map((n) => n.name), ["after", "n0", "n1", "n3", "n4"]);
  assert.deepEqual(state.warnings, []);
});

Deno.test("Snapshotter salvage keeps every record after a damaged file header, and writes a new one", async () => {
  const { bytes } = await kRecords();
  // A damaged magic too: with format "auto" such a file once opened as Go text, empty, and was
  // cut back to its last newline byte (a .broken copy kept).
  const damaged = [
    ["header checksum", 20],
    ["version", 4],
    ...[0, 1, 2, 3].map((i) => [`magic byte ${i}`, i]),
  ];
  for (const [what, at] of damaged as [string, number][]) {
    const bad = bytes.slice();
    bad[at]! ^= 0x01;
    const mem = new MemFs();
    mem.write(P, bad);
    for (const recovery of ["truncate-tail", "strict"] as const) {
      const err = await openMem(mem, { recovery }).catch((e) => e);
      assert.ok(err instanceof CorruptionError && err.offset === 0, `${what} ${recovery}: ${err}`);
    }
    assert.deepEqual(mem.read(P), bad, "the other modes do not touch the file");
    const replayed = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
    assert.deepEqual(replayed.aliveNodes.map((n) => n.name), firstK(K), what);
    assert.equal(replayed.warnings.length, 1);
    assert.equal(replayed.warnings[0]!.line, 0);
    assert.match(replayed.warnings[0]!.reason, /^skipped 24 bytes: /);

    const s = await openMem(mem, { recovery: "salvage" });
    assert.deepEqual(names(stateOf(s)), firstK(K));
    assert.deepEqual(mem.read(`${P}.broken`), bad);
    await s.close();
    const state = await replaySnapshot(P, { fs: mem, recovery: "strict" });
    assert.deepEqual(state.aliveNodes.map((n) => n.name), firstK(K), `${what}: rewritten with a good header`);
  }
});

Deno.test("Snapshotter.open with format binary and salvage gets past a header damaged beyond recognition", async () => {
  // Its first eight bytes zeroed, the file does not look binary: open refused it as "in go-text
  // format", where replaySnapshot with the same options kept every frame.
  const { bytes } = await kRecords();
  const bad = bytes.slice();
  bad.fill(0, 0, 8);
  const mem = new MemFs();
  mem.write(P, bad);
  const s = await openMem(mem, { format: "binary", recovery: "salvage" });
  assert.deepEqual(names(stateOf(s)), firstK(K));
  assert.deepEqual(mem.read(`${P}.broken`), bad);
  await s.close();
  assert.deepEqual((await replaySnapshot(P, { fs: mem, recovery: "strict" })).aliveNodes.length, K);
});

Deno.test("A binary snapshot whose header is lost whole (a zeroed first sector) is found as binary, not as empty Go text", async () => {
  // Detected as Go text, it replayed to nothing in every mode, strict included, and an open cut
  // it back to a newline byte inside the frames and appended text after them.
  const mem0 = new MemFs();
  const w = await openMem(mem0);
  for (let i = 0; i < 40; i++) w.append(alive(`node-${i}`, `10.0.0.${i}:7946`));
  await w.close();
  const bytes = mem0.read(P);
  for (const [what, damage] of [["zeroed", 0x00], ["overwritten", 0xa5]] as const) {
    const bad = bytes.slice();
    bad.fill(damage, 0, 512);
    const mem = new MemFs();
    mem.write(P, bad);
    for (const recovery of ["strict", "truncate-tail"] as const) {
      const err = await replaySnapshot(P, { fs: mem, recovery }).catch((e) => e);
      assert.ok(err instanceof CorruptionError && err.offset === 0, `${what} ${recovery}: ${err}`);
      assert.match(err.message, /header is damaged.*"salvage" keeps the valid records after it/);
      await assert.rejects(openMem(mem, { recovery }), CorruptionError);
    }
    assert.deepEqual(mem.read(P), bad, `${what}: untouched`);
    const salvaged = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
    assert.equal(salvaged.format, "binary");
    // The frames that start at or after byte 512 are kept (24-byte header, 8-aligned frames).
    const expected: string[] = [];
    for (let i = 0, at = 24; i < 40; i++) {
      if (at >= 512) expected.push(`node-${i}`);
      at += (12 + 2 + `node-${i}`.length + `10.0.0.${i}:7946`.length + 7) & ~7;
    }
    assert.deepEqual(salvaged.aliveNodes.map((n) => n.name), expected.sort(), what);
  }
  // First records too long for a 64 KiB look (65,535-byte names): still found; and binary asked
  // of a file whose first 300 KiB are zeros (no whole frame where auto looks) reads on to the
  // frames after them.
  const big = new MemFs();
  const b = await openMem(big);
  for (let i = 0; i < 5; i++) b.append(alive(`${i}`.repeat(65_535), "a".repeat(4_000)));
  for (let i = 0; i < 3; i++) b.append(alive(`node-${i}`, `10.0.0.${i}:7946`));
  await b.close();
  const lost = big.read(P);
  lost.fill(0, 0, 24);
  big.write(P, lost);
  assert.equal((await replaySnapshot(P, { fs: big, recovery: "salvage" })).aliveNodes.length, 8);
  lost.fill(0, 0, 300 << 10);
  big.write(P, lost);
  const far = await replaySnapshot(P, { fs: big, format: "binary", recovery: "salvage" });
  assert.deepEqual(far.aliveNodes.map((n) => n.name), ["node-0", "node-1", "node-2"]);
  // Go text asked of a file that auto calls binary only for a frame it holds is honoured: a
  // serf text file can hold a frame in a crafted node name. Edited text files (a blank line,
  // CRLF, a space, a tab, a byte-order mark first) are Go text to auto even then.
  // One whole frame, as version 1 wrote it: without a salt, one frame is evidence of a binary file.
  const frameName = new TextDecoder("latin1").decode(asVersion1(bytes).subarray(24, 24 + 40));
  // The frame lands 8-aligned in the file, where a frame of a headerless binary file would be.
  const lines = (start: string): string => {
    const before = `${start}alive: node-1 10.0.0.1:7946\nalive: `;
    return `${before}${"x".repeat((8 - before.length % 8) % 8)}${frameName} 10.0.0.2:7946\nclock: 42\n`;
  };
  const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
  for (const start of ["\n", "\r\n", " \n", "\t# x\n", "\xef\xbb\xbf"]) {
    const mem = new MemFs();
    mem.write(P, latin1(lines(start)));
    const state = await replaySnapshot(P, { fs: mem });
    assert.equal(state.format, "go-text", JSON.stringify(start));
    assert.equal(state.lastClock, 42n, JSON.stringify(start));
  }
  // A serf file whose first page a crash zeroed (serf never fsyncs it), holding serf's lines
  // and a frame in a crafted name: auto took it for a binary file with a lost header, and
  // salvage rewrote it as a binary snapshot of the name's node alone (session 15). Auto now
  // refuses a file that holds both, in every mode, and leaves it as it is; Go text asked of it
  // reads it as serf does.
  const zeroFilled = new MemFs();
  const zeroedText = latin1(lines("\0".repeat(4096)));
  zeroFilled.write(P, zeroedText);
  for (const recovery of ["truncate-tail", "salvage"] as const) {
    await assert.rejects(replaySnapshot(P, { fs: zeroFilled, recovery }), /ask for format "go-text"/);
    await assert.rejects(openMem(zeroFilled, { recovery }), CorruptionError);
    assert.deepEqual(zeroFilled.read(P), zeroedText, `${recovery}: not rewritten`);
  }
  const asText = await replaySnapshot(P, { fs: zeroFilled, format: "go-text" });
  assert.equal(asText.lastClock, 42n, "serf's lines");
  assert.equal(asText.aliveNodes.length, 1);
  const opened = await openMem(zeroFilled, { format: "go-text" });
  assert.equal(opened.lastClock, 42n);
  await opened.close();
  // Binary asked of a text-looking file with frames far into it reads on to them.
  const farMem = new MemFs();
  const farFile = new Uint8Array(400 << 10).fill(0x61);
  farFile.set(bytes.subarray(24), 350 << 10);
  farMem.write(P, farFile);
  const found = await replaySnapshot(P, { fs: farMem, format: "binary", recovery: "salvage" });
  assert.equal(found.aliveNodes.length, 40);
  // A Go text file is still Go text, also one that begins with something serf does not write.
  for (const text of ["alive: a 10.0.0.1:7946\n", " alive: a 10.0.0.1:7946\nclock: 3\n", "\u0000\n"]) {
    const mem = new MemFs();
    mem.write(P, new TextEncoder().encode(text));
    assert.equal((await replaySnapshot(P, { fs: mem })).format, "go-text", JSON.stringify(text));
  }
});

Deno.test("A binary snapshot whose header is lost is refused by auto when a node name holds serf's lines", async () => {
  // Auto read such a file as Go text (one node, "ghost", the log never had), and a default open
  // cut it back to its last newline and appended text. Now it refuses a file that holds both
  // serf's lines and frames, and binary asked of it salvages the frames.
  const mem = new MemFs();
  const s = await openMem(mem, { minCompactSizeBytes: 2 ** 52 });
  for (let i = 0; i < 400; i++) {
    s.append(alive(i === 300 ? "evil\nalive: ghost 6.6.6.6:1\n" : `node-${i}`, "10.0.0.1:7946"));
  }
  await s.close();
  const lost = mem.read(P);
  lost.fill(0, 0, 4096);
  mem.write(P, lost);
  for (const recovery of ["truncate-tail", "salvage"] as const) {
    await assert.rejects(replaySnapshot(P, { fs: mem, recovery }), /ask for format/);
    await assert.rejects(openMem(mem, { recovery }), CorruptionError);
    assert.deepEqual(mem.read(P), lost, `${recovery}: refused, not cut`);
  }
  const r = await replaySnapshot(P, { fs: mem, format: "binary", recovery: "salvage" });
  assert.equal(r.format, "binary");
  assert.ok(
    r.aliveNodes.length > 250 && !r.aliveNodes.some((n) => n.name === "ghost"),
    `${r.aliveNodes.length}`,
  );
});

Deno.test("Snapshotter go-text: strict cuts a tail of zeros as binary does, and refuses a torn line", async () => {
  // Strict refused a go-text file whose tail was zeros (a crash that extended the file), where
  // the binary format cuts such a tail in every mode.
  const text = new TextEncoder().encode("alive: a 10.0.0.1:7946\nclock: 3\n");
  for (
    const [tail, ok] of [[new Uint8Array(4096), true], [
      new TextEncoder().encode("alive: b 1"),
      false,
    ]] as const
  ) {
    const file = new Uint8Array(text.length + tail.length);
    file.set(text);
    file.set(tail, text.length);
    const mem = new MemFs();
    mem.write(P, file);
    if (!ok) {
      await assert.rejects(openMem(mem, { recovery: "strict" }), CorruptionError);
      assert.deepEqual(mem.read(P), file);
      continue;
    }
    const s = await openMem(mem, { recovery: "strict" });
    assert.equal(s.openReport.tornTailBytes, tail.length);
    assert.deepEqual(s.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
    s.append(alive("c", "10.0.0.3:7946"));
    await s.close();
    assert.equal(
      new TextDecoder().decode(mem.read(P)),
      "alive: a 10.0.0.1:7946\nclock: 3\nalive: c 10.0.0.3:7946\n",
    );
  }
});

Deno.test("Snapshotter reads a zeroed preallocated tail as the end of the log", async () => {
  const { bytes } = await kRecords();
  for (const recovery of ["strict", "truncate-tail", "salvage"] as const) {
    const mem = new MemFs();
    const padded = new Uint8Array(bytes.length + 4096);
    padded.set(bytes);
    mem.write(P, padded);
    const s = await openMem(mem, { recovery });
    assert.equal(s.openReport.records, K, recovery);
    assert.equal(s.openReport.tornTailBytes, 4096, recovery);
    assert.deepEqual(names(stateOf(s)), firstK(K));
    s.append(alive("after", "10.0.0.9:7946"));
    await s.close();
    const state = await replaySnapshot(P, { fs: mem, recovery: "strict" });
    assert.deepEqual(state.aliveNodes.map((n) => n.name), ["after", ...firstK(K)]);
  }
});

Deno.test("Snapshotter reopens a prefix after torn-write crashes", async () => {
  const seed = testSeed("Snapshotter torn-write crash");
  const rng = new Rng(seed);
  const runs = fuzzIterations(40);
  for (let run = 0; run < runs; run++) {
    const crashSeed = rng.u32();
    const mem = new MemFs();
    const clock = new ManualClock();
    const s = await openMem(mem, { clock, sync: "never", flushIntervalMs: 100 });
    const total = 20 + rng.int(80);
    let synced = 0;
    for (let i = 0; i < total; i++) {
      s.append(alive(`n${String(i).padStart(3, "0")}`, `10.0.${i}.1:7946`));
      const r = rng.int(10);
      if (r === 0) {
        await s.sync();
        synced = i + 1;
      } else if (r < 4) {
        clock.advance(100); // written, not fsynced: may tear
        await s.settled();
      }
    }
    clock.advance(100);
    await s.settled();
    mem.crash({ tornWrites: crashSeed });
    const where = `run ${run}, crash seed ${crashSeed} (test seed ${seed})`;
    const again = await openMem(mem).catch((e) => assert.fail(`${where}: reopen threw ${e}`));
    const got = names(stateOf(again));
    assert.ok(got.length >= synced && got.length <= total, `${where}: ${got.length} of ${synced}..${total}`);
    assert.deepEqual(
      got,
      Array.from({ length: got.length }, (_, i) => `n${String(i).padStart(3, "0")}`),
      where,
    );
    assert.equal(again.openReport.records, got.length, where);
    await again.close();
  }
});

// ---------------------------------------------------------------------------------------------
// 13. Seeded fuzz against a Map model

interface Model {
  alive: Map<string, string>;
  clocks: [bigint, bigint, bigint];
}

function applyModel(m: Model, r: SnapshotRecord): void {
  switch (r.type) {
    case "alive":
      m.alive.set(r.name, r.addr);
      break;
    case "not-alive":
      m.alive.delete(r.name);
      break;
    case "clock":
      m.clocks[0] = r.value;
      break;
    case "event-clock":
      m.clocks[1] = r.value;
      break;
    case "query-clock":
      m.clocks[2] = r.value;
      break;
    case "leave":
      m.alive.clear();
      m.clocks = [0n, 0n, 0n];
      break;
  }
}

function modelState(m: Model): State {
  const alive = [...m.alive].map(([name, addr]) => ({ name, addr }));
  alive.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)); // ASCII names: byte order
  return { alive, clocks: [...m.clocks] };
}

function randomRecord(rng: Rng): SnapshotRecord {
  const name = `node-${rng.int(12)}`;
  const r = rng.int(100);
  if (r < 55) return alive(name, `10.0.${rng.int(256)}.${rng.int(256)}:${7000 + rng.int(1000)}`);
  if (r < 80) return { type: "not-alive", name };
  if (r < 88) return { type: "clock", value: BigInt(rng.u32()) * BigInt(rng.u32()) };
  if (r < 93) return { type: "event-clock", value: BigInt(rng.u32()) };
  if (r < 98) return { type: "query-clock", value: BigInt(rng.u32()) };
  if (r < 99) return { type: "leave" };
  return { type: "comment", text: "x".repeat(rng.int(40)) };
}

Deno.test("Snapshotter matches a Map model through random appends, compactions and crashes", async () => {
  const seed = testSeed("Snapshotter model fuzz");
  const rng = new Rng(seed);
  const runs = fuzzIterations(12);
  for (let run = 0; run < runs; run++) {
    const mem = new MemFs();
    let fs = new FaultFs(mem); // a fresh one per incarnation: a crashed FaultFs stays dead
    const options = (): SnapshotterOptions => ({
      fs: fs = new FaultFs(mem),
      clock: new ManualClock(), // a fresh clock per incarnation: a dead one's timers never fire
      sync: rng.pick(["interval", "always", "never"] as const),
      flushIntervalMs: 100,
      syncIntervalMs: 300,
      minCompactSizeBytes: rng.pick([0, 512, 4096, 1 << 20]),
      onBackgroundError: QUIET, // injected faults; the model checks what they leave
    });
    let opts = options();
    let clock = opts.clock as ManualClock;
    let s = await Snapshotter.open(P, opts);
    const model: Model = { alive: new Map(), clocks: [0n, 0n, 0n] };
    // Model states since the last point known durable; a crash must land on one of them.
    let history: State[] = [modelState(model)];
    // Appends not awaited (sync "always"), settled to null or their error at once, so a crash
    // that makes them reject is not an unhandled rejection; checked at each durable point.
    let inflight: Promise<unknown>[] = [];
    const checkInflight = async (where: string): Promise<void> => {
      for (const e of await Promise.all(inflight)) assert.equal(e, null, `${where}: an append failed`);
      inflight = [];
    };
    const durableNow = (): void => {
      history = [modelState(model)];
    };
    const steps = 150;
    for (let step = 0; step < steps; step++) {
      const where = `run ${run} step ${step} (seed ${seed})`;
      const r = rng.int(100);
      if (r < 70) {
        const rec = randomRecord(rng);
        const p = s.append(rec);
        applyModel(model, rec);
        history.push(modelState(model));
        if (opts.sync === "always" && rng.int(2) === 0) {
          await p;
          await checkInflight(where);
          durableNow();
        } else {
          inflight.push(p.then(() => null, (e) => e));
        }
      } else if (r < 78) {
        clock.advance(rng.pick([50, 100, 300, 1000]));
        await s.settled();
      } else if (r < 83) {
        await s.sync();
        await checkInflight(where);
        durableNow();
      } else if (r < 87) {
        await s.compact();
        await checkInflight(where);
        durableNow();
      } else if (r < 93) {
        await s.close();
        await checkInflight(where);
        durableNow();
        opts = options();
        clock = opts.clock as ManualClock;
        s = await Snapshotter.open(P, opts);
        assert.deepEqual(stateOf(s), modelState(model), `${where}: after close and reopen`);
      } else {
        // Power loss, sometimes with torn writes. The dead snapshotter is abandoned, not closed.
        const torn = rng.int(2) === 0 ? { tornWrites: rng.u32() } : {};
        if (rng.int(2) === 0) {
          // Die a few file-system steps into a sync, a compaction or a timer flush.
          fs.crashAt(fs.opCount + rng.int(8));
          const op = rng.int(3);
          if (op === 0) await s.sync().catch(() => {});
          else if (op === 1) await s.compact().catch(() => {});
          else clock.advance(1000);
        }
        await s.settled();
        mem.crash(torn);
        inflight = []; // they may reject now: the process they belonged to is dead
        opts = options();
        clock = opts.clock as ManualClock;
        s = await Snapshotter.open(P, opts).catch((e) => assert.fail(`${where}: reopen threw ${e}`));
        const got = stateOf(s);
        const match = history.findIndex((h) => isDeepEqual(h, got));
        assert.ok(
          match >= 0,
          `${where}: state after crash ${
            JSON.stringify(got, big)
          } is none of the ${history.length} states since the last durable point`,
        );
        // Continue from what survived.
        model.alive = new Map(got.alive.map((n) => [n.name, n.addr]));
        model.clocks = [got.clocks[0]!, got.clocks[1]!, got.clocks[2]!];
        durableNow();
      }
      assert.deepEqual(stateOf(s), modelState(model), `${where}: live state`);
    }
    await s.close();
    assert.deepEqual(await reopenState(mem), modelState(model), `run ${run}: final reopen (seed ${seed})`);
  }
});

function big(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

/** A hung disk: once `disk.hung` is set, fdatasync returns only when the test calls one of `disk.waiting`. */
function hangingSyncFs(inner: MemFs, disk: { hung: boolean; waiting: (() => void)[] }): FileSystem {
  return {
    stat: (p) => inner.stat(p),
    rename: (a, b) => inner.rename(a, b),
    remove: (p) => inner.remove(p),
    syncDir: (p) => inner.syncDir(p),
    async open(path: string, options: OpenOptions): Promise<FileHandle> {
      const h = await inner.open(path, options);
      return {
        read: (b, pos) => h.read(b, pos),
        write: (d, pos) => h.write(d, pos),
        truncate: (n) => h.truncate(n),
        datasync:
          () => (disk.hung ? new Promise<void>((resolve) => disk.waiting.push(resolve)) : h.datasync()),
        size: () => h.size(),
        tryLock: () => h.tryLock(),
        close: () => h.close(),
      };
    },
  };
}

Deno.test("Snapshotter close gives up after timeoutMs on a hung disk, reports what is not durable, and releases the lock once the disk returns", async () => {
  const mem = new MemFs();
  const clock = new ManualClock();
  const disk = { hung: false, waiting: [] as (() => void)[] };
  const s = await Snapshotter.open(P, { fs: hangingSyncFs(mem, disk), clock });
  s.append({ type: "alive", name: "a", addr: "10.0.0.1:7946" });
  disk.hung = true;
  const closing = s.close({ timeoutMs: 250 });
  // Let the flush reach the hung fdatasync, then let the timeout fire.
  for (let i = 0; i < 20; i++) await Promise.resolve();
  clock.advance(250);
  await assert.rejects(
    closing,
    (e: Error) =>
      /Cannot close ".*" cleanly: 0 buffered bytes not written and \d+ bytes not fsynced: timed out after 250 ms/
        .test(e.message),
  );
  assert.throws(() => s.append({ type: "leave" }), ClosedError);
  // The hung fdatasync may still return: until it does, no new writer may open the file.
  await assert.rejects(Snapshotter.open(P, { fs: mem, clock: new ManualClock() }), LockedError);
  assert.equal(disk.waiting.length, 1);
  disk.waiting[0]!();
  for (let i = 0; i < 20; i++) await Promise.resolve();
  // Now the lock is free: a new writer can open the file.
  const again = await Snapshotter.open(P, { fs: mem, clock: new ManualClock() });
  assert.deepEqual(again.aliveNodes(), [{ name: "a", addr: "10.0.0.1:7946" }]);
  await again.close();
});

// ---------------------------------------------------------------------------------------------
// Races and faults found by the session-4 audit (each failed before its fix)

/** A MemFs whose open of `<path>.compact` waits for `gate()` while `slow.on`: a slow disk. */
function slowCompactFs(mem: MemFs): { fs: FileSystem; slow: { on: boolean }; gate: () => void } {
  let gate!: () => void;
  const opened = new Promise<void>((resolve) => gate = resolve);
  const slow = { on: false };
  const fs: FileSystem = {
    stat: (p) => mem.stat(p),
    rename: (a, b) => mem.rename(a, b),
    remove: (p) => mem.remove(p),
    syncDir: (p) => mem.syncDir(p),
    async open(path: string, options: OpenOptions): Promise<FileHandle> {
      if (slow.on && path.endsWith(".compact")) await opened;
      return mem.open(path, options);
    },
  };
  return { fs, slow, gate };
}

Deno.test("Snapshotter refuses a compact() once close() has begun, so it cannot replace the next writer's file", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const { fs, slow, gate } = slowCompactFs(mem);
    const s = await Snapshotter.open(P, { fs, clock: new ManualClock(), format });
    slow.on = true;
    s.append(alive("old", "10.0.0.1:7946"));
    const closing = s.close();
    const compacting = s.compact();
    await closing;
    const next = await openMem(mem);
    next.append(alive("new", "10.0.0.2:7946"));
    await next.sync();
    gate();
    await assert.rejects(compacting, ClosedError, format);
    mem.crash();
    assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["new", "old"], format);
    await next.close().catch(() => {});
  }
});

Deno.test("Snapshotter keeps a deferred member clock that met a full buffer, and writes it after the buffer", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const clock = new ManualClock();
    let lamport = 2n;
    const s = await openMem(mem, {
      clock,
      format,
      lamportClock: () => lamport,
      bufferSizeMaxBytes: 1 << 20,
      sync: "never",
      minCompactSizeBytes: 2 ** 52,
    });
    assert.throws(() => {
      for (;;) s.append({ type: "clock", value: 1n });
    }, BackpressureError);
    lamport = 100n;
    clock.advance(500); // the tick defers clock 99; the timer flush then has no room for it
    await s.settled();
    await s.sync().catch(() => {}); // a failed background flush surfaces here
    await s.sync();
    assert.equal(s.lastClock, 99n);
    mem.crash();
    assert.equal((await reopenState(mem)).clocks[0], 99n, format);
  }
});

Deno.test("Snapshotter fsyncs what it replays on open: a reopen after a failed fsync makes the file durable", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const fs = new FaultFs(mem);
    const s = await openMem(fs, { format });
    s.append(alive("a", "10.0.0.1:7946"));
    fs.failNextSync();
    await assert.rejects(s.sync(), PoisonedError);
    await s.close().catch(() => {});
    const again = await openMem(mem); // the record is in the page cache, not on disk
    assert.deepEqual(again.aliveNodes().map((n) => n.name), ["a"]);
    await again.close();
    mem.crash();
    assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a"], format);
  }
});

Deno.test("Snapshotter opens a file over the threshold when its compaction fails, and reports why", async () => {
  for (const format of ["binary", "go-text"] as const) {
    for (const fault of ["rename", "disk full"] as const) {
      const mem = new MemFs();
      const s = await openMem(mem, { format, minCompactSizeBytes: 2 ** 52 });
      for (let i = 0; i < 200; i++) s.append(alive(`n${i % 5}`, `10.0.0.${i % 250}:1`));
      await s.close();
      const before = mem.read(P);
      const fs = new FaultFs(mem);
      if (fault === "rename") fs.failNextRename();
      else fs.failAfterBytes(0);
      const again = await openMem(fs, { minCompactSizeBytes: 1000 });
      assert.equal(again.openReport.compactedOnOpen, false);
      assert.match(again.openReport.compactionError ?? "", /Cannot compact .*the old snapshot is intact/);
      assert.deepEqual(mem.read(P), before, `${format} ${fault}: the old file is intact`);
      assert.equal(again.aliveNodes().length, 5);
      fs.failAfterBytes(Infinity);
      again.append(alive("after", "10.0.0.9:1"));
      await again.sync();
      await again.close();
      assert.equal((await reopenState(mem, { minCompactSizeBytes: 2 ** 52 })).alive.length, 6);
    }
  }
});

Deno.test("Snapshotter stages a member event whole or not at all under back-pressure too", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const s = await openMem(mem, {
      format,
      bufferSizeMaxBytes: 1 << 20,
      sync: "never",
      minCompactSizeBytes: 2 ** 52,
    });
    let n = 0;
    assert.throws(() => {
      for (;; n++) s.append(alive(`n${n}`, "10.0.0.1:7946"));
    }, BackpressureError);
    const staged = s.stats.bufferedBytes;
    const appended = s.stats.appended;
    assert.throws(
      () =>
        s.handleEvent({
          type: "member-join",
          members: [{ name: "a", addr: "1" }, { name: "b".repeat(200), addr: "2" }],
        }),
      BackpressureError,
    );
    assert.equal(s.stats.bufferedBytes, staged, `${format}: the first member was taken back`);
    assert.equal(s.stats.appended, appended);
    await s.sync();
    assert.ok(!s.aliveNodes().some((x) => x.name === "a"), format);
    await s.close();
  }
});

Deno.test("Snapshotter close writes what an earlier failed flush left buffered once the disk has room", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const clock = new ManualClock();
  const s = await openMem(fs, { clock, onBackgroundError: QUIET });
  s.append(alive("a", "10.0.0.1:7946"));
  fs.failAfterBytes(0);
  clock.advance(500);
  await s.settled(); // the timer flush failed: disk full
  fs.failAfterBytes(Infinity); // space freed
  await s.close();
  mem.crash();
  assert.deepEqual((await reopenState(mem)).alive.map((n) => n.name), ["a"]);
});

Deno.test("Snapshotter does no I/O from a flush timer armed before a failed fsync", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const clock = new ManualClock();
  const s = await openMem(fs, { clock, sync: "never" });
  s.append(alive("a", "1"));
  fs.failNextSync();
  const failed = assert.rejects(s.sync(), PoisonedError);
  for (let i = 0; i < 3; i++) await null; // the sync has taken the buffer
  s.append(alive("b", "2")); // arms the flush timer
  await failed;
  const n = fs.ops.length;
  clock.advance(500);
  await s.settled();
  assert.deepEqual(fs.ops.slice(n), []);
});

Deno.test("Snapshotter go-text takes a line longer than the staging buffer, and refuses one over bufferSizeMaxBytes", async () => {
  const mem = new MemFs();
  const s = await openMem(mem, {
    format: "go-text",
    minCompactSizeBytes: 2 ** 52,
    bufferSizeMaxBytes: 8 << 20,
  });
  s.append(alive("a", "1"));
  s.append(alive("L".repeat(3 << 20), "10.0.0.1:1")); // the buffer starts at 1 MiB
  assert.throws(() => s.append(alive("M".repeat(9 << 20), "2")), /larger than bufferSizeMaxBytes/);
  s.append(alive("b", "2"));
  await s.close();
  const names = (await reopenState(mem, { minCompactSizeBytes: 2 ** 52 })).alive.map((n) => n.name.length);
  assert.deepEqual(names, [3 << 20, 1, 1]);
});

/**
 * A version 1 snapshot holding only its header (no salt): a log opened on it appends frames
 * without a salt, where a frame a name holds checks out (until a compaction writes version 2).
 */
function version1File(mem: MemFs): MemFs {
  mem.write(P, encodeFileHeader(FileKind.serfSnapshot, 0));
  return mem;
}

Deno.test("Snapshotter reads a torn last frame whose name holds a valid frame as a torn tail, not corruption", async () => {
  const fake = nameHoldingAFrame();
  for (const [version, recovery] of [[1, "truncate-tail"], [1, "salvage"], [2, "truncate-tail"]] as const) {
    const mem = version === 1 ? version1File(new MemFs()) : new MemFs();
    const clock = new ManualClock();
    const s = await openMem(mem, { clock });
    s.append(alive("good", "10.0.0.1:7946"));
    await s.sync();
    const before = mem.read(P).length;
    // Two bytes put the forged frame on an 8-byte boundary of the file.
    s.append(alive("xx" + fake + "y".repeat(700), "10.0.0.2:7946"));
    clock.advance(500);
    await s.settled(); // written, not fsynced
    const torn = mem.read(P).slice();
    torn.fill(0, torn.length - 200); // a power loss kept the new size, not the last sector
    mem.write(P, torn);
    mem.crash();
    const again = await openMem(mem, { recovery });
    assert.deepEqual(
      names(stateOf(again)),
      ["good"],
      `v${version} ${recovery}: no record from inside the name`,
    );
    assert.equal(again.openReport.tornTailBytes, torn.length - before, recovery);
    assert.deepEqual(again.openReport.skipped, []);
    await again.close();
  }
});

/** A file of alive frames `before`, one whose name holds `inner` (at an 8-byte boundary), `after`; and that frame's offset. */
async function fileWithNameHolding(inner: string): Promise<{ bytes: Uint8Array; at: number }> {
  const mem = version1File(new MemFs()); // where `inner` checks out as a frame
  const s = await openMem(mem, { minCompactSizeBytes: 2 ** 52 });
  s.append(alive("before", "10.0.0.1:7946"));
  await s.sync();
  const at = s.stats.fileBytes;
  // The name starts 14 bytes into the frame (12 of header, 2 of name length): two bytes put
  // `inner` on an 8-byte boundary, where a search for the next frame looks.
  s.append(alive("xx" + inner, "10.0.0.2:7946"));
  for (let i = 0; i < 5; i++) s.append(alive(`after${i}`, "10.0.0.3:7946"));
  await s.close();
  return { bytes: mem.read(P), at };
}

Deno.test("Snapshotter salvage skips a frame whose type byte is damaged, not into the name it holds", async () => {
  // The damaged frame's length is intact, so the search for the next frame starts past it; it
  // started 8 bytes on, inside the name, and applied the frame the name held.
  const { bytes, at } = await fileWithNameHolding(nameHoldingAFrame());
  for (const flip of [0x01, 0x10, 0x40]) {
    const bad = bytes.slice();
    bad[at]! ^= flip;
    const mem = new MemFs();
    mem.write(P, bad);
    const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
    assert.deepEqual(
      r.aliveNodes.map((n) => n.name),
      ["after0", "after1", "after2", "after3", "after4", "before"],
      `type ^ ${flip}`,
    );
    assert.equal(r.warnings.length, 1);
    assert.equal(r.warnings[0]!.line, at);
    assert.equal(r.records, 6);
  }
});

Deno.test("Snapshotter salvage resumes at a long frame cut by the read buffer, not at a frame its name holds", async () => {
  // After damage the search takes the first whole valid frame. A long frame that runs past the
  // bytes at hand must be read whole before a later hit counts: the frame its name holds is
  // whole sooner (the replay's 1 MiB buffer ends inside the long frame here, and the search's
  // first windows are 4 KiB).
  const fake = nameHoldingAFrame();
  const longName = "xx" + fake + "y".repeat(9000);
  const aliveSize = (n: number, a: number): number => frameSize(2 + n + a);
  const X = 24 + (1 << 20) - 4096; // where the long frame starts: 4 KiB before the buffer's end
  const dSize = aliveSize(3, 1);
  const mem = version1File(new MemFs()); // where the name's frame checks out
  const s = await openMem(mem, { minCompactSizeBytes: 2 ** 52 });
  let at = 24;
  for (let i = 0; at < X - dSize; i++) {
    // Fillers up to the damaged frame: 60,000-byte names, then one that lands exactly.
    const gap = X - dSize - at;
    let n = Math.min(60_000, gap - 16);
    while (at + aliveSize(n, 1) > X - dSize) n--;
    if (aliveSize(n, 1) !== gap && gap - aliveSize(n, 1) < 24) n -= 24; // leave room for a last one
    s.append(alive(`${i}`.padEnd(n, "f"), "1"));
    at += aliveSize(n, 1);
  }
  assert.equal(at, X - dSize);
  s.append(alive("dmg", "1"));
  s.append(alive(longName, "10.0.0.2:7946"));
  s.append(alive("after", "10.0.0.3:7946"));
  await s.close();
  const bad = mem.read(P);
  bad[X - dSize + 7]! ^= 0x80; // the damaged frame's length: no plausible extent, search on 8 bytes later
  mem.write(P, bad);
  const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
  const names = r.aliveNodes.map((n) => n.name);
  assert.ok(names.includes(longName), "the long frame is a record");
  assert.ok(names.includes("after"));
  assert.ok(!names.some((n) => n.startsWith("evil")), "not the frame inside its name");
  assert.deepEqual(r.warnings.map((w) => w.line), [X - dSize]);
});

/** A node name whose bytes are a whole frame with a good checksum and an impossible payload (a 7-byte clock). */
function nameHoldingAMalformedFrame(): string {
  for (let n = 0;; n++) {
    const f = new Uint8Array(24);
    f[0] = 3; // clock: its payload must be 8 bytes
    new DataView(f.buffer).setUint32(4, 7, true);
    f.set(new TextEncoder().encode(`c${String(n).padStart(6, "0")}`), 12);
    new DataView(f.buffer).setUint32(8, crc32c(f), true);
    if (f.every((x) => x < 0x80)) return String.fromCharCode(...f);
  }
}

Deno.test("Snapshotter salvage skips a frame with a good checksum and an impossible payload", async () => {
  // Reached after damage, through a name that holds it: salvage threw CorruptionError ("malformed
  // record payload") and kept nothing. The other modes refuse the file, as before.
  const { bytes, at } = await fileWithNameHolding(nameHoldingAMalformedFrame());
  const bad = bytes.slice();
  bad[at + 7]! ^= 0x80; // the length's high bit: no plausible extent, the search goes 8 bytes on
  const mem = new MemFs();
  mem.write(P, bad);
  const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
  assert.deepEqual(r.aliveNodes.map((n) => n.name), [
    "after0",
    "after1",
    "after2",
    "after3",
    "after4",
    "before",
  ]);
  assert.ok(r.warnings.some((w) => /malformed record payload/.test(w.reason)), Deno.inspect(r.warnings));
  for (const recovery of ["strict", "truncate-tail"] as const) {
    await assert.rejects(replaySnapshot(P, { fs: mem, recovery }), CorruptionError, recovery);
  }
  const s = await openMem(mem, { recovery: "salvage" }); // and the repair rewrites the file without it
  assert.equal(s.aliveCount, 6);
  await s.close();
  assert.equal((await replaySnapshot(P, { fs: mem, recovery: "strict" })).aliveNodes.length, 6);
});

Deno.test("Snapshotter strict refuses a last frame whose type byte alone is zero: a zeroed tail is zeros to the end", async () => {
  const { bytes, starts } = await kRecords();
  const bad = bytes.slice();
  bad[starts[K - 1]!] = 0; // its length, checksum and payload intact
  const mem = new MemFs();
  mem.write(P, bad);
  const err = await openMem(mem, { recovery: "strict" }).catch((e) => e);
  assert.ok(err instanceof CorruptionError && err.offset === starts[K - 1], String(err));
  assert.deepEqual(mem.read(P), bad, "strict does not touch the file");
  // The default mode cuts it off as a torn last frame, keeping a copy.
  const s = await openMem(mem);
  assert.equal(s.openReport.tornTailBytes, bytes.length - starts[K - 1]!);
  assert.match(s.openReport.brokenCopy ?? "", /\.broken$/);
  await s.close();
});

Deno.test("Snapshotter reads a sound frame header whose length runs past the end as a torn last append, whatever frames its extent holds", async () => {
  // A torn append's header is whole (type and length share an aligned word) and the frames
  // inside its extent can be a node name's, ending where a crash or a reader's look at the
  // growing file cut it (a page boundary, which a name can aim at): they are never taken for
  // records. A length damaged to claim past the end reads the same way: the frames after it
  // are cut, kept in .broken, and reported as a torn tail (strict refuses the file).
  const { bytes, starts } = await kRecords();
  const bad = bytes.slice();
  const view = new DataView(bad.buffer);
  view.setUint32(starts[1]! + 4, view.getUint32(starts[1]! + 4, true) + 65536, true); // one bit
  const mem = new MemFs();
  mem.write(P, bad);
  await assert.rejects(openMem(mem, { recovery: "strict" }), CorruptionError);
  const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
  assert.deepEqual(r.aliveNodes.map((n) => n.name), ["n0"]);
  assert.equal(r.tornTailBytes, bad.length - starts[1]!);
  assert.deepEqual(r.warnings, []);
  const s = await openMem(mem);
  assert.equal(s.openReport.tornTailBytes, bad.length - starts[1]!);
  assert.match(s.openReport.brokenCopy ?? "", /\.broken$/);
  assert.deepEqual(names(stateOf(s)), ["n0"]);
  await s.close();
});

Deno.test("A replay whose file gets shorter under it (open's repair cut a torn tail) reads what is left, not an error", async () => {
  // A reader racing a log's open threw "file shrank during replay".
  const { torn, starts } = await tornBy5();
  const cutAt = starts[K - 1]!; // open's repair: the torn last frame goes
  for (const shrinkAt of [cutAt, cutAt + 2]) {
    const mem = new MemFs();
    mem.write(P, torn);
    // size() still says the torn length; reads end at shrinkAt, as after a truncate.
    const shrinking = hookedMemFs(mem, (h) => ({
      read: async (buf, position) => {
        const room = Math.max(0, shrinkAt - position);
        return room === 0 ? 0 : await h.read(buf.subarray(0, Math.min(buf.length, room)), position);
      },
    }));
    const r = await replaySnapshot(P, { fs: shrinking, parallel: false });
    assert.deepEqual(r.aliveNodes.map((n) => n.name), firstK(K - 1), `at ${shrinkAt}`);
    assert.equal(r.bytes, shrinkAt);
    assert.equal(r.tornTailBytes, shrinkAt - cutAt);
  }
});

Deno.test("A replay whose file is cut to its last whole frame at any moment returns the state before or after the cut, never an error", async () => {
  // Open's repair truncates a torn tail while a reader may be anywhere in the file, in the
  // scan or in a search after damage: reads of the vanished bytes return 0.
  const mem = new MemFs();
  const w = await openMem(mem, { minCompactSizeBytes: 2 ** 52 });
  for (let i = 0; i < 60_000; i++) w.append(alive(`n${i % 5000}`, `10.0.${i % 250}.1:${i}`));
  await w.close();
  const whole = mem.read(P);
  const cutAt = whole.length;
  const torn = new Uint8Array(whole.length + 30);
  torn.set(whole);
  torn.set(whole.subarray(24, 54), whole.length); // a torn copy of the first frame's start
  for (const damage of [false, true]) {
    const file = torn.slice();
    if (damage) file[(1 << 20) - 16 - ((1 << 20) - 16) % 8 + 9]! ^= 1; // a checksum byte near the first buffer's end
    const before = new MemFs(), after = new MemFs();
    before.write(P, file);
    after.write(P, file.slice(0, cutAt));
    const recovery = damage ? "salvage" : "truncate-tail";
    const states = [
      await replaySnapshot(P, { fs: before, recovery, parallel: false }),
      await replaySnapshot(P, { fs: after, recovery, parallel: false }),
    ].map((r) => JSON.stringify([r.aliveNodes, r.records, r.warnings]));
    for (let reads = 0; reads < 12; reads++) {
      const m = new MemFs();
      m.write(P, file);
      let calls = 0;
      const shrinking = hookedMemFs(m, (h) => ({
        read: async (buf, position) => {
          if (++calls <= reads) return await h.read(buf, position);
          const room = Math.max(0, cutAt - position);
          return room === 0 ? 0 : await h.read(buf.subarray(0, Math.min(buf.length, room)), position);
        },
      }));
      const r = await replaySnapshot(P, { fs: shrinking, recovery, parallel: false });
      const got = JSON.stringify([r.aliveNodes, r.records, r.warnings]);
      assert.ok(states.includes(got), `damage ${damage}, cut after ${reads} reads`);
    }
  }
});

Deno.test("Snapshotter finds a sound frame header whose extent ends inside the last frames as corruption (a damaged length, no tear)", async () => {
  // The torn-append rule for a sound header first applied to it too, and 26 of 39 records
  // were cut without a warning (10 of 12,480 single-bit flips of a 40-record file).
  const { bytes, starts } = await kRecords();
  const bad = bytes.slice();
  const i = K - 3;
  // Its length now ends its extent 8 bytes into the last frame.
  new DataView(bad.buffer).setUint32(starts[i]! + 4, starts[K - 1]! + 8 - starts[i]! - 12, true);
  const mem = new MemFs();
  mem.write(P, bad);
  const err = await openMem(mem).catch((e) => e);
  assert.ok(err instanceof CorruptionError && err.offset === starts[i], String(err));
  const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
  assert.deepEqual(r.aliveNodes.map((n) => n.name), firstK(K).filter((n) => n !== `n${i}`));
  assert.equal(r.tornTailBytes, 0);
});

Deno.test("Snapshotter reads an append torn where the frames in its name end as a torn tail, in every mode and to a live reader", async () => {
  // A reader of a growing file (or a crash) can cut an append at the end of a frame its name
  // holds: the default mode reported corruption there, and salvage returned the node inside
  // the name, one the log never had.
  const fake = nameHoldingAFrame();
  const mem = new MemFs();
  const s = await openMem(mem, { minCompactSizeBytes: 2 ** 52 });
  s.append(alive("real", "10.0.0.1:7946"));
  await s.sync();
  const at = s.stats.fileBytes;
  s.append(alive("xx" + fake + "y".repeat(5000), "10.0.0.2:7946"));
  await s.close();
  const whole = mem.read(P);
  // The same file with 20 appends after the long one.
  const mem2 = new MemFs();
  mem2.write(P, whole);
  const s2 = await openMem(mem2, { minCompactSizeBytes: 2 ** 52 });
  for (let i = 0; i < 20; i++) s2.append(alive(`later${i}`, "10.0.0.3:7946"));
  await s2.close();
  const longer = mem2.read(P);
  // The name's frame is no frame under the file's salt (version 2); in a version 1 file, which
  // has none, it checks out, and the recovery rules must see through it.
  for (const [version, as] of [[2, (b: Uint8Array) => b], [1, asVersion1]] as const) {
    const cut = as(whole.subarray(0, at + 16 + fake.length)); // the name's frame ends here
    for (const recovery of ["truncate-tail", "salvage", "strict"] as const) {
      const m = new MemFs();
      m.write(P, cut);
      if (recovery === "strict") {
        await assert.rejects(replaySnapshot(P, { fs: m, recovery }), /incomplete/);
        continue;
      }
      const r = await replaySnapshot(P, { fs: m, recovery });
      assert.deepEqual(r.aliveNodes.map((n) => n.name), ["real"], `v${version} ${recovery}`);
      assert.equal(r.tornTailBytes, cut.length - at, `v${version} ${recovery}`);
      assert.deepEqual(r.warnings, [], `v${version} ${recovery}`);
    }
    // A crash that keeps the size and zeroes what the tear lost (the sectors after it, here the
    // crafted frame's rest and 20 appends after it): the torn frame is whole by its length, ends
    // inside the zeros, and fails its checksum.
    const zeroed = as(longer);
    // (All but the torn frame's checksum field, which asVersion1 leaves as it is in a frame cut short.)
    assert.deepEqual(zeroed.subarray(0, at + 8), cut.subarray(0, at + 8));
    assert.deepEqual(zeroed.subarray(at + 12, cut.length), cut.subarray(at + 12));
    zeroed.fill(0, cut.length);
    for (const recovery of ["truncate-tail", "salvage"] as const) {
      const m = new MemFs();
      m.write(P, zeroed);
      const r = await replaySnapshot(P, { fs: m, recovery });
      assert.deepEqual(r.aliveNodes.map((n) => n.name), ["real"], `v${version} zeroed, ${recovery}`);
      assert.equal(r.tornTailBytes, zeroed.length - at, `v${version} zeroed, ${recovery}`);
      assert.deepEqual(r.warnings, [], `v${version} zeroed, ${recovery}`);
    }
    // And the whole file reads the long node, not the one inside it.
    const m = new MemFs();
    m.write(P, as(whole));
    const r = await replaySnapshot(P, { fs: m, recovery: "strict" });
    assert.deepEqual(r.aliveNodes.map((n) => n.name.slice(0, 2)), ["re", "xx"], `v${version}`);
  }
});

Deno.test("Snapshotter finds a damaged header word whose length covers the rest of the file as corruption, whatever else is damaged", async () => {
  // Each case was read as a torn tail: every good record after the damage cut off, no warning.
  const { bytes, starts } = await kRecords();
  const lengthAt = (i: number): number => starts[i]! + 4;
  const cases: [string, (b: Uint8Array, v: DataView) => void, string[]][] = [
    ["flags byte and a length past the end", (b, v) => {
      b[starts[1]! + 1] = 0xff;
      v.setUint32(lengthAt(1), v.getUint32(lengthAt(1), true) + 65536, true);
    }, ["n0", "n2", "n3", "n4"]],
    ["type 0 and a length past the end", (b, v) => {
      b[starts[1]!] = 0;
      v.setUint32(lengthAt(1), v.getUint32(lengthAt(1), true) + 65536, true);
    }, ["n0", "n2", "n3", "n4"]],
    ["flags byte, a length past the end and a later frame's flipped payload bit", (b, v) => {
      b[starts[1]! + 1] = 0x40;
      v.setUint32(lengthAt(1), v.getUint32(lengthAt(1), true) + 65536, true);
      b[starts[3]! + 16]! ^= 1;
    }, ["n0", "n2", "n4"]],
    ["reserved byte and a length whose extent ends exactly at the end of the file", (b, v) => {
      b[starts[1]! + 3] = 1;
      v.setUint32(lengthAt(1), bytes.length - starts[1]! - 12, true);
    }, ["n0", "n2", "n3", "n4"]],
  ];
  for (const [what, damage, kept] of cases) {
    const bad = bytes.slice();
    damage(bad, new DataView(bad.buffer));
    const mem = new MemFs();
    mem.write(P, bad);
    const err = await openMem(mem).catch((e) => e);
    assert.ok(err instanceof CorruptionError && err.offset === starts[1], `${what}: ${err}`);
    assert.match(err.message, new RegExp(`valid records resume at offset ${starts[2]}`), what);
    assert.deepEqual(mem.read(P), bad, `${what}: refused, not cut`);
    const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
    assert.deepEqual(r.aliveNodes.map((n) => n.name), kept, what);
    assert.equal(r.tornTailBytes, 0, what);
    const s = await openMem(mem, { recovery: "salvage" });
    assert.deepEqual(names(stateOf(s)), kept, what);
    await s.close();
  }
});

Deno.test("Snapshotter leave() records a leave on every call, as serf's Leave: a retry and a later leave both count", async () => {
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const fs = new FaultFs(mem);
    const s = await openMem(fs, { format, sync: "never", onBackgroundError: () => {} });
    s.append(alive("a", "10.0.0.1:7946"));
    fs.failNextWrite();
    await assert.rejects(s.leave(), /records stay buffered/);
    await s.sync(); // the buffered leave reaches the disk another way
    s.append(alive("x", "10.0.0.9:7946")); // appends are still recorded after a leave
    await s.leave(); // must record a leave after x, or x would replay alive
    await s.close();
    const types: string[] = [];
    for await (const e of readSnapshotRecords(P, { fs: mem })) {
      if (e.record !== null) types.push(e.record.type);
    }
    assert.deepEqual(types.filter((t) => t !== "clock"), ["alive", "leave", "alive", "leave"], format);
    assert.deepEqual((await replaySnapshot(P, { fs: mem })).aliveNodes, [], format);
  }
});

Deno.test("Snapshotter writes a burst in pieces, and a piece that fails undoes them all", async () => {
  // One write of the whole burst was one synchronous seal-and-apply of all of it: 80-160 ms of
  // the event loop after 200k records. Pieces keep each pause short; the failure semantics
  // stay those of one write: nothing is consumed until the last piece is written. (Pieces of
  // 2 MiB here, 8 MiB by default.)
  const saved = writePolicy.pieceBytes;
  writePolicy.pieceBytes = 2 << 20;
  try {
    for (const format of ["binary", "go-text"] as const) {
      const mem = new MemFs();
      const fs = new FaultFs(mem);
      const errors: unknown[] = []; // the flush started past 1 MiB staged meets the full disk too
      const s = await openMem(fs, {
        format,
        sync: "never",
        bufferSizeMaxBytes: 64 << 20,
        onBackgroundError: (e) => errors.push(e),
      });
      const before = mem.read(P);
      const n = 150_000;
      for (let i = 0; i < n; i++) s.append(alive(`node-${i % 40_000}`, `10.0.${i % 250}.${i % 200}:7946`));
      const staged = s.stats.bufferedBytes;
      assert.ok(staged > 4 << 20, `${format}: ${staged}`);
      fs.failAfterBytes(3 << 20); // the second piece meets a full disk
      const opsBefore = fs.ops.length;
      await assert.rejects(s.sync(), /No space left on device.*records stay buffered/);
      // The first attempt: a whole first piece, a second one cut by the full disk, then undone.
      const ops = fs.ops.slice(opsBefore);
      const size = (op: string): number => Number(op.split(" ").at(-1));
      assert.ok(ops[0]!.startsWith("write ") && ops[1]!.startsWith("write "), `${format}: ${ops}`);
      assert.ok(size(ops[0]!) <= 2 << 20 && size(ops[0]!) > (2 << 20) - 4096, `${format}: ${ops}`);
      assert.equal(ops[2], `truncate ${P} ${before.length}`, format);
      assert.deepEqual(mem.read(P), before, `${format}: the first piece was cut off again`);
      assert.equal(s.stats.bufferedBytes, staged, `${format}: every record still buffered`);
      fs.failAfterBytes(Infinity);
      const retry = fs.ops.length;
      await s.sync();
      const sizes = fs.ops.slice(retry).filter((op) => op.startsWith("write ")).map((op) =>
        Number(op.split(" ").at(-1))
      );
      assert.equal(sizes.reduce((a, b) => a + b, 0), staged, format);
      assert.ok(sizes.length >= 3 && sizes.every((b) => b <= 2 << 20), `${format}: ${sizes}`);
      const live = stateOf(s);
      await s.close();
      const replayed = await replaySnapshot(P, { fs: mem, recovery: "strict" });
      assert.deepEqual(replayed.aliveNodes, live.alive, format);
      assert.equal(replayed.aliveNodes.length, 40_000, format);
    }
  } finally {
    writePolicy.pieceBytes = saved;
  }
});

Deno.test("Salvage past many damaged frames whose lengths claim the rest of the file reads each stretch about once", async () => {
  // Each damage walked the rest of the file again to see whether the frames reach its end:
  // 73 s for 5,400 damaged headers in a 128 KiB tail. Counted in bytes read, not timed.
  const mem = new MemFs();
  const w = await openMem(mem);
  for (let i = 0; i < 50; i++) w.append(alive(`n${i}`, "10.0.0.1:1"));
  w.append({ type: "leave" });
  await w.close();
  const base = mem.read(P);
  const leave = base.subarray(base.length - 16);
  const k = 200;
  const file = new Uint8Array(base.length + 24 * k);
  file.set(base);
  for (let i = 0; i < k; i++) {
    const at = base.length + 24 * i;
    file[at] = 0x7f; // an unknown type, and a length that claims past the end of the file
    new DataView(file.buffer).setUint32(at + 4, 131_000, true);
    file.set(leave, at + 8);
  }
  mem.write(P, file);
  const counting = readCounting(mem);
  const r = await replaySnapshot(P, { fs: counting.fs, recovery: "salvage" });
  const read = counting.bytes();
  assert.equal(r.warnings.length, k);
  assert.equal(r.aliveNodes.length, 0, "the leaves were kept");
  assert.ok(read < 4 * k * file.length, `${read} bytes read for a ${file.length}-byte file`);
});

Deno.test("Salvage past damaged frames a frame apart reads the file about once, not a window per damage", async () => {
  // Each damaged frame made the search read a 1 MiB window and the scan read it again: 2 GiB
  // read for 2,000 damaged frames before a 1 MiB tail. Counted in bytes read, not timed.
  const mem = new MemFs();
  const w = await openMem(mem);
  for (let i = 0; i < 2000; i++) {
    w.append({ type: "clock", value: BigInt(i) });
    w.append({ type: "event-clock", value: BigInt(i) });
  }
  for (let i = 0; i < 40_000; i++) w.append({ type: "query-clock", value: BigInt(i) });
  await w.close();
  const file = mem.read(P);
  // Damage every event-clock frame's checksum (frames of 24 bytes after the 24-byte header).
  for (let i = 0; i < 2000; i++) file[24 + 48 * i + 24 + 8]! ^= 0xff;
  mem.write(P, file);
  const counting = readCounting(mem);
  const r = await replaySnapshot(P, { fs: counting.fs, recovery: "salvage" });
  const read = counting.bytes();
  assert.equal(r.warnings.length, 2000);
  assert.equal(r.lastClock, 1999n);
  assert.equal(r.lastEventClock, 0n, "every event-clock frame was damaged");
  assert.equal(r.lastQueryClock, 39_999n);
  assert.ok(read < 3 * file.length, `${read} bytes read for a ${file.length}-byte file`);
});

Deno.test("Snapshotter still finds corruption when a damaged length covers the frames after it", async () => {
  const { bytes, starts } = await kRecords();
  const bad = bytes.slice();
  // Frame 1's length grows by 16: its checksum fails and its claimed extent covers frame 2's
  // start, so the search for records after the damage goes on from the claimed end.
  new DataView(bad.buffer).setUint32(
    starts[1]! + 4,
    new DataView(bad.buffer).getUint32(starts[1]! + 4, true) + 16,
    true,
  );
  const damaged = new MemFs();
  damaged.write(P, bad);
  const err = await openMem(damaged).catch((e) => e);
  assert.ok(err instanceof CorruptionError && err.offset === starts[1], String(err));
  const mem = new MemFs();
  mem.write(P, bad);
  const s = await openMem(mem, { recovery: "salvage" });
  // Salvage keeps what follows the claimed extent; frame 2 lay inside it.
  assert.deepEqual(names(stateOf(s)), ["n0", ...firstK(K).slice(3)]);
  await s.close();
});

Deno.test("Snapshotter: a failed write's error names the file once", async () => {
  const fs = new FaultFs(new MemFs());
  const s = await Snapshotter.open(P, { fs, clock: new ManualClock() });
  s.append({ type: "alive", name: "a", addr: "10.0.0.1:1" });
  // denoFs's own error already says what failed and where.
  fs.failNext("write", new Error(`Cannot write "${P}": No space left on device (os error 28)`));
  await assert.rejects(s.sync(), (e: Error) => {
    assert.equal(
      e.message,
      `Cannot write "${P}": No space left on device (os error 28); the records stay buffered`,
    );
    return true;
  });
  await s.sync(); // the records were kept
  await s.close();
});

Deno.test("Snapshotter: close() of a poisoned log rejects with PoisonedError, as every other call does", async () => {
  for (const when of ["before", "during"] as const) {
    const fs = new FaultFs(new MemFs());
    const s = await Snapshotter.open(P, { fs, clock: new ManualClock() });
    s.append({ type: "alive", name: "a", addr: "10.0.0.1:1" });
    fs.failNext("datasync");
    if (when === "before") await assert.rejects(s.sync(), PoisonedError);
    await assert.rejects(s.close(), (e: Error) => {
      assert.ok(e instanceof PoisonedError, `${when}: ${e}`);
      assert.match(
        e.message,
        /^Cannot close ".*" \(0 buffered bytes not written and \d+ bytes not fsynced\): /,
      );
      return true;
    });
  }
});

Deno.test("Snapshotter reuses only a .broken copy that is a whole regular file of the same bytes, never the snapshot itself", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/s.snap`;
    const torn = "alive: a 10.0.0.1:7946\n".repeat(100) + "alive: b 10.0";
    // A directory of the same reported size is skipped, not read (the open failed for good).
    await Deno.writeTextFile(path, torn);
    await Deno.mkdir(`${path}.broken`);
    const dirSize = (await Deno.stat(`${path}.broken`)).size;
    await Deno.writeTextFile(path, torn.padEnd(dirSize, "x").slice(0, dirSize - 13) + "alive: b 10.0");
    const whole = await Deno.readFile(path);
    let s = await Snapshotter.open(path, { format: "go-text" });
    assert.equal(s.openReport.brokenCopy, `${path}.broken.1`);
    await s.close();
    assert.deepEqual(await Deno.readFile(`${path}.broken.1`), whole);
    await Deno.remove(dir, { recursive: true });
    await Deno.mkdir(dir);
    // A .broken that is a link to the snapshot holds "the same bytes" only because it is the
    // snapshot: the repair would cut the evidence away with it.
    await Deno.writeTextFile(path, torn);
    await Deno.symlink(path, `${path}.broken`);
    s = await Snapshotter.open(path, { format: "go-text" });
    assert.equal(s.openReport.brokenCopy, `${path}.broken.1`);
    await s.close();
    assert.equal(await Deno.readTextFile(`${path}.broken.1`), torn);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("Snapshotter: a failed .broken copy keeps its Deno error class", async () => {
  const { bytes } = await kRecords();
  const mem = new MemFs();
  mem.write(P, bytes.slice(0, bytes.length - 3));
  const fs = new FaultFs(mem);
  fs.failNext("rename", new Deno.errors.PermissionDenied("Permission denied (os error 13)"));
  await assert.rejects(Snapshotter.open(P, { fs, clock: new ManualClock() }), (e: Error) => {
    assert.ok(e instanceof Deno.errors.PermissionDenied, String(e));
    assert.match(e.message, /^Cannot repair .*Permission denied/);
    return true;
  });
});

Deno.test("Snapshotter: a gauge that finds the alive set no longer fits poisons the log instead of throwing", async () => {
  // aliveCount threw the RangeError on every read until a write came along.
  const mem = new MemFs();
  const s = await openMem(mem, { sync: "never" });
  s.append(alive("a", "10.0.0.1:7946"));
  await s.sync();
  applyFaults.outOfMemory = true;
  try {
    s.append(alive("b", "10.0.0.2:7946"));
    assert.equal(s.aliveCount, 1);
    assert.equal(s.aliveCount, 1);
    assert.deepEqual(s.aliveNodes().map((n) => n.name), ["a"]);
  } finally {
    applyFaults.outOfMemory = false;
  }
  assert.throws(() => s.append(alive("c", "1")), PoisonedError);
  await assert.rejects(s.close(), PoisonedError);
});

Deno.test("Snapshotter finds a damaged length that points into real frames before a zeroed tail as corruption", async () => {
  // The zeroed-tail rule (a sound torn frame whose extent ends in the zeros) first applied to
  // every sound header whose extent ends inside a file that ends in zeros: a flipped length
  // pointing into real frames cut them as a torn tail.
  const { bytes, starts } = await kRecords();
  const file = new Uint8Array(bytes.length + 512); // a preallocated tail
  file.set(bytes);
  const v = new DataView(file.buffer);
  v.setUint32(starts[1]! + 4, starts[4]! + 8 - starts[1]! - 12, true); // ends 8 bytes into the last frame
  const mem = new MemFs();
  mem.write(P, file);
  const err = await openMem(mem).catch((e) => e);
  assert.ok(err instanceof CorruptionError && err.offset === starts[1], String(err));
  const r = await replaySnapshot(P, { fs: mem, recovery: "salvage" });
  assert.deepEqual(r.aliveNodes.map((n) => n.name), ["n0", "n2", "n3", "n4"]);
});

Deno.test("Snapshotter refuses further work, cleanly, once its alive set stops fitting in Wasm memory", async () => {
  // The record an apply stopped at could never be applied: every sync() failed on it again,
  // append() kept taking records behind it until back-pressure, and aliveCount threw.
  const mem = new MemFs();
  const s = await openMem(mem);
  s.append(alive("a", "10.0.0.1:7946"));
  await s.sync();
  s.append(alive("b", "10.0.0.2:7946"));
  applyFaults.outOfMemory = true;
  let err;
  try {
    err = await s.sync().catch((e) => e);
    assert.equal(s.aliveCount, 1, "the count so far, no error");
    assert.deepEqual(s.aliveNodes().map((n) => n.name), ["a"]);
  } finally {
    applyFaults.outOfMemory = false;
  }
  assert.ok(err instanceof PoisonedError, String(err));
  assert.match(err.message, /stopped fitting in memory/);
  assert.ok(err.cause instanceof RangeError);
  assert.throws(() => s.append(alive("c", "1")), PoisonedError);
  await assert.rejects(s.sync(), PoisonedError);
  await assert.rejects(s.close(), PoisonedError); // reports, and releases the lock
  const again = await openMem(mem);
  assert.deepEqual(names(stateOf(again)), ["a"], "what was acknowledged, nothing half-applied");
  await again.close();
});

Deno.test("Snapshotter: a stack overflow while applying staged records does not poison the log", async () => {
  // Every RangeError from an apply poisoned the log, and V8's "Maximum call stack size
  // exceeded" is one: a gauge read deep in a recursion left the log refusing every write.
  for (const format of ["binary", "go-text"] as const) {
    const mem = new MemFs();
    const s = await openMem(mem, { format, sync: "never" });
    s.append(alive("a", "10.0.0.1:7946"));
    let n = 0;
    const deep = (): void => {
      try {
        deep();
      } catch {
        // Near the stack's limit: stage a record and read the gauge.
        s.append(alive(`n${n++}`, "10.0.0.2:7946"));
        void s.aliveCount;
      }
    };
    try {
      deep();
    } catch {
      // the overflow, as any deep recursion ends
    }
    s.append(alive("later", "10.0.0.3:7946"));
    await s.sync();
    await s.close();
    const names = (await replaySnapshot(P, { fs: mem })).aliveNodes.map((x) => x.name);
    assert.ok(names.includes("later") && names.includes("a"), format);
  }
});

Deno.test("Snapshotter writes what is staged when a deferred clock finds no room and the buffer cannot grow", async () => {
  // The member clock is staged first at a write; a full buffer that could not grow for want of
  // Wasm memory threw before anything was written, on every sync and timer flush, for good.
  const mem = new MemFs();
  const clock = new ManualClock();
  const lamport = { now: 5n };
  const s = await openMem(mem, { clock, sync: "never", lamportClock: () => lamport.now });
  applyFaults.growOutOfMemory = true;
  try {
    let staged = 0;
    for (;;) {
      try {
        s.append(alive(`n${staged}`, "10.0.0.1:7946"));
        staged++;
      } catch (e) {
        assert.ok(e instanceof RangeError, String(e)); // the buffer is full and cannot grow
        break;
      }
    }
    lamport.now = 100n;
    clock.advance(500); // serf's clock tick: a member clock waits to be staged
    await s.sync();
    assert.equal(s.stats.bufferedBytes, 0);
    assert.equal(s.lastClock, 99n);
    await s.close();
    const r = await replaySnapshot(P, { fs: mem });
    assert.equal(r.aliveNodes.length, staged);
    assert.equal(r.lastClock, 99n);
  } finally {
    applyFaults.growOutOfMemory = false;
  }
});
