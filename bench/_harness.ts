// The benchmark harness: each bench module registers mitata groups through `suite`,
// tagging every benchmark with the work one iteration does (bytes, records), so the
// report can print throughput and the ratio to the group's baseline measured in the
// same run. Later layers (the Raft log store) add a module and a line in main.ts.
import { barplot, bench, group, run } from "mitata";

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

/** Declares one benchmark in the current group. `fn` may be async. */
export function suiteBench(name: string, work: Work, fn: () => unknown, opts: { baseline?: boolean } = {}): void {
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
}

/** Runs every registered benchmark, prints mitata's report, and returns the rows. */
export async function runSuite(opts: { json: boolean; filter?: RegExp }): Promise<ResultRow[]> {
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
    if (base && base !== row) row.speedupVsBaseline = base.avgNs / row.avgNs;
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
  console.log("\nthroughput (mean per iteration; ratio = baseline time / this time, same run)");
  for (const r of rows) {
    const parts = [`${r.group} / ${r.name}`.padEnd(60)];
    if (r.bytesPerSec) parts.push(`${si(r.bytesPerSec)}B/s`.padStart(12));
    if (r.recordsPerSec) parts.push(`${si(r.recordsPerSec)}rec/s`.padStart(14));
    parts.push(r.baseline ? "  baseline" : r.speedupVsBaseline ? `  x${r.speedupVsBaseline.toFixed(2)}` : "");
    console.log(parts.join(""));
  }
}
