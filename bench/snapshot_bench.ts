// Serf snapshot benchmarks: appends (buffered, and sync() after every append with 1, 64
// and 1024 concurrent appenders), replay at 100k, 1M and 5M records, and compaction at 10k
// and 100k alive nodes. Each group holds its baseline: serf's Go text format written by
// snaplog for format comparisons, the raw write+fdatasync round trip for the durable
// appends (the ceiling no log can pass), and SQLite in WAL mode where it fits.
//
// Run as a script it measures peak memory of one replay in this process:
//   deno run -A bench/snapshot_bench.ts replay-rss FILE
import { replaySnapshot, Snapshotter } from "../mod.ts";
import type { SnapshotRecord } from "../src/serf/records.ts";
import { WasmCore } from "../src/_wasm/core.ts";
import { SerfState } from "../src/serf/_state.ts";
import { newBinaryCodec } from "../src/serf/_codec.ts";
import { decodeFileHeader, FILE_HEADER_BYTES } from "../src/core/frame.ts";
import { SERF_RECORD_SIZE_MAX, type SerfBinaryExports } from "../src/serf/binary.ts";
import {
  type BenchGen,
  onSuiteEnd,
  suiteBench,
  suiteGroup,
  type SuiteOptions,
  suiteTempDir,
} from "./_harness.ts";
import { removeSqliteFiles, SqliteSnapshotStore } from "./sqlite_bench.ts";
import { feedSnapshotter, Workload, writeGoTextSnapshot } from "./workload.ts";

/** Seed of every benchmark workload: the same history in every run and every format. */
export const BENCH_SEED = 20240601;
/** Cluster size of the benchmark workloads (serf clusters of this size are common). */
export const BENCH_NODES = 10_000;
/** Large enough that no compaction runs in the middle of a benchmark. */
export const NO_COMPACTION = 2 ** 52;

type Format = "binary" | "go-text";

/** The first `n` records of the benchmark workload, in memory (for timing appends alone). */
export function workloadRecords(n: number, nodes = BENCH_NODES): SnapshotRecord[] {
  const out: SnapshotRecord[] = [];
  for (const r of new Workload({ seed: BENCH_SEED, nodes, records: n }).records()) {
    if (out.length === n) break;
    out.push(r);
  }
  return out;
}

let fileSeq = 0;
async function freshPath(label: string): Promise<string> {
  return `${await suiteTempDir()}/${label}-${++fileSeq}`;
}

async function removeSnapshot(path: string): Promise<void> {
  for (const p of [path, `${path}.lock`, `${path}.compact`]) await Deno.remove(p).catch(() => {});
}

/**
 * Writes the benchmark workload's first `records` records as a snapshot in `format`:
 * binary through a Snapshotter, go-text with the generator's direct writer (the same lines
 * a go-text Snapshotter writes; test/workload_test.ts checks they replay the same).
 */
export async function writeWorkloadSnapshot(
  path: string,
  format: Format,
  records: number,
  nodes = BENCH_NODES,
): Promise<{ records: number; bytes: number }> {
  if (format === "go-text") {
    const r = await writeGoTextSnapshot(path, { seed: BENCH_SEED, nodes, records });
    return { records: r.records, bytes: r.bytes };
  }
  const snap = await Snapshotter.open(path, {
    format: "binary",
    sync: "never",
    minCompactSizeBytes: NO_COMPACTION,
  });
  const n = await feedSnapshotter(snap, new Workload({ seed: BENCH_SEED, nodes, records }).records());
  await snap.close();
  await Deno.remove(`${path}.lock`).catch(() => {});
  return { records: n, bytes: (await Deno.stat(path)).size };
}

async function openForAppend(path: string, format: Format): Promise<Snapshotter> {
  return await Snapshotter.open(path, { format, sync: "interval", minCompactSizeBytes: NO_COMPACTION });
}

/** Registers the serf snapshot groups. */
export function registerSnapshotBenches(opts: SuiteOptions): void {
  registerAppendBuffered(opts);
  for (const appenders of [1, 64, 1024]) registerAppendSynced(appenders);
  for (const n of opts.short ? [100_000, 1_000_000] : [100_000, 1_000_000, 5_000_000]) registerReplay(n);
  for (const n of [10_000, 100_000]) registerCompaction(n);
  for (const n of [10_000, 100_000]) registerStateMove(n);
}

