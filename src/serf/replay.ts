import { choiceOption, FORMAT_CHOICES, fsOption, knownOptionKeys, RECOVERY_MODES } from "../_options.ts";
import type { FileHandle, FileSystem } from "../fs/types.ts";
import type { RecoveryMode } from "./binary.ts";
import { readBinary, readGoText, SplitPlanner } from "./_parallel.ts";
import { newBinaryCodec, type SnapshotFormat } from "./_codec.ts";
import { GoTextReplayer, WARNINGS_CHARS_MAX } from "./gotext.ts";
import { WasmMemoryError } from "../_wasm/core.ts";
import { typeName } from "./records.ts";
import { checkRegularFile, missingSnapshot, resolveFormat } from "./snapshotter.ts";
import { addWarnings, checkMaxWarnings, type SnapshotState } from "./types.ts";

/** Options of {@link replaySnapshot}. */
export interface ReplayOptions {
  /**
   * Ignore `leave` records (serf's `RejoinAfterLeave`).
   * @default {false}
   */
  rejoinAfterLeave?: boolean;
  /**
   * The file's format; `"auto"` detects it (snaplog's binary header, else serf's text).
   * @default {"auto"}
   */
  format?: "auto" | SnapshotFormat;
  /**
   * Binary format only: `"truncate-tail"` reports a torn tail and throws on damage before it;
   * `"strict"` throws on any damage; `"salvage"` skips damaged regions and reports them as
   * warnings. Replay never modifies the file.
   * @default {"truncate-tail"}
   */
  recovery?: RecoveryMode;
  /** The file system. @default {denoFs} */
  fs?: FileSystem;
  /**
   * Warnings to list in `warnings`; more are counted in `warningsOmitted`, so replaying a
   * file of garbage holds a bounded list, not one entry per line. (In serf's text format
   * the list also stops at 1 Mi characters of their text.)
   * @default {10000}
   */
  maxWarnings?: number;
  /**
   * Replay large files on two threads when that pays: a replay of 8 MiB or more measures
   * its speed over its second and third MiB and, if a Worker would save time, the Worker
   * replays the rest after a split point while the calling thread replays up to it; the
   * result is merged (it is always the state a sequential replay gives; the Worker's part is
   * redone on this thread if anything about it is off). Only with the default file system,
   * and where a Worker can start.
   * @default {true}
   */
  parallel?: boolean;
}

/** Every key of {@link ReplayOptions}, for {@link knownOptionKeys}. */
const REPLAY_OPTION_KEYS = {
  rejoinAfterLeave: true,
  format: true,
  recovery: true,
  fs: true,
  maxWarnings: true,
  parallel: true,
} as const satisfies Record<keyof ReplayOptions, true>;

/**
 * Replays a serf snapshot file, read-only, and returns the state a node would rejoin with:
 * the alive set and the three Lamport clocks, plus what replay found (records, bytes, a
 * torn tail, skipped lines). Streams the file in chunks through the Wasm scan; memory
 * follows the alive set, not the file.
 *
 * @example Replay serf's own text format
 * ```ts
 * import { replaySnapshot } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/serf.snapshot`, "alive: a 10.0.0.1:7946\nclock: 3\nnot-alive: a\n");
 * const state = await replaySnapshot(`${dir}/serf.snapshot`);
 * assert.equal(state.format, "go-text");
 * assert.deepEqual(state.aliveNodes, []);
 * assert.equal(state.lastClock, 3n);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param path The snapshot file.
 * @param options Leave mode, format, recovery mode, file system.
 * @returns The replayed state.
 * @throws {Deno.errors.NotFound} If the file does not exist.
 * @throws {CorruptionError} For damage the recovery mode does not accept (binary format).
 * @throws {TypeError} For options of the wrong type or an unknown option, a `format` the file plainly is not
 * (Go text asked of a binary file, binary of a serf text file), or a path that is not a regular file (a pipe,
 * a directory).
 */
