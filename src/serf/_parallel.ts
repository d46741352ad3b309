// Parallel replay of large snapshots: the calling thread replays the file up to a split point
// while a Worker replays the rest into a *delta* state (src/serf/_state.ts: what those records
// do to any prior state, deletions of unknown names and a clearing `leave` included). The
// caller stops at the first record boundary at or past the split and, if the worker started
// exactly there, merges the delta; otherwise (a binary resync that landed inside a record,
// damage anywhere in the second half, a worker that failed) it replays the rest itself, so
// the result is always the sequential one.
//
// Binary frames carry no record separator, so the worker finds its start by resync (the first
// 8-aligned offset where a whole frame with a good checksum starts); a name that happens to
// contain a valid frame can fool that, which the boundary check catches. Go text lines split
// at '\n', so both sides always agree there.
//
// `new Worker` blocks the calling thread for 11-33 ms in Deno 2.9.6 (the worker's runtime is
// created before it returns), so only files of parallelReplayMinBytes() or more are split.
import { WasmCore } from "../_wasm/core.ts";
import { denoFs } from "../fs/deno_fs.ts";
import {
  type BinaryReplayResult,
  findNextFrame,
  type RecoveryMode,
  REPLAY_CHUNK_BYTES,
  replayBinaryFile,
  SERF_FRAME_SIZE_MAX,
  SERF_LIMITS,
} from "./binary.ts";
import { FILE_HEADER_BYTES, FrameScanner } from "../core/frame.ts";
import type { FileHandle } from "../fs/types.ts";
import { GoTextReplayer, nextNewline, PositionalReader } from "./gotext.ts";
import { SerfState, type StateDelta } from "./_state.ts";
import type { ReplayWarning } from "./types.ts";
import type { SnapshotFormat } from "./_codec.ts";

let parallelMinBytes = 64 << 20;

/** Files at least this large are replayed in two halves in parallel. Tests lower it. */
export function parallelReplayMinBytes(): number {
  return parallelMinBytes;
}

/** Sets {@link parallelReplayMinBytes} (tests only); returns the previous value. */
export function setParallelReplayMinBytes(n: number): number {
  const old = parallelMinBytes;
  parallelMinBytes = n;
  return old;
}

/** How parallel replays ended (tests read it): merged the Worker's half, or redid it here. */
export const parallelStats = { merged: 0, redone: 0 };

/** What the worker is asked to replay. */
export interface DeltaRequest {
  path: string;
  format: "binary" | "go-text";
  /** Split point: the worker starts at the first record boundary at or past it. */
  from: number;
  rejoinAfterLeave: boolean;
}

/** The worker's answer. */
export type DeltaReply =
  | {
    ok: true;
    /** Where the worker's first record starts. */
    start: number;
    /** Records (binary frames, or Go text lines) the worker applied. */
    records: number;
    /** Go text: warnings with line numbers counted from `start` (1 = its first line). */
    warnings: ReplayWarning[];
    /** Go text: bytes after the last newline (a torn last line). */
    tornTailBytes: number;
    delta: StateDelta;
  }
  | { ok: false; reason: string };

/** The worker's side: replays the file from the first record boundary at or past `req.from` to its end into a delta state. */
export async function replayDelta(req: DeltaRequest): Promise<DeltaReply> {
  const file = await denoFs.open(req.path, { read: true });
  try {
    const size = await file.size();
    if (req.format === "binary") {
      const core = new WasmCore();
      const state = new SerfState(core);
      state.reset(req.rejoinAfterLeave, true);
      const scanner = new FrameScanner(
        core,
        SERF_LIMITS,
        Math.max(REPLAY_CHUNK_BYTES, 2 * SERF_FRAME_SIZE_MAX),
        0,
      );
      const start = await findNextFrame(scanner, file, req.from, size);
      if (start < 0) return { ok: false, reason: "no frame after the split point" };
      // Strict: any damage in this half sends the caller back to the sequential path, which
      // applies the caller's recovery mode to it.
      const r = await replayBinaryFile(core, file, size, req.path, "strict", REPLAY_CHUNK_BYTES, {
        from: start,
      });
      if (r.tornTailBytes !== 0) return { ok: false, reason: "zeroed tail" };
      return {
        ok: true,
        start,
        records: r.records,
        warnings: [],
        tornTailBytes: 0,
        delta: state.exportDelta(),
      };
    }
    // Go text: the worker's first line starts after the first '\n' at or past from - 1.
    const start = (await nextNewline(file, Math.max(0, req.from - 1), size)) + 1;
    if (start <= 0 || start >= size) return { ok: false, reason: "no line after the split point" };
    const replayer = new GoTextReplayer({ rejoinAfterLeave: req.rejoinAfterLeave });
    replayer.state.reset(req.rejoinAfterLeave, true);
    await replayer.readAll(new PositionalReader(file, start));
    const tornTailBytes = replayer.pendingBytes;
    const records = replayer.lines;
    const warnings = [...replayer.warnings];
    const delta = replayer.state.exportDelta();
    return { ok: true, start, records, warnings, tornTailBytes, delta };
  } finally {
    await file.close();
  }
}