function registerAppendBuffered(opts: SuiteOptions): void {
  // A batch per iteration, then one sync(): the sync both drains the buffer (a loop of
  // appends never yields to the event loop that writes) and charges the write and one
  // fdatasync to the batch, so the figure is what reaches the disk, not just memory.
  const batch = opts.short ? 1 << 17 : 1 << 18;
  const label = batch.toLocaleString("en-US");
  let records: SnapshotRecord[] | undefined;
  const getRecords = (): SnapshotRecord[] => (records ??= workloadRecords(batch));
  suiteGroup(`serf append, buffered (sync "interval"), ${label} records + one sync()`, () => {
    for (const format of ["go-text", "binary"] as const) {
      suiteBench(`snaplog ${format}`, { records: batch }, async function* (): BenchGen {
        const recs = getRecords();
        const path = await freshPath(`append-${format}`);
        const snap = await openForAppend(path, format);
        yield async () => {
          for (let i = 0; i < recs.length; i++) snap.append(recs[i]!);
          await snap.sync();
        };
        await snap.close();
        await removeSnapshot(path);
      }, { baseline: format === "go-text" });
    }
    suiteBench(
      "sqlite WAL, synchronous=NORMAL, one transaction",
      { records: batch },
      async function* (): BenchGen {
        const recs = getRecords();
        const path = await freshPath("append-sqlite");
        const db = new SqliteSnapshotStore(path, "normal");
        yield () => {
          db.begin();
          for (let i = 0; i < recs.length; i++) db.append(recs[i]!);
          db.commit();
        };
        db.close();
        await removeSqliteFiles(path);
      },
    );
  });
}

function registerAppendSynced(appenders: number): void {
  let records: SnapshotRecord[] | undefined;
  const getRecords = (): SnapshotRecord[] => (records ??= workloadRecords(1 << 16));
  const name = `serf append + sync() per append, ${appenders} concurrent appender${appenders > 1 ? "s" : ""}`;
  suiteGroup(name, () => {
    // The ceiling: the same bytes appended and fdatasynced by hand, once per round of
    // `appenders` records (what perfect group commit would do).
    suiteBench(
      "raw write + fdatasync per round (ceiling)",
      { records: appenders },
      async function* (): BenchGen {
        const path = await freshPath("fsync-ceiling");
        const file = await Deno.open(path, { write: true, create: true, truncate: true });
        const data = new Uint8Array(appenders * 32).fill(0x61); // ~ a binary alive frame per record
        yield async () => {
          let off = 0;
          while (off < data.length) off += await file.write(data.subarray(off));
          await file.syncData();
        };
        file.close();
        await Deno.remove(path);
      },
      { baseline: true },
    );
    for (const format of ["go-text", "binary"] as const) {
      suiteBench(`snaplog ${format}`, { records: appenders }, async function* (): BenchGen {
        const recs = getRecords();
        const path = await freshPath(`sync-${format}`);
        const snap = await openForAppend(path, format);
        let next = 0;
        const one = async (): Promise<void> => {
          snap.append(recs[next++ & 0xffff]!);
          await snap.sync();
        };
        yield async () => {
          if (appenders === 1) return await one();
          const all: Promise<void>[] = [];
          for (let i = 0; i < appenders; i++) all.push(one());
          await Promise.all(all);
        };
        await snap.close();
        await removeSnapshot(path);
      });
    }
    if (appenders === 1) {
      suiteBench(
        "sqlite WAL, synchronous=FULL, commit per record",
        { records: 1 },
        async function* (): BenchGen {
          const recs = getRecords();
          const path = await freshPath("sync-sqlite");
          const db = new SqliteSnapshotStore(path, "full");
          let next = 0;
          yield () => db.append(recs[next++ & 0xffff]!);
          db.close();
          await removeSqliteFiles(path);
        },
      );
    }
  });
}

