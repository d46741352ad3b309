/**
 * snaplog: an embedded, checksummed append-only log engine for Deno.
 *
 * Its first job is HashiCorp serf's membership snapshot: the log a node replays to rejoin
 * its cluster after a restart. {@link Snapshotter} keeps it on a checksummed binary log (or
 * in serf's own text format), flushes by timer, fsyncs by policy with group commit, and
 * compacts with an atomic rename-swap. {@link replaySnapshot} reads either format, read-only.
 *
 * The byte work (CRC32C, record frames, replay scans) runs in WebAssembly compiled from
 * AssemblyScript and embedded in the package, so importing snaplog needs no permissions.
 *
 * @example A thirty-second tour
 * ```ts
 * import { crc32c, replaySnapshot, Snapshotter } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const snap = await Snapshotter.open(`${dir}/serf.snap`, { sync: "interval" });
 * snap.append({ type: "alive", name: "node-1", addr: "10.0.0.1:7946" }); // buffered
 * snap.append({ type: "clock", value: 7n });
 * await snap.sync(); // on disk now
 * await snap.close();
 *
 * const state = await replaySnapshot(`${dir}/serf.snap`);
 * assert.deepEqual(state.aliveNodes, [{ name: "node-1", addr: "10.0.0.1:7946" }]);
 * assert.equal(state.lastClock, 7n);
 *
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { crc32c } from "./src/core/crc32c.ts";
export {
  type OpenReport,
  type RecoveryMode,
  type SerfEvent,
  type SnapshotFormat,
  type SnapshotRecord,
  Snapshotter,
  type SnapshotterOptions,
  type SnapshotterStats,
} from "./src/serf/snapshotter.ts";
export { type ReplayOptions, replaySnapshot } from "./src/serf/replay.ts";
export { type ReadRecordsOptions, readSnapshotRecords, type SnapshotEntry } from "./src/serf/read_records.ts";
export { type CompactReport, compactSnapshot } from "./src/serf/compact.ts";
export {
  type ConvertOptions,
  type ConvertProgress,
  type ConvertReport,
  convertSnapshot,
} from "./src/serf/convert.ts";
export type { AliveNode, ReplayWarning, SnapshotState } from "./src/serf/types.ts";
export {
  BackpressureError,
  ClosedError,
  CorruptionError,
  FileChangedError,
  LockedError,
  PoisonedError,
} from "./src/errors.ts";
export { type Clock, ManualClock, systemClock } from "./src/clock.ts";
export type { FileHandle, FileInfo, FileSystem, OpenOptions } from "./src/fs/types.ts";
export { denoFs } from "./src/fs/deno_fs.ts";