export async function replaySnapshot(path: string, options: ReplayOptions = {}): Promise<SnapshotState> {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`Cannot replay snapshot: path must be a non-empty string, got ${typeName(path)}`);
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot replay snapshot: options must be an object`);
  }
  knownOptionKeys("replay snapshot", options, REPLAY_OPTION_KEYS);
  const fs = fsOption("replay snapshot", options.fs);
  if (options.parallel !== undefined && typeof options.parallel !== "boolean") {
    throw new TypeError(
      `Cannot replay snapshot: parallel must be a boolean, got ${typeName(options.parallel)}`,
    );
  }
  const rejoin = options.rejoinAfterLeave === undefined ? false : options.rejoinAfterLeave;
  if (typeof rejoin !== "boolean") {
    throw new TypeError(`Cannot replay snapshot: rejoinAfterLeave must be a boolean`);
  }
  const recovery = choiceOption(
    "replay snapshot",
    "recovery",
    options.recovery,
    "truncate-tail",
    RECOVERY_MODES,
  );
  const maxWarnings = checkMaxWarnings("replay snapshot", options.maxWarnings);
  const want = choiceOption("replay snapshot", "format", options.format, "auto", FORMAT_CHOICES);
  const info = await fs.stat(path);
  if (info === null) throw await missingSnapshot(fs, path, "replay");
  checkRegularFile(info, path, "replay");
  const file = await fs.open(path, { read: true });
  try {
    // The size of the file opened, not of the one stat saw: a live log's compaction may have
    // renamed a smaller file over the path in between.
    const size = await file.size();
    // Empty: Go text (a snaplog file has a header).
    const format: SnapshotFormat = await resolveFormat(file, size, path, want);
    const par = SplitPlanner.create(path, size, format, rejoin, {
      parallel: options.parallel !== false,
      fs,
      maxWarnings,
    });
    if (format === "go-text") return await replayGoTextFile(file, size, rejoin, par, maxWarnings);
    const codec = newBinaryCodec(rejoin);
    const r = await readBinary(codec.state, file, size, path, recovery, par, maxWarnings);
    const clocks = codec.state.clocks;
    return {
      format: "binary",
      aliveNodes: codec.state.aliveNodes(),
      lastClock: clocks.lastClock,
      lastEventClock: clocks.lastEventClock,
      lastQueryClock: clocks.lastQueryClock,
      records: r.records,
      bytes: r.bytes,
      tornTailBytes: r.tornTailBytes,
      warnings: r.skipped.map((s) => ({ line: s.offset, reason: `skipped ${s.bytes} bytes: ${s.reason}` })),
      warningsOmitted: r.skippedOmitted,
    };
  } catch (e) {
    // Memory running out (the state, or a copy of it for the list) is named with the file.
    if (e instanceof WasmMemoryError) {
      throw new RangeError(`Cannot replay "${path}": ${e.message}`, { cause: e });
    }
    throw e;
  } finally {
    await file.close();
  }
}

/** Go text replay, with the rest of the file on a Worker if `par` decides to split. */
async function replayGoTextFile(
  file: FileHandle,
  size: number,
  rejoin: boolean,
  par: SplitPlanner | null,
  maxWarnings: number,
): Promise<SnapshotState> {
  const replayer = new GoTextReplayer({ rejoinAfterLeave: rejoin, maxWarnings });
  const rest = await readGoText(replayer, file, size, par);
  const result = replayer.finish();
  if (rest !== null) {
    result.records += rest.lines;
    result.bytes = size;
    result.tornTailBytes = rest.tornTailBytes;
    result.warningsOmitted = addWarnings(
      result.warnings,
      result.warningsOmitted,
      rest.warnings,
      rest.warningsOmitted,
      maxWarnings,
      WARNINGS_CHARS_MAX,
    );
  }
  return result;
}