function registerReplay(n: number): void {
  const label = n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
  // One file per format, generated on first use and shared by the benches of the group.
  const files = new Map<string, Promise<{ path: string; records: number; bytes: number }>>();
  const file = (format: Format): Promise<{ path: string; records: number; bytes: number }> => {
    let f = files.get(format);
    if (!f) {
      f = (async () => {
        const path = await freshPath(`replay-${label}.${format === "binary" ? "snap" : "txt"}`);
        onSuiteEnd(() => removeSnapshot(path));
        return { path, ...(await writeWorkloadSnapshot(path, format, n)) };
      })();
      files.set(format, f);
    }
    return f;
  };
  suiteGroup(`serf replay, ${label} records (${BENCH_NODES.toLocaleString("en-US")} nodes churning)`, () => {
    for (const format of ["go-text", "binary"] as const) {
      // Bytes per iteration differ by format; records are the same, so the ratio is fair.
      suiteBench(`snaplog replaySnapshot, ${format}`, { records: n }, async function* (): BenchGen {
        const f = await file(format);
        yield async () => {
          const s = await replaySnapshot(f.path);
          if (s.records !== f.records) throw new Error(`replay read ${s.records} of ${f.records} records`);
        };
      }, { baseline: format === "go-text" });
    }
    if (n <= 1_000_000) {
      suiteBench("sqlite WAL: SELECT alive set + clocks", { records: n }, async function* (): BenchGen {
        const { db, path } = await sqliteWith(n);
        yield () => {
          if (db.readState().aliveNodes.length === 0) throw new Error("sqlite has no alive nodes");
        };
        db.close();
        await removeSqliteFiles(path);
      });
      suiteBench(
        "sqlite WAL: SELECT every record, replay into a Map",
        { records: n },
        async function* (): BenchGen {
          const { db, path } = await sqliteWith(n);
          yield () => {
            if (db.replayAll().records !== n) throw new Error("sqlite lost records");
          };
          db.close();
          await removeSqliteFiles(path);
        },
      );
    }
  });
}

async function sqliteWith(n: number): Promise<{ db: SqliteSnapshotStore; path: string }> {
  const path = await freshPath("replay-sqlite");
  const db = new SqliteSnapshotStore(path, "normal");
  let i = 0;
  db.begin();
  for (const r of new Workload({ seed: BENCH_SEED, nodes: BENCH_NODES, records: n }).records()) {
    if (i++ === n) break;
    db.append(r);
    if (i % 100_000 === 0) {
      db.commit();
      db.begin();
    }
  }
  db.commit();
  return { db, path };
}

function registerCompaction(alive: number): void {
  const label = alive.toLocaleString("en-US");
  suiteGroup(`serf compaction, ${label} alive nodes`, () => {
    for (const format of ["go-text", "binary"] as const) {
      suiteBench(`snaplog compact(), ${format}`, { records: alive }, async function* (): BenchGen {
        const path = await freshPath(`compact-${format}`);
        const snap = await openForAppend(path, format);
        await fillAlive(snap, alive);
        let round = 0;
        yield async () => {
          // A few changes since the last compaction, so every compaction has work to do.
          for (let i = 0; i < 8; i++) {
            snap.append({
              type: "alive",
              name: `node-${String(i).padStart(6, "0")}`,
              addr: `10.9.${round & 255}.${i + 1}:7946`,
            });
          }
          snap.append({ type: "clock", value: BigInt(alive + ++round) });
          await snap.compact();
        };
        await snap.close();
        await removeSnapshot(path);
      }, { baseline: format === "go-text" });
    }
  });
}