/** A replay of a file's second half running in a Worker. */
export interface DeltaJob {
  /** The worker's answer; never rejects (a failure is `{ ok: false }`). */
  readonly result: Promise<DeltaReply>;
  /** Stops the worker (also after it answered). */
  cancel(): void;
}

/**
 * Starts a Worker replaying `req`, or returns null where workers are unavailable (for
 * example without the permission to load the worker module).
 */
export function startDeltaReplay(req: DeltaRequest): DeltaJob | null {
  const url = new URL("./_replay_worker.ts", import.meta.url);
  // A local worker module needs read permission to load (a JSR one does not): without it the
  // Worker would fail after spawning and print its error, so do not start one.
  if (
    url.protocol === "file:" && Deno.permissions.querySync({ name: "read", path: url }).state !== "granted"
  ) {
    return null;
  }
  let worker: Worker;
  try {
    worker = new Worker(url.href, { type: "module" });
  } catch {
    return null;
  }
  let done = false;
  const cancel = (): void => {
    if (done) return;
    done = true;
    worker.terminate();
  };
  const result = new Promise<DeltaReply>((resolve) => {
    worker.onmessage = (e: MessageEvent<DeltaReply>) => {
      resolve(e.data);
      cancel();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      resolve({ ok: false, reason: e.message });
      cancel();
    };
    worker.onmessageerror = () => {
      resolve({ ok: false, reason: "unreadable message from the replay worker" });
      cancel();
    };
  });
  worker.postMessage(req);
  return { result, cancel };
}

/** A parallel replay under way: the split point and the Worker replaying from there. */
export interface Parallel {
  split: number;
  job: DeltaJob;
}

export function startParallel(
  path: string,
  size: number,
  format: SnapshotFormat,
  rejoin: boolean,
): Parallel | null {
  if (size < parallelReplayMinBytes() || (navigator.hardwareConcurrency ?? 1) < 2) return null;
  // The worker starts ~10-30 ms late (its runtime boots first), so it gets a little less.
  let split = Math.floor(size * 0.55);
  if (format === "binary") split = Math.max(FILE_HEADER_BYTES, split - (split % 8));
  const job = startDeltaReplay({ path, format, from: split, rejoinAfterLeave: rejoin });
  return job === null ? null : { split, job };
}

/**
 * The binary replay stopped at frame boundary `first.stoppedAt`: merge the Worker's delta if
 * it started exactly there, else replay the rest here.
 */
export async function finishBinary(
  first: BinaryReplayResult,
  job: DeltaJob,
  state: SerfState,
  file: FileHandle,
  size: number,
  path: string,
  recovery: RecoveryMode,
): Promise<BinaryReplayResult> {
  const at = first.stoppedAt!;
  const d = await job.result;
  if (d.ok && d.start === at) {
    state.mergeDelta(d.delta);
    parallelStats.merged++;
    return { ...first, records: first.records + d.records, goodEnd: size, stoppedAt: null };
  }
  parallelStats.redone++;
  const rest = await replayBinaryFile(state.core, file, size, path, recovery, REPLAY_CHUNK_BYTES, {
    from: at,
  });
  return { ...rest, records: first.records + rest.records, skipped: [...first.skipped, ...rest.skipped] };
}
