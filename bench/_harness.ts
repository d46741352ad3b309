// The benchmark harness: each bench module registers mitata groups through `suite`,
// tagging every benchmark with the work one iteration does (bytes, records), so the
// report can print throughput and the ratio to the group's baseline measured in the
// same run. Later layers (the Raft log store) add a module and a line in main.ts.
import { barplot, bench, group, run } from "mitata";

/** An async mitata benchmark generator: setup, `yield` the timed function, teardown. */
export type BenchGen = AsyncGenerator<() => unknown, void, unknown>;
/** A synchronous mitata benchmark generator. */
export type SyncBenchGen = Generator<() => unknown, void, unknown>;

/** Work done by one iteration of a benchmark, for throughput figures. */
export interface Work {
  /** Bytes processed per iteration. */
  bytes?: number;
  /** Records (or events) processed per iteration. */
  records?: number;
}

interface Entry {
  group: string;
  name: string;
  work: Work;
  baseline: boolean;
}

const entries = new Map<string, Entry>();
let currentGroup = "";

/** Options for the whole run, parsed from the command line by main.ts. */
export interface SuiteOptions {
  /** Smaller sizes so the run stays within a few minutes on 2 cores. */
  short: boolean;
}

/** Declares a group of benchmarks shown together with a bar chart; the first `baseline` is the reference. */
export function suiteGroup(name: string, body: () => void): void {
  group(name, () => {
    barplot(() => {
      currentGroup = name;
      body();
    });
  });
}

/**
 * Declares one benchmark in the current group. `fn` may be async, or an (async) generator
 * function in mitata's style: setup, `yield` the timed function, teardown. Setup then runs
 * only when the benchmark is not filtered out.
 */
export function suiteBench(
  name: string,
  work: Work,
  fn: () => unknown,
  opts: { baseline?: boolean } = {},
): void {
  const full = `${currentGroup} / ${name}`;
  entries.set(full, { group: currentGroup, name, work, baseline: opts.baseline ?? false });
  const b = bench(full, fn);
  if (opts.baseline) b.baseline(true);
}

/** One result row, as written by `--json` and used by the README tables. */
export interface ResultRow {
  group: string;
  name: string;
  baseline: boolean;
  /** Mean time per iteration, nanoseconds. */
  avgNs: number;
  p50Ns: number;
  p99Ns: number;
  /** Bytes per second, when the benchmark declared bytes. */
  bytesPerSec?: number;
  /** Records per second, when the benchmark declared records. */
  recordsPerSec?: number;
  /** This row's time relative to the group's baseline (baseline time / this time: >1 is faster). */
  speedupVsBaseline?: number;
  /**
   * This row's throughput over the baseline's (records/s, else bytes/s), when both declared
   * the same kind of work: the fair ratio when a group's rows do different work per
   * iteration (an fsync ceiling beside a batch of appends).
   */
  throughputVsBaseline?: number;
}

/** Runs every registered benchmark, prints mitata's report, and returns the rows. */
export async function runSuite(opts: { json: boolean; filter?: RegExp }): Promise<ResultRow[]> {
  try {
    return await runRegistered(opts);
  } finally {
    for (const f of cleanups.splice(0).reverse()) await f().catch((e) => console.error("cleanup failed:", e));
  }
}

const cleanups: Array<() => Promise<void>> = [];
let tempDir: Promise<string> | undefined;

/**
 * A temporary directory for the files benchmarks generate, created on first use and
 * removed (with everything in it) when {@link runSuite} ends. `$SNAPLOG_BENCH_DIR` picks
 * its parent, to put the files on the disk under test.
 */
export function suiteTempDir(): Promise<string> {
  tempDir ??= (async () => {
    const parent = Deno.env.get("SNAPLOG_BENCH_DIR");
    const dir = await Deno.makeTempDir({ prefix: "snaplog-bench-", ...(parent ? { dir: parent } : {}) });
    cleanups.push(() => Deno.remove(dir, { recursive: true }));
    return dir;
  })();
  return tempDir;
}

/** Registers `f` to run when {@link runSuite} ends, even after a failure (last registered, first run). */
export function onSuiteEnd(f: () => Promise<void>): void {
  cleanups.push(f);
}

async function runRegistered(opts: { json: boolean; filter?: RegExp }): Promise<ResultRow[]> {
  const result = await run({
    format: opts.json ? "quiet" : "mitata",
    ...(opts.filter ? { filter: opts.filter } : {}),
    colors: !Deno.noColor,
  });
  const rows: ResultRow[] = [];
  for (const trial of result.benchmarks) {
    for (const r of trial.runs) {
      const entry = entries.get(r.name);
      if (!entry || !r.stats) {
        if (r.error) console.error(`benchmark ${r.name} failed:`, r.error);
        continue;
      }
      const s = r.stats;
      const row: ResultRow = {
        group: entry.group,
        name: entry.name,
        baseline: entry.baseline,
        avgNs: s.avg,
        p50Ns: s.p50,
        p99Ns: s.p99,
      };
      if (entry.work.bytes) row.bytesPerSec = entry.work.bytes / (s.avg / 1e9);
      if (entry.work.records) row.recordsPerSec = entry.work.records / (s.avg / 1e9);
      rows.push(row);
    }
  }
  for (const row of rows) {
    const base = rows.find((r) => r.group === row.group && r.baseline);
    if (base && base !== row) {
      row.speedupVsBaseline = base.avgNs / row.avgNs;
      if (row.recordsPerSec && base.recordsPerSec) {
        row.throughputVsBaseline = row.recordsPerSec / base.recordsPerSec;
      } else if (row.bytesPerSec && base.bytesPerSec) {
        row.throughputVsBaseline = row.bytesPerSec / base.bytesPerSec;
      }
    }
  }
  return rows;
}

/** Formats a rate with SI units (`1.52 G`). */
export function si(n: number): string {
  const units: Array<[number, string]> = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [f, u] of units) if (n >= f) return `${(n / f).toFixed(2)} ${u}`;
  return n.toFixed(2);
}

/** Prints the throughput table that the README and closing notes quote. */
export function printRows(rows: ResultRow[]): void {
  console.log("\nthroughput (mean per iteration; ratio = this throughput / baseline throughput, same run)");
  for (const r of rows) {
    const parts = [`${r.group} / ${r.name}`.padEnd(60)];
    if (r.bytesPerSec) parts.push(`${si(r.bytesPerSec)}B/s`.padStart(12));
    if (r.recordsPerSec) parts.push(`${si(r.recordsPerSec)}rec/s`.padStart(14));
    const ratio = r.throughputVsBaseline ?? r.speedupVsBaseline;
    parts.push(r.baseline ? "  baseline" : ratio ? `  x${ratio.toFixed(2)}` : "");
    console.log(parts.join(""));
  }
}