function registerStateMove(alive: number): void {
  // What a log pays to give back the memory a burst took (BinaryCodec.trim): its alive set
  // moved to a fresh Wasm instance. Baseline: the same nodes inserted again, by replaying
  // the state's compacted frames into the fresh instance (fresh pages touched per insert).
  const label = alive.toLocaleString("en-US");
  let source: { state: SerfState; frames: Uint8Array; salt: number } | undefined;
  // Built on first use, so a filtered-out group costs nothing.
  const getSource = (): { state: SerfState; frames: Uint8Array; salt: number } => {
    if (source !== undefined) return source;
    const codec = newBinaryCodec(false);
    codec.grow(alive * 64); // room for every record staged at once
    for (let i = 0; i < alive; i++) {
      const n = String(i).padStart(6, "0");
      const ok = codec.encode({
        type: "alive",
        name: `node-${n}`,
        addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`,
      });
      if (!ok) throw new Error("the staging buffer is full");
    }
    const chunks: Uint8Array[] = [];
    codec.compactInto((c) => chunks.push(c.slice()));
    const frames = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((at, c) => (frames.set(c, at), at + c.length), 0);
    const header = decodeFileHeader(frames.subarray(0, FILE_HEADER_BYTES));
    if (typeof header === "string") throw new Error(`the compacted image's header: ${header}`);
    return source = { state: codec.state, frames: frames.subarray(FILE_HEADER_BYTES), salt: header.salt };
  };
  suiteGroup(`serf state moved to a fresh Wasm instance, ${label} alive nodes`, () => {
    suiteBench(
      "re-insert from the compacted frames",
      { records: alive },
      function* (): Generator<() => void> {
        const { frames, salt } = getSource();
        yield () => {
          const core = new WasmCore();
          const state = new SerfState(core);
          state.reset(false);
          const ptr = core.alloc(frames.length);
          core.u8.set(frames, ptr);
          const x = core.exports as unknown as SerfBinaryExports;
          if (x.serf_scan_apply(ptr, frames.length, SERF_RECORD_SIZE_MAX, 0xffffffff, salt) !== 0) {
            throw new Error("the compacted frames did not apply");
          }
          if (state.count !== alive) throw new Error(`${state.count} nodes moved, expected ${alive}`);
        };
      },
      { baseline: true },
    );
    suiteBench(
      "SerfState.adopt (the table copied as it is)",
      { records: alive },
      function* (): Generator<() => void> {
        const from = getSource().state;
        yield () => {
          const state = new SerfState(new WasmCore());
          state.reset(false);
          state.adopt(from);
          if (state.count !== alive) throw new Error(`${state.count} nodes moved, expected ${alive}`);
        };
      },
    );
  });
}

/** Appends `alive` joins (names `node-000000`…) and a clock, then syncs. */
export async function fillAlive(snap: Snapshotter, alive: number): Promise<void> {
  for (let i = 0; i < alive; i++) {
    snap.append({
      type: "alive",
      name: `node-${String(i).padStart(6, "0")}`,
      addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`,
    });
    if (i % 65536 === 65535) await snap.sync();
  }
  snap.append({ type: "clock", value: BigInt(alive) });
  await snap.sync();
}

/** Peak memory of one replay, measured in a fresh process (see {@link measureReplayRss}). */
export interface ReplayRss {
  /** Resident set before the replay (runtime, modules and Wasm loaded), KiB. */
  rssBeforeKiB: number;
  /** Peak resident set of the process (VmHWM) after the replay, KiB. */
  peakKiB: number;
  /** peakKiB - rssBeforeKiB. */
  growthKiB: number;
  records: number;
  bytes: number;
  aliveNodes: number;
  ms: number;
}

/**
 * Replays `path` in a child process and reads its peak resident set (VmHWM in
 * /proc/self/status), so the number is the replay's own and not this process's history.
 */
export async function measureReplayRss(path: string, opts: { parallel?: boolean } = {}): Promise<ReplayRss> {
  const self = new URL(import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", self, "replay-rss", path, ...(opts.parallel === false ? ["sequential"] : [])],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`replay-rss failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)) as ReplayRss;
}

async function procStatusKiB(field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile("/proc/self/status");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]);
}

if (import.meta.main) {
  const [cmd, path, mode] = Deno.args;
  if (cmd !== "replay-rss" || path === undefined) {
    console.error("usage: deno run -A bench/snapshot_bench.ts replay-rss FILE [sequential]");
    Deno.exit(2);
  }
  // Load and instantiate the Wasm module first, so "before" includes it.
  const warm = await Deno.makeTempFile();
  await replaySnapshot(warm).catch(() => {});
  await Deno.remove(warm);
  const rssBeforeKiB = await procStatusKiB("VmRSS");
  const t0 = performance.now();
  const s = await replaySnapshot(path, { parallel: mode !== "sequential" });
  const ms = performance.now() - t0;
  const peakKiB = await procStatusKiB("VmHWM");
  const result: ReplayRss = {
    rssBeforeKiB,
    peakKiB,
    growthKiB: peakKiB - rssBeforeKiB,
    records: s.records,
    bytes: s.bytes,
    aliveNodes: s.aliveNodes.length,
    ms,
  };
  console.log(JSON.stringify(result));
}
