import { fsOption, knownOptionKeys } from "../_options.ts";
import {
  Snapshotter,
  SNAPSHOTTER_OPTION_KEYS,
  type SnapshotterOptions,
  wholeCompactionBeside,
} from "./snapshotter.ts";

/** What {@link compactSnapshot} did. */
export interface CompactReport {
  /** The file's format. */
  format: "binary" | "go-text";
  /** File size before (after any torn-tail repair on open). */
  bytesBefore: number;
  /** File size after compaction. */
  bytesAfter: number;
  /** Alive nodes kept. */
  aliveNodes: number;
  /** Bytes of a torn tail cut off on open (a `.broken` copy keeps them). */
  tornTailBytes: number;
}

/**
 * Compacts a snapshot file offline: takes its writer lock, replays it through the Wasm scan,
 * writes the live state (alive records, then the clocks) beside it and renames it over the
 * file, with the same crash safety as a live compaction (README "Crash safety: Compaction").
 * Fails with {@link LockedError} if a live `Snapshotter` has the file open.
 *
 * @example Compact a churned snapshot
 * ```ts
 * import { compactSnapshot, Snapshotter } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/serf.snap`;
 * const snap = await Snapshotter.open(path, { minCompactSizeBytes: 1 << 30 });
 * for (let i = 0; i < 1000; i++) snap.append({ type: "alive", name: "node-1", addr: `10.0.0.${i % 250}:7946` });
 * await snap.close();
 *
 * const report = await compactSnapshot(path);
 * assert.equal(report.aliveNodes, 1);
 * assert.ok(report.bytesAfter < report.bytesBefore);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The snapshot file (binary or go-text, detected).
 * @param options As for {@link Snapshotter.open} (recovery mode, file system, ...).
 * @returns Sizes before and after, and the alive count.
 * @throws {Deno.errors.NotFound} If the file does not exist (it is not created).
 * @throws {LockedError} If another writer holds the file.
 * @throws {CorruptionError} If the file is damaged beyond what `recovery` repairs.
 */
export async function compactSnapshot(
  path: string,
  options: SnapshotterOptions = {},
): Promise<CompactReport> {
  // Snapshotter.open creates a missing file; compacting one is a mistake (a typo in a path
  // would leave a new, empty snapshot behind). A compaction serf left between removing the
  // snapshot and renaming its new file in is not missing: open finishes it, then this compacts.
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot compact snapshot: options must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  knownOptionKeys("compact snapshot", options, SNAPSHOTTER_OPTION_KEYS);
  if (typeof path === "string") {
    const fs = fsOption("compact snapshot", options.fs);
    if ((await fs.stat(path)) === null && !(await wholeCompactionBeside(fs, path))) {
      throw new Deno.errors.NotFound(`Cannot compact "${path}": no such file`);
    }
  }
  const snap = await Snapshotter.open(path, options);
  try {
    const report = snap.openReport;
    const bytesBefore = report.compactedOnOpen ? report.bytes - report.tornTailBytes : snap.stats.fileBytes;
    if (!report.compactedOnOpen) await snap.compact();
    return {
      format: snap.format,
      bytesBefore,
      bytesAfter: snap.stats.fileBytes,
      aliveNodes: snap.aliveNodes().length,
      tornTailBytes: report.tornTailBytes,
    };
  } finally {
    await snap.close();
  }
}
