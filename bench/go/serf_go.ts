/**
 * Deno driver for the Go harness that benchmarks HashiCorp serf's real
 * Snapshotter (see ./README.md). It checks that Go and serf's sources are
 * installed, builds the harness (cached by source hash) and runs its
 * `append`, `replay` and `compact` subcommands, returning their JSON results.
 *
 * Run directly to build and print the binary path, or to run a subcommand:
 *   deno run -A bench/go/serf_go.ts build
 *   deno run -A bench/go/serf_go.ts replay --file /tmp/x.snapshot
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Where Debian's golang-github-hashicorp-serf-dev installs its sources (a GOPATH). */
const DEFAULT_SERF_GOPATH = "/usr/share/gocode";
const SERF_PKG = "github.com/hashicorp/serf/serf";
const INSTALL_HINT =
  "install them with: apt-get update && apt-get install -y golang-go golang-github-hashicorp-serf-dev";
const BUILD_TAG = "snaplog_serf_shim";

/** Result of {@link goAvailable}. */
export interface GoAvailability {
  /** True when the `go` binary and serf's sources were found. */
  ok: boolean;
  /** Why the harness cannot be built, and how to install what is missing. */
  reason?: string;
  /** Output of `go version`, e.g. `go version go1.19.8 linux/amd64`. */
  goVersion?: string;
}

/** Snapshot lines by kind, classified like serf's replay does. */
export interface SerfLineCounts {
  alive: number;
  notAlive: number;
  clock: number;
  eventClock: number;
  queryClock: number;
  leave: number;
  other: number;
}

/** Line counts implied by an events file. */
export interface SerfExpectedLineCounts {
  /** One `alive:` line per join. */
  alive: number;
  /** One `not-alive:` line per leave or failed. */
  notAlive: number;
  /** One `event-clock:` line per user event whose LTime is above all earlier ones. */
  eventClock: number;
  /** One `query-clock:` line per query whose LTime is above all earlier ones. */
  queryClock: number;
  /** One `leave` line per `self-leave`. */
  leave: number;
  /** Upper bound for `clock:` lines (their count depends on timing). */
  clockMax: number;
}

/** Result of {@link serfAppend}. Clocks are uint64 decimal strings. */
export interface SerfAppendResult {
  events: number;
  memberEvents: number;
  userEvents: number;
  queryEvents: number;
  /** `self-leave` lines (calls of serf's Snapshotter.Leave). */
  selfLeaves: number;
  /** serf's rejoinAfterLeave, for the writer and the verifying replay. */
  rejoinAfterLeave: boolean;
  /** True with `keep`: the run appended to the existing file. */
  kept: boolean;
  /** Size of the existing file the run appended to (0 for a fresh file). */
  initialBytes: number;
  /** The clock serf replayed from the existing file ("0" for a fresh file). */
  initialLastClock: string;
  /** Wall time from NewSnapshotter to Wait() after shutdown (flush and fsync included). */
  appendMs: number;
  eventsPerSec: number;
  fileBytes: number;
  /** Newline-terminated lines the run appended (after `initialBytes`; the whole file if compacted). */
  lines: number;
  /** Deterministic lines expected plus the clock lines observed; null if serf compacted the file. */
  expectedLines: number | null;
  /** Expected minus actual non-clock lines (0 = nothing lost); null if compacted and the state matched. */
  dropped: number | null;
  /** alive + not-alive + event-clock + query-clock + leave lines. */
  dataLines: number;
  expectedDataLines: number;
  clockLines: number;
  linesByKind: SerfLineCounts;
  expectedByKind: SerfExpectedLineCounts;
  /** Value of the last `clock:` line the run appended ("0" if none). */
  lastClockLine: string;
  /**
   * `initialLastClock` plus the number of member events (the clock starts at the replayed
   * clock + 1 and serf records Time()-1): the last clock line when there are member events.
   */
  expectedLastClock: string;
  clockLinesIncreasing: boolean;
  /** True when serf's compact() rewrote the file during the run. */
  compacted: boolean;
  /** True when serf's replay of the file gives exactly the state the events describe. */
  stateVerified: boolean;
  /** Alive nodes after replaying the result. */
  aliveAfter: number;
  /** How many times the producer had to wait for serf's writer. */
  paceWaits: number;
  /** Largest bound on events in flight (must be <= streamCap). */
  maxInFlight: number;
  /** Capacity of serf's internal stream channel (2048). */
  streamCap: number;
  /** minCompactSize passed to serf (int64 decimal string). */
  minCompactSize: string;
  goVersion: string;
  /** Verification failures (the harness exits non-zero when present). */
  errors?: string[];
}

/** One alive node recovered by serf's replay. */
export interface SerfNode {
  name: string;
  addr: string;
}

