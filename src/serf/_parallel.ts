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
// Whether to split is measured, not guessed: `new Worker` blocks the calling thread for 20-50
// ms in Deno 2.9.6 (the worker's runtime is created before it returns) and the worker begins
// to replay ~10-20 ms after that, so a split pays only when the rest of the file takes well
// longer than that to replay, which depends on the machine and the moment as much as on the
// size. A replay runs alone for WARM_BYTES + PROBE_BYTES, then SplitPlanner divides what its
// speed over the probe says is left (or does not split).
import { adoptCoreModule, coreModule, WasmCore } from "../_wasm/core.ts";
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
import type { FileHandle, FileSystem } from "../fs/types.ts";
import { GoTextReplayer, nextNewline, PositionalReader } from "./gotext.ts";
import { SerfState, type StateDelta } from "./_state.ts";
import { addWarnings, type ReplayWarning, WARNINGS_MAX_DEFAULT } from "./types.ts";
import type { SnapshotFormat } from "./_codec.ts";

/** "auto": measure and split when it pays; "always": split every replay (tests), at 55 % by default. */
export type SplitMode = "auto" | "always";
let splitMode: SplitMode = "auto";
/** Where "always" splits, as a fraction of the file. */
let alwaysAt = 0.55;

/**
 * Sets how replays decide to split (tests force "always", at `at` of the file: 0 < at < 1);
 * returns the previous mode.
 */
export function setParallelReplayMode(mode: SplitMode, at = 0.55): SplitMode {
  if (!(at > 0 && at < 1)) throw new RangeError(`Cannot split replays at ${at} of the file: not in (0, 1)`);
  const old = splitMode;
  splitMode = mode;
  alwaysAt = at;
  return old;
}

/** How parallel replays ended (tests read it): merged the Worker's half, or redid it here. */
export const parallelStats = { merged: 0, redone: 0 };

/**
 * A replay's first WARM_BYTES are not timed (the alive set grows there, and the first replay
 * in a process runs in V8's baseline code); the next PROBE_BYTES give the speed it decides on.
 */
const WARM_BYTES = 1 << 20;
const PROBE_BYTES = 2 << 20;
/** Files below this never split: replaying them takes about as long as starting a Worker. */
const MIN_SPLIT_BYTES = 8 << 20;
/** True if a replay of a file of `size` bytes may split (it still measures whether that pays). */
export function mayReplayInParallel(size: number): boolean {
  return size >= MIN_SPLIT_BYTES && (navigator.hardwareConcurrency ?? 1) >= 2;
}

/**
 * The least time a split must promise to save before a Worker is started for it. The model
 * below leaves out the merge, the delta's transfer and two threads sharing two cores with
 * V8's own, and its speed comes from a short probe whose rate varies 1.8x between runs of the
 * same file: a split is chosen exactly when the probe ran slow, which is when it misleads.
 * Session 3 measured a 21 MiB Go text file 13-17 % slower split with a 15 ms margin and set
 * 25 ms; session 6's twelve bench:compare runs, with faster one-thread replays, found the
 * ~30 MB history files no faster split than alone (median ratio 1.0) and up to 1.5x slower
 * in a third of them. 40 ms (a rest of over ~130 ms here) leaves those alone and still splits
 * the 100+ MB files, where a second thread saves 30-50 %.
 */
const MIN_SAVING_MS = 40;