/** Result of {@link serfReplay}. Clocks are uint64 decimal strings. */
export interface SerfReplayResult {
  /** Fastest NewSnapshotter (open + replay) time, measured inside the Go process. */
  replayMs: number;
  /** Every run's time. */
  runsMs: number[];
  fileBytes: number;
  /** Newline-terminated lines in the file. */
  lines: number;
  aliveCount: number;
  lastClock: string;
  lastEventClock: string;
  lastQueryClock: string;
  /** fileBytes / 1e6 per second of replayMs. */
  mbPerSec: number;
  rejoinAfterLeave: boolean;
  /** Number of lines serf logged during replay. */
  serfLogCount: number;
  /** What serf logged (first 1000 lines, without timestamps). */
  serfLog: string[];
  /** Present with `nodes: true`: sorted byte-wise by name. */
  aliveNodes?: SerfNode[];
}

/** Result of {@link serfCompact}. */
export interface SerfCompactResult {
  aliveNodes: number;
  /** Fastest of the compact() calls. */
  compactMs: number;
  runsMs: number[];
  /** Size of the compacted snapshot. */
  fileBytes: number;
  /** Size of the snapshot replayed to build the state. */
  sourceBytes: number;
}

function serfGopath(): string {
  return Deno.env.get("SNAPLOG_SERF_GOPATH") ?? DEFAULT_SERF_GOPATH;
}

function serfPkgDir(): string {
  return `${serfGopath()}/src/${SERF_PKG}`;
}

function harnessDir(): string {
  return decodeURIComponent(new URL(".", import.meta.url).pathname).replace(/\/$/, "");
}

function tmpRoot(): string {
  return (Deno.env.get("TMPDIR") ?? "/tmp").replace(/\/$/, "");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const options: Deno.CommandOptions = { args, stdin: "null", stdout: "piped", stderr: "piped" };
  if (opts.cwd !== undefined) options.cwd = opts.cwd;
  if (opts.env !== undefined) options.env = opts.env;
  const out = await new Deno.Command(cmd, options).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Checks that the `go` binary and serf's sources (Debian package
 * golang-github-hashicorp-serf-dev, or a GOPATH in $SNAPLOG_SERF_GOPATH) are
 * available. Never throws.
 */
export async function goAvailable(): Promise<GoAvailability> {
  let goVersion: string;
  try {
    const r = await run("go", ["version"]);
    if (r.code !== 0) {
      return { ok: false, reason: `\`go version\` failed: ${r.stderr.trim()}; ${INSTALL_HINT}` };
    }
    goVersion = r.stdout.trim();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no `go` binary on PATH" : String(e);
    return { ok: false, reason: `${why}; ${INSTALL_HINT}` };
  }
  const snapshotGo = `${serfPkgDir()}/snapshot.go`;
  if (!(await exists(snapshotGo))) {
    return { ok: false, goVersion, reason: `serf sources not found (${snapshotGo}); ${INSTALL_HINT}` };
  }
  return { ok: true, goVersion };
}

/** Non-test .go files of a directory, sorted. */
async function goSources(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".go") && !e.name.endsWith("_test.go")) names.push(e.name);
  }
  return names.sort();
}

/**
 * Builds the Go harness and returns the path of the binary. The build copies
 * serf's unmodified sources plus shim/snaplog_shim.go into a temporary GOPATH
 * (serf's installed sources are never modified) and compiles in GOPATH mode.
 * The binary is cached in $TMPDIR/snaplog-serf-harness-<hash>, keyed by the
 * harness sources, serf's sources and the Go version.
 */