/** The median of the last few values seen (one slow outlier must not turn splitting off). */
class RecentMedian {
  #values: number[];
  constructor(first: number) {
    this.#values = [first];
  }
  add(v: number): void {
    this.#values.push(v);
    if (this.#values.length > 5) this.#values.shift();
  }
  /** How many values it holds (at most five). */
  get count(): number {
    return this.#values.length;
  }
  get value(): number {
    const sorted = [...this.#values].sort((a, b) => a - b);
    return sorted[sorted.length >> 1]!;
  }
}

/** The probe rates of this process's last replays, per format (see {@link replayRate}). */
const probeRates: Record<SnapshotFormat, RecentMedian | null> = { binary: null, "go-text": null };

/**
 * The rate (bytes/ms) a split decision takes from a probe that measured `probe`: once three
 * replays of the format have probed in this process, never less than the median of the last
 * five. A probe runs slow now and then (a GC, a neighbour on the VM: 175 against 290-440 MB/s
 * in one series here), and a slow probe is exactly what makes a split look worth it; on the
 * ~30 MB history files those splits took 1.3-1.4x as long as one thread. A big file still
 * splits at the median rate, and a process's first replays decide on their own probe.
 */
export function replayRate(format: SnapshotFormat, probe: number): number {
  const seen = probeRates[format];
  const rate = seen !== null && seen.count >= 3 ? Math.max(probe, seen.value) : probe;
  if (seen === null) probeRates[format] = new RecentMedian(probe);
  else seen.add(probe);
  return rate;
}

/**
 * The smallest file a process's first replay of a format splits. That replay has no earlier
 * probe to check its own against, its Worker costs are guesses, and V8 is still compiling the
 * module's optimized code on the other core: on the ~30 MB history files such splits lost to
 * one thread in 7 and 8 of 12 fresh processes (the start-up row of bench:compare, sessions
 * 6-8: medians 134 against 124 ms, worst 153 against 100). Twice that size leaves the 100+ MB
 * logs, where the split saves 30-50 %, as they were.
 */
const FIRST_SPLIT_MIN_BYTES = 64 << 20;

/** Forgets the probe rates (tests). */
export function resetReplayRates(): void {
  probeRates.binary = null;
  probeRates["go-text"] = null;
}

/**
 * What a Worker costs here: how long `new Worker` blocks the caller, and how long after the
 * call the worker begins to replay. Medians of the last five Workers; the first guesses are a
 * fresh process's first Worker on the 2-core VM of the README (23-28 ms and 36-39 ms).
 */
export const workerCost = { block: new RecentMedian(25), start: new RecentMedian(40) };

/** Replaces the Worker cost model (tests); returns a function that restores the old one. */
export function setWorkerCost(blockMs: number, startMs: number): () => void {
  const old = { ...workerCost };
  workerCost.block = new RecentMedian(blockMs);
  workerCost.start = new RecentMedian(startMs);
  return () => Object.assign(workerCost, old);
}

/** What the worker is asked to replay. */
export interface DeltaRequest {
  path: string;
  format: "binary" | "go-text";
  /** Split point: the worker starts at the first record boundary at or past it. */
  from: number;
  /** Binary: the file's salt (the Worker does not read the header). */
  salt?: number;
  /** Where the caller's replay ends (its view of the file's size): a file that grows meanwhile is read no further. */
  end: number;
  /**
   * The identity of the file the caller reads (`FileHandle.id`): the Worker opens the path
   * again, and refuses to go on if it names another file now (a compaction or a `mv`
   * renamed one over it in between), rather than merge the rest of another file.
   */
  fileId?: string;
  rejoinAfterLeave: boolean;
  /** Go text: warnings to list (the caller's `maxWarnings`, default 10,000); the rest are counted. */
  maxWarnings?: number;
  /** The caller's compiled core module (its code is shared, already optimized). */
  module?: WebAssembly.Module;
}

/** The worker's answer. */
export type DeltaReply =
  | {
    ok: true;
    /** Where the worker's first record starts. */
    start: number;
    /** When the worker began (`performance.timeOrigin + performance.now()`, comparable across threads). */
    startedAt: number;
    /** Records (binary frames, or Go text lines) the worker applied. */
    records: number;
    /** Go text: warnings with line numbers counted from `start` (1 = its first line). */
    warnings: ReplayWarning[];
    /** Go text: warnings past `maxWarnings`, counted. */
    warningsOmitted: number;
    /** Go text: bytes after the last newline (a torn last line). */
    tornTailBytes: number;
    delta: StateDelta;
  }
  | { ok: false; reason: string };

/** The worker's side: replays the file from the first record boundary at or past `req.from` to its end into a delta state. */
export async function replayDelta(req: DeltaRequest): Promise<DeltaReply> {
  const startedAt = performance.timeOrigin + performance.now();
  if (req.module) adoptCoreModule(req.module);
  const file = await denoFs.open(req.path, { read: true });
  try {
    if (req.fileId !== undefined && (await file.id?.()) !== req.fileId) {
      return { ok: false, reason: "the path names another file than the caller's now" };
    }
    const size = Math.min(req.end, await file.size());
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
      scanner.salt = req.salt ?? 0;
      const start = await findNextFrame(scanner, file, req.from, size);
      scanner.free(); // the replay below allocates its own, reusing this block
      if (start < 0) return { ok: false, reason: "no frame after the split point" };
      // Strict: any damage in this half sends the caller back to the sequential path, which
      // applies the caller's recovery mode to it.
      const r = await replayBinaryFile(core, file, size, req.path, "strict", REPLAY_CHUNK_BYTES, {
        from: start,
        salt: req.salt ?? 0,
      });
      if (r.tornTailBytes !== 0) return { ok: false, reason: "zeroed tail" };
      return {
        ok: true,
        start,
        startedAt,
        records: r.records,
        warnings: [],
        warningsOmitted: 0,
        tornTailBytes: 0,
        delta: state.exportDelta(),
      };
    }
    // Go text: the worker's first line starts after the first '\n' at or past from - 1.
    const start = (await nextNewline(file, Math.max(0, req.from - 1), size)) + 1;
    if (start <= 0 || start >= size) return { ok: false, reason: "no line after the split point" };
    const replayer = new GoTextReplayer({
      rejoinAfterLeave: req.rejoinAfterLeave,
      maxWarnings: req.maxWarnings ?? WARNINGS_MAX_DEFAULT,
    });
    replayer.state.reset(req.rejoinAfterLeave, true);
    await replayer.readAll(new PositionalReader(file, start, size));
    const tornTailBytes = replayer.pendingBytes;
    const records = replayer.lines;
    const warnings = [...replayer.warnings];
    const warningsOmitted = replayer.warningsOmitted;
    const delta = replayer.state.exportDelta();
    return { ok: true, start, startedAt, records, warnings, warningsOmitted, tornTailBytes, delta };
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
  const t0 = performance.now();
  try {
    worker = new Worker(url.href, { type: "module" });
  } catch {
    return null;
  }
  workerCost.block.add(performance.now() - t0);
  let done = false;
  const cancel = (): void => {
    if (done) return;
    done = true;
    worker.terminate();
  };
  const result = new Promise<DeltaReply>((resolve) => {
    worker.onmessage = (e: MessageEvent<DeltaReply>) => {
      if (e.data.ok) workerCost.start.add(e.data.startedAt - (performance.timeOrigin + t0));
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
  worker.postMessage({ ...req, module: coreModule() });
  return { result, cancel };
}

/** What {@link splitPoint} decides from. */
export interface SplitInput {
  /** Offset replayed so far. */
  at: number;
  /** File size. */
  size: number;
  /** Replay speed so far. */
  bytesPerMs: number;
  /** How long `new Worker` blocks the caller. */
  blockMs: number;
  /** How long after `new Worker` the worker begins to replay. */
  startMs: number;
}

/**
 * Where to split the rest of a replay at `at`, or null if a Worker would not save at least
 * MIN_SAVING_MS. Alone, the rest takes rest/rate. Split at at + x: this thread is done at
 * blockMs + x/rate, the Worker at startMs + (rest - x)/rate; they finish together at
 * x = (rest + (startMs - blockMs) * rate) / 2, which saves (rest/rate - blockMs - startMs) / 2.
 */
export function splitPoint(input: SplitInput): number | null {
  const { at, size, bytesPerMs: rate, blockMs, startMs } = input;
  const rest = size - at;
  if ((rest / rate - blockMs - startMs) / 2 < MIN_SAVING_MS) return null;
  return at + Math.floor((rest + (startMs - blockMs) * rate) / 2);
}

/**
 * Decides, while a replay runs, whether to hand the rest of the file to a Worker, and starts
 * it. The replay calls {@link SplitPlanner.check} before each chunk and stops at the split
 * point it returns.
 */
export class SplitPlanner {
  /** The Worker replaying from {@link split}, once started. */
  job: DeltaJob | null = null;
  /** Where the Worker begins (its first record at or past this offset); -1 before. */
  split = -1;
  /** The identity of the file the caller reads, for the Worker to check (see DeltaRequest.fileId). */
  fileId: string | undefined;
  readonly #path: string;
  readonly #size: number;
  readonly #format: SnapshotFormat;
  readonly #rejoin: boolean;
  readonly #maxWarnings: number;
  #start = -1; // where the replay began
  #from = -1; //  where the timed probe began
  #t0 = 0;
  #decided = false;

  private constructor(
    path: string,
    size: number,
    format: SnapshotFormat,
    rejoin: boolean,
    maxWarnings: number,
  ) {
    this.#path = path;
    this.#size = size;
    this.#format = format;
    this.#rejoin = rejoin;
    this.#maxWarnings = maxWarnings;
  }

  /**
   * A planner for a replay of `path` (its first `size` bytes), or null where there will be no
   * split: the caller said `parallel: false`, the file system is not the real one a Worker
   * reads (a MemFs or FaultFs in tests), the file is small, or there is one core.
   */
  static create(
    path: string,
    size: number,
    format: SnapshotFormat,
    rejoin: boolean,
    where: { parallel: boolean; fs: FileSystem; maxWarnings?: number },
  ): SplitPlanner | null {
    if (!where.parallel || where.fs !== denoFs) return null;
    if ((navigator.hardwareConcurrency ?? 1) < 2) return null;
    if (splitMode === "auto" && !mayReplayInParallel(size)) return null;
    return new SplitPlanner(path, size, format, rejoin, where.maxWarnings ?? WARNINGS_MAX_DEFAULT);
  }

  /**
   * The replay has consumed the file up to offset `at`. Returns the split point if a Worker
   * was just started for the rest, else null (also every time after the decision). `salt`:
   * a binary file's, which the Worker checks its frames under.
   */
  check(at: number, salt = 0): number | null {
    if (this.#decided) return null;
    if (this.#start < 0) this.#start = at;
    if (splitMode === "auto") {
      if (this.#from < 0) {
        if (at - this.#start >= WARM_BYTES) {
          this.#from = at;
          this.#t0 = performance.now();
        }
        return null;
      }
      if (at - this.#from < PROBE_BYTES) return null;
    }
    this.#decided = true;
    let split: number | null;
    if (splitMode === "always") split = Math.floor(this.#size * alwaysAt);
    else {
      const first = probeRates[this.#format] === null;
      const bytesPerMs = replayRate(
        this.#format,
        (at - this.#from) / Math.max(performance.now() - this.#t0, 0.001),
      );
      if (first && this.#size < FIRST_SPLIT_MIN_BYTES) return null;
      split = splitPoint({
        at,
        size: this.#size,
        bytesPerMs,
        blockMs: workerCost.block.value,
        startMs: workerCost.start.value,
      });
    }
    if (split === null) return null;
    if (this.#format === "binary") split = Math.max(FILE_HEADER_BYTES, split - (split % 8));
    if (split <= at || split >= this.#size) return null;
    const job = startDeltaReplay({
      path: this.#path,
      format: this.#format,
      from: split,
      salt,
      end: this.#size,
      ...(this.fileId === undefined ? {} : { fileId: this.fileId }),
      rejoinAfterLeave: this.#rejoin,
      maxWarnings: this.#maxWarnings,
    });
    if (job === null) return null;
    this.job = job;
    this.split = split;
    return split;
  }

  /** Stops the Worker, if any. */
  cancel(): void {
    this.job?.cancel();
  }
}

/**
 * Replays a binary snapshot into `state`, handing the part after a split to a Worker if `par`
 * decides so, and stops the Worker before it returns.
 */
export async function readBinary(
  state: SerfState,
  file: FileHandle,
  size: number,
  path: string,
  recovery: RecoveryMode,
  par: SplitPlanner | null,
  maxSkipped: number = WARNINGS_MAX_DEFAULT,
): Promise<BinaryReplayResult> {
  try {
    if (par !== null) par.fileId = await file.id?.();
    state.reserveFor(size);
    const range = par
      ? { plan: (at: number, salt: number) => par.check(at, salt), maxSkipped }
      : { maxSkipped };
    const r = await replayBinaryFile(state.core, file, size, path, recovery, REPLAY_CHUNK_BYTES, range);
    if (par?.job && r.stoppedAt !== null) {
      return await finishBinary(r, par.job, state, file, size, path, recovery, maxSkipped);
    }
    return r;
  } finally {
    par?.cancel();
  }
}

/**
 * The binary replay stopped at frame boundary `first.stoppedAt`: merge the Worker's delta if
 * it started exactly there, else replay the rest here.
 */
async function finishBinary(
  first: BinaryReplayResult,
  job: DeltaJob,
  state: SerfState,
  file: FileHandle,
  size: number,
  path: string,
  recovery: RecoveryMode,
  maxSkipped: number,
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
    salt: first.salt,
    saltRecovered: first.saltRecovered,
    saltSwitches: first.saltSwitches,
    maxSkipped,
  });
  // The first part stopped at the split, so its skipped regions are all before the rest's.
  const skipped = [...first.skipped];
  const skippedOmitted = addWarnings(
    skipped,
    first.skippedOmitted,
    rest.skipped,
    rest.skippedOmitted,
    maxSkipped,
  );
  return { ...rest, records: first.records + rest.records, skipped, skippedOmitted };
}

/** What a Worker's part of a Go text replay adds to the caller's replayer. */
export interface GoTextRest {
  /** Lines the Worker applied. */
  lines: number;
  /** Its warnings, numbered from the start of the file. */
  warnings: ReplayWarning[];
  /** Its warnings past `maxWarnings`, counted. */
  warningsOmitted: number;
  /** Bytes after the file's last newline (a torn last line). */
  tornTailBytes: number;
}

/**
 * Replays the Go text file's first `end` bytes into `replayer`, handing the part after a split
 * to a Worker if `par` decides so, and stops the Worker before it returns. Returns what the
 * Worker's part adds (its state is already merged into `replayer.state`), or null if every
 * line was applied here.
 */
export async function readGoText(
  replayer: GoTextReplayer,
  file: FileHandle,
  end: number,
  par: SplitPlanner | null,
): Promise<GoTextRest | null> {
  try {
    if (par !== null) par.fileId = await file.id?.();
    replayer.state.reserveFor(end);
    return await readGoTextSplit(replayer, file, end, par);
  } finally {
    par?.cancel();
  }
}

async function readGoTextSplit(
  replayer: GoTextReplayer,
  file: FileHandle,
  end: number,
  par: SplitPlanner | null,
): Promise<GoTextRest | null> {
  const reader = new PositionalReader(file, 0, end);
  if (par !== null) {
    reader.beforeRead = (at) => {
      const split = par.check(at);
      if (split !== null) reader.end = split;
    };
  }
  await replayer.readAll(reader);
  reader.beforeRead = null;
  const job = par?.job ?? null;
  if (job === null) return null;
  // Complete the line that runs over the split point: the worker starts after its '\n'.
  let boundary = reader.position;
  if (replayer.pendingBytes !== 0) {
    const nl = await nextNewline(file, reader.position, end);
    boundary = nl + 1;
    if (nl >= 0) {
      reader.end = boundary;
      await replayer.readAll(reader);
    }
  }
  if (boundary > 0 && boundary < end) {
    const d = await job.result;
    if (d.ok && d.start === boundary) {
      parallelStats.merged++;
      replayer.state.mergeDelta(d.delta);
      const base = replayer.lines;
      return {
        lines: d.records,
        warnings: d.warnings.map((w) => ({ line: w.line + base, reason: w.reason })),
        warningsOmitted: d.warningsOmitted,
        tornTailBytes: d.tornTailBytes,
      };
    }
    parallelStats.redone++;
  }
  reader.end = end;
  await replayer.readAll(reader);
  return null;
}