export async function buildSerfHarness(): Promise<string> {
  const avail = await goAvailable();
  if (!avail.ok) throw new Error(`cannot build the serf harness: ${avail.reason}`);
  const own = harnessDir();
  const ownFiles = await goSources(own);
  const shim = `${own}/shim/snaplog_shim.go`;
  const serfDir = serfPkgDir();
  const serfFiles = await goSources(serfDir);

  const hash = createHash("sha256");
  hash.update(`${avail.goVersion}\0${BUILD_TAG}\0`);
  const add = async (label: string, path: string): Promise<Uint8Array> => {
    const data = await Deno.readFile(path);
    hash.update(`${label}\0${data.length}\0`);
    hash.update(data);
    return data;
  };
  const ownData = new Map<string, Uint8Array>();
  for (const f of ownFiles) ownData.set(f, await add(`own/${f}`, `${own}/${f}`));
  const shimData = await add("shim", shim);
  for (const f of serfFiles) await add(`serf/${f}`, `${serfDir}/${f}`);
  const digest = hash.digest("hex").slice(0, 20);

  const finalDir = `${tmpRoot()}/snaplog-serf-harness-${digest}`;
  const bin = `${finalDir}/serf_harness`;
  if (await exists(bin)) return bin;

  const work = await Deno.makeTempDir({ dir: tmpRoot(), prefix: `snaplog-serf-harness-${digest}.build-` });
  try {
    const gopath = `${work}/gopath`;
    const pkg = `${gopath}/src/${SERF_PKG}`;
    await Deno.mkdir(pkg, { recursive: true });
    for (const f of serfFiles) await Deno.copyFile(`${serfDir}/${f}`, `${pkg}/${f}`);
    await Deno.writeFile(`${pkg}/zz_snaplog_shim.go`, shimData);
    const src = `${work}/src`;
    await Deno.mkdir(src);
    for (const [f, data] of ownData) await Deno.writeFile(`${src}/${f}`, data);

    const env: Record<string, string> = {
      GO111MODULE: "off",
      GOPATH: `${gopath}:${serfGopath()}`,
      GOFLAGS: "",
    };
    if (!Deno.env.get("GOCACHE") && !Deno.env.get("HOME") && !Deno.env.get("XDG_CACHE_HOME")) {
      env.GOCACHE = `${tmpRoot()}/snaplog-serf-gocache`;
    }
    const out = `${work}/out`;
    await Deno.mkdir(out);
    const r = await run("go", ["build", "-tags", BUILD_TAG, "-o", `${out}/serf_harness`, "."], {
      cwd: src,
      env,
    });
    if (r.code !== 0) throw new Error(`go build of the serf harness failed:\n${r.stderr}${r.stdout}`);
    try {
      await Deno.rename(out, finalDir);
    } catch (e) {
      // A concurrent build may have won the race; its binary is identical.
      if (!(await exists(bin))) throw e;
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return bin;
}

async function runHarness<T>(bin: string, args: string[]): Promise<T> {
  const r = await run(bin, args);
  if (r.code !== 0) {
    throw new Error(
      `serf harness ${args[0]} failed (exit ${r.code}): ${r.stderr.trim()}${
        r.stdout ? `\nstdout: ${r.stdout.trim()}` : ""
      }`,
    );
  }
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`serf harness ${args[0]} printed invalid JSON: ${r.stdout}\n${r.stderr}`);
  }
}

/**
 * Feeds every event of `eventsFile` through serf's Snapshotter writing a fresh
 * `outFile` (replaced if it exists), paced so that serf drops nothing, and
 * verifies the result. Throws (with the harness's stderr) on a verification
 * failure. By default serf never compacts during the run; pass
 * `minCompactSizeBytes` to let it. `keep` appends to an existing `outFile` as
 * a restarted agent would (serf replays it first and witnesses its clock);
 * `rejoinAfterLeave` is serf's option for the writer and the verifying replay.
 */
export async function serfAppend(
  bin: string,
  eventsFile: string,
  outFile: string,
  opts: { minCompactSizeBytes?: number; rejoinAfterLeave?: boolean; keep?: boolean } = {},
): Promise<SerfAppendResult> {
  const args = ["append", "--events", eventsFile, "--out", outFile];
  if (opts.rejoinAfterLeave) args.push("--rejoin-after-leave");
  if (opts.keep) args.push("--keep");
  if (opts.minCompactSizeBytes !== undefined) {
    if (!Number.isSafeInteger(opts.minCompactSizeBytes) || opts.minCompactSizeBytes < 1) {
      throw new Error(`minCompactSizeBytes must be a positive integer, got ${opts.minCompactSizeBytes}`);
    }
    args.push("--min-compact-size", String(opts.minCompactSizeBytes));
  }
  return await runHarness<SerfAppendResult>(bin, args);
}

/**
 * Times serf's replay of an existing snapshot (NewSnapshotter on the file),
 * measured inside the Go process. The file is never written. `runs` replays
 * it several times; `replayMs` is the fastest.
 */
export async function serfReplay(
  bin: string,
  file: string,
  opts: { rejoinAfterLeave?: boolean; nodes?: boolean; runs?: number } = {},
): Promise<SerfReplayResult> {
  const args = ["replay", "--file", file];
  if (opts.rejoinAfterLeave) args.push("--rejoin-after-leave");
  if (opts.nodes) args.push("--nodes");
  if (opts.runs !== undefined) args.push("--runs", String(opts.runs));
  return await runHarness<SerfReplayResult>(bin, args);
}

/**
 * Builds a snapshotter holding `aliveNodes` alive nodes (in a temporary
 * directory) and times serf's compact(); `compactMs` is the fastest of
 * `runs` calls (default 5).
 */
export async function serfCompact(
  bin: string,
  aliveNodes: number,
  opts: { runs?: number } = {},
): Promise<SerfCompactResult> {
  const args = ["compact", "--alive", String(aliveNodes)];
  if (opts.runs !== undefined) args.push("--runs", String(opts.runs));
  return await runHarness<SerfCompactResult>(bin, args);
}

if (import.meta.main) {
  const bin = await buildSerfHarness();
  if (Deno.args.length === 0 || (Deno.args.length === 1 && Deno.args[0] === "build")) {
    console.log(bin);
  } else {
    const { code } = await new Deno.Command(bin, { args: Deno.args, stdin: "inherit" }).spawn().status;
    Deno.exit(code);
  }
}
