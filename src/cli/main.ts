// The snaplog command line: `replay` prints the state a serf snapshot recovers, `dump` its
// records one by one, `convert` rewrites a snapshot in the other format, `compact` compacts it
// offline. Run as `deno task cli <command> ...`.
//
// The output of `replay --json` and the exit codes are a contract (tests and automated checks
// use them): 0 success, 1 a failure while running (a file that cannot be read, a refused
// conversion), 2 a usage error (unknown command or flag, a missing or bad argument).
import { parseArgs } from "node:util";
import { type ConvertProgress, convertSnapshot } from "../serf/convert.ts";
import { compactSnapshot } from "../serf/compact.ts";
import { replaySnapshot } from "../serf/replay.ts";
import { readSnapshotRecords, type SnapshotEntry } from "../serf/read_records.ts";
import type { SnapshotState } from "../serf/types.ts";
import { CorruptionError } from "../errors.ts";

/** Where the CLI writes; tests pass their own to capture the output in-process. */
export interface CliIo {
  /** Writes text to standard output. */
  stdout(text: string): void;
  /** Writes text to standard error. */
  stderr(text: string): void;
}

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  // writeSync may write less than asked (a pipe); each call writes at least one byte or throws.
  let off = 0;
  while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
}

const denoIo: CliIo = {
  stdout: (text) => writeAll(Deno.stdout, text),
  stderr: (text) => writeAll(Deno.stderr, text),
};

const USAGE = `Usage: snaplog <command> [options]

Commands:
  replay    Replay a serf snapshot, read-only, and print the state it recovers
  dump      Print a serf snapshot's records one by one, with what replay skips
  convert   Convert a serf snapshot between snaplog's binary format and serf's go-text format
  compact   Compact a snapshot offline: keep only the live state (needs the file's writer lock)

Options:
  -h, --help   Show this help

Run "snaplog <command> --help" (or "snaplog help <command>") for the options of a command.
`;

const REPLAY_USAGE = `Usage: snaplog replay [options] FILE

Replays a serf snapshot (snaplog's binary format or serf's go-text format) without
modifying it and prints the alive set and the three Lamport clocks it recovers.

Options:
  --format auto|binary|go-text    The file's format (default: auto, detected from its header)
  --rejoin-after-leave            Ignore leave records (serf's RejoinAfterLeave)
  --recovery truncate-tail|strict|salvage
                                  Binary format: how damage is handled (default: truncate-tail)
  --json                          Print one JSON object: format, aliveNodes (sorted by name),
                                  lastClock, lastEventClock, lastQueryClock (decimal strings),
                                  records, bytes, warnings (the first 10,000, and in go-text
                                  no more than 1 Mi characters of their text; past either,
                                  also warningsOmitted, the rest counted), tornTailBytes,
                                  replayMs
  -h, --help                      Show this help

Exit status: 0 replayed, 1 the file cannot be read or replayed, 2 usage error.
`;

const DUMP_USAGE = `Usage: snaplog dump [options] FILE

Prints FILE's records in file order, read-only: one line each, with its offset (and line
number in serf's go-text format), and a note for every line serf skips, every damaged
region --recovery salvage steps over, and a torn tail. Names and addresses are quoted, as
serf shows them: a byte that begins no whole UTF-8 rune prints as U+FFFD.

Options:
  --format auto|binary|go-text    The file's format (default: auto, detected from its header)
  --recovery truncate-tail|strict|salvage
                                  Binary format: how damage is handled (default: truncate-tail;
                                  salvage lists the records around it)
  --json                          One JSON object per line: offset, line (null in binary),
                                  type (null for a note) and the record's fields (clocks as
                                  decimal strings), or note
  -h, --help                      Show this help

Exit status: 0 printed, 1 the file cannot be read (or is damaged beyond --recovery), 2 usage error.
`;

const CONVERT_USAGE = `Usage: snaplog convert --to binary|go-text [options] IN OUT

Replays IN and writes the state it recovers to OUT in the other format. OUT replays to
the same alive set and clocks as IN, in both leave modes. OUT is written atomically (a
temporary file, fsynced, renamed over OUT); IN is never modified, and OUT may not be IN.

Options:
  --to binary|go-text             The output format (required)
  --from auto|binary|go-text      The input format (default: auto, detected from its header)
  --rejoin-after-leave            Summarize the state with leave records ignored
  --recovery truncate-tail|strict|salvage
                                  Binary input: how damage is handled (default: truncate-tail;
                                  salvage converts every good record around it)
  -h, --help                      Show this help

Exit status: 0 converted, 1 the conversion failed (OUT is left as it was), 2 usage error.
`;

const COMPACT_USAGE = `Usage: snaplog compact [options] FILE

Compacts FILE offline, as a live snapshotter does: the live state (alive records, then the
clocks) is written beside it, fsynced, renamed over FILE, and the directory fsynced. A torn
tail is cut off first (a copy goes to FILE.broken). Fails if a live writer holds FILE.
A leave record clears the state it follows, as an agent without RejoinAfterLeave replays it:
for an agent that sets it, pass --rejoin-after-leave, or the nodes before the leave are gone.

Options:
  --format auto|binary|go-text    The file's format (default: auto, detected from its header)
  --rejoin-after-leave            Keep the state across leave records (serf's RejoinAfterLeave)
  --recovery truncate-tail|strict|salvage
                                  How damage is handled (default: truncate-tail)
  -h, --help                      Show this help

Exit status: 0 compacted, 1 the file cannot be compacted (it is left as it was), 2 usage error.
`;

/** Each command's help, for `snaplog help <command>`. */
const COMMAND_USAGE: Readonly<Record<string, string>> = {
  replay: REPLAY_USAGE,
  dump: DUMP_USAGE,
  convert: CONVERT_USAGE,
  compact: COMPACT_USAGE,
};

async function compactCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    format: { type: "string" },
    "rejoin-after-leave": { type: "boolean" },
    recovery: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) {
    bestEffort(io.stdout, COMPACT_USAGE);
    return 0;
  }
  const format = oneOf("--format", values.format, ["auto", "binary", "go-text"] as const, "auto");
  const recovery = recoveryOption(values.recovery);
  const path = singleFile(positionals);
  const r = await compactSnapshot(path, {
    format,
    recovery,
    rejoinAfterLeave: values["rejoin-after-leave"] === true,
  });
  bestEffort(
    io.stdout,
    `${path}: ${r.format}, ${r.bytesBefore} -> ${r.bytesAfter} bytes, ${r.aliveNodes} alive nodes` +
      (r.tornTailBytes > 0 ? `, torn tail of ${r.tornTailBytes} bytes cut off` : "") + "\n",
  );
  return 0;
}

/**
 * Prints what a command that changes a file says along the way (progress, skipped lines, its
 * closing line): a stdout or stderr that is closed (`2>&1 | head -1`) or full must neither
 * abort the conversion halfway nor, once the file is compacted or OUT renamed in, make the
 * exit status say the file was left as it was.
 */
function bestEffort(write: (text: string) => void, text: string): void {
  try {
    write(text);
  } catch {
    // Only the message is lost.
  }
}

/** A usage error: printed with the usage text, exit status 2. */
class UsageError extends Error {}

/** Files from this size on get progress lines on stderr during a conversion. */
const PROGRESS_MIN_BYTES = 16 << 20;
/** At most one progress line per this interval, so a fast conversion does not flood stderr. */
const PROGRESS_INTERVAL_MS = 1000;

/**
 * Runs the snaplog command line with `args` (without the program name) and returns the exit
 * status: 0 success, 1 failure, 2 usage error.
 *
 * @example Replay a snapshot as JSON
 * ```ts
 * import { main } from "./main.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/serf.snapshot`, "alive: a 10.0.0.1:7946\nclock: 3\n");
 * let out = "";
 * const code = await main(["replay", "--json", `${dir}/serf.snapshot`], {
 *   stdout: (t) => out += t,
 *   stderr: () => {},
 * });
 * assert.equal(code, 0);
 * assert.equal(JSON.parse(out).lastClock, "3");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param args The command-line arguments.
 * @param io Where to write (default: the process's stdout and stderr).
 * @returns The exit status.
 */
export async function main(args: string[], io: CliIo = denoIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "replay":
        return await replayCommand(rest, io);
      case "dump":
        return await dumpCommand(rest, io);
      case "convert":
        return await convertCommand(rest, io);
      case "compact":
        return await compactCommand(rest, io);
      case "help": {
        // `snaplog help replay` is `snaplog replay --help`; a name that is no command is a usage error.
        if (rest.length > 1) throw new UsageError(`help takes one command name, got ${rest.length}`);
        const topic = ["help", "-h", "--help"].includes(rest[0] ?? "") ? undefined : rest[0];
        if (topic !== undefined && !Object.hasOwn(COMMAND_USAGE, topic)) {
          throw new UsageError(`unknown command "${topic}"`);
        }
        bestEffort(io.stdout, topic === undefined ? USAGE : COMMAND_USAGE[topic]!);
        return 0;
      }
      case "-h":
      case "--help":
        bestEffort(io.stdout, USAGE);
        return 0;
      case undefined:
        io.stderr(USAGE);
        return 2;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    // A reader that went away (`snaplog replay --json FILE | head -c 10`) is not a failure of
    // a command that only reads, as for dump. (convert and compact write through bestEffort:
    // a BrokenPipe that reaches here from them came from elsewhere, and is a failure.)
    if (err instanceof Deno.errors.BrokenPipe && (command === "replay" || command === "dump")) return 0;
    if (err instanceof UsageError) {
      const usage = command === "replay"
        ? REPLAY_USAGE
        : command === "dump"
        ? DUMP_USAGE
        : command === "convert"
        ? CONVERT_USAGE
        : command === "compact"
        ? COMPACT_USAGE
        : USAGE;
      io.stderr(`snaplog: ${err.message}\n\n${usage}`);
      return 2;
    }
    // Damage before the tail (which salvage never throws for): say how to get past it.
    const hint = err instanceof CorruptionError && err.reason.includes("valid records resume at")
      ? " (--recovery salvage keeps the records around the damage)"
      : err instanceof Deno.errors.NotFound && isRelativePath(/"([^"]*)"/.exec(err.message)?.[1] ?? "/")
      ? taskCwdHint()
      : "";
    io.stderr(`snaplog${command === undefined ? "" : ` ${command}`}: ${oneLine(err)}${hint}\n`);
    return 1;
  }
}

/**
 * Where `deno task cli` was run from elsewhere: a note that relative paths are taken from the
 * package's folder, deno task's working directory (Deno's default for tasks; the caller's own
 * directory is in INIT_CWD, which an outer npm or deno task may have set long before, so the
 * CLI does not guess which one a path meant).
 */
/** Whether `path` is relative (a hint about where relative paths go is no help for others). */
function isRelativePath(path: string): boolean {
  return !path.startsWith("/") && !/^[A-Za-z]:[\\/]|^\\\\/.test(path);
}

function taskCwdHint(): string {
  try {
    const init = Deno.env.get("INIT_CWD");
    const cwd = Deno.cwd();
    if (init === undefined || init === cwd) return "";
    return ` (relative paths are taken from the working directory, ${cwd} (deno task runs in the package's folder), not from ${init}: give an absolute path)`;
  } catch {
    return ""; // no --allow-env or --allow-read: no hint
  }
}

/** The message on one line: a newline in it (a path may hold one) is escaped, not cut off. */
function oneLine(err: unknown): string {
  return escapeControls(err instanceof Error ? err.message : String(err));
}

/** parseArgs, with its errors (unknown flag, missing value) turned into usage errors. */
type FlagSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

function parse(
  args: string[],
  options: FlagSpec,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    // Node's wording runs on ("... To specify a positional argument starting with a '-', ...");
    // its first sentence says what was wrong.
    throw new UsageError(oneLine(err).replace(/\. .*$/s, ""));
  }
}

/** `--recovery`, shared by the commands that open a binary snapshot. */
function recoveryOption(value: unknown): "truncate-tail" | "strict" | "salvage" {
  return oneOf("--recovery", value, ["truncate-tail", "strict", "salvage"] as const, "truncate-tail");
}

/** The one FILE a command takes. */
function singleFile(positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? "missing FILE" : `expected one FILE, got ${positionals.length}`,
    );
  }
  return positionals[0]!;
}

function oneOf<T extends string>(flag: string, value: unknown, allowed: readonly T[], def: T): T {
  if (value === undefined) return def;
  if (!allowed.includes(value as T)) {
    throw new UsageError(`${flag} must be ${allowed.join(", ")}; got "${String(value)}"`);
  }
  return value as T;
}

async function replayCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    format: { type: "string" },
    "rejoin-after-leave": { type: "boolean" },
    recovery: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) {
    bestEffort(io.stdout, REPLAY_USAGE);
    return 0;
  }
  const format = oneOf("--format", values.format, ["auto", "binary", "go-text"] as const, "auto");
  const recovery = recoveryOption(values.recovery);
  const path = singleFile(positionals);
  const start = performance.now();
  const state = await replaySnapshot(path, {
    format,
    recovery,
    rejoinAfterLeave: values["rejoin-after-leave"] === true,
  });
  const replayMs = performance.now() - start;
  if (values.json === true) {
    io.stdout(JSON.stringify(replayJson(state, replayMs)) + "\n");
  } else {
    io.stdout(replaySummary(path, state, replayMs));
  }
  return 0;
}

/** The `replay --json` object. Clocks are decimal strings: uint64 does not fit a JSON number. */
function replayJson(state: SnapshotState, replayMs: number): Record<string, unknown> {
  return {
    format: state.format,
    aliveNodes: state.aliveNodes.map((n) => ({ name: n.name, addr: n.addr })),
    lastClock: state.lastClock.toString(),
    lastEventClock: state.lastEventClock.toString(),
    lastQueryClock: state.lastQueryClock.toString(),
    records: state.records,
    bytes: state.bytes,
    warnings: state.warnings.map((w) => ({ line: w.line, reason: w.reason })),
    // Only past the 10,000th warning: the contract's object keeps its fields otherwise.
    ...(state.warningsOmitted > 0 ? { warningsOmitted: state.warningsOmitted } : {}),
    tornTailBytes: state.tornTailBytes,
    replayMs: Math.round(replayMs * 1000) / 1000,
  };
}

/** Nodes listed by the human summary; the rest are counted. */
const SUMMARY_NODES_MAX = 20;
/** Warnings listed by the human summary and by convert; the rest are counted. */
const SUMMARY_WARNINGS_MAX = 10;

function replaySummary(path: string, state: SnapshotState, replayMs: number): string {
  const where = state.format === "go-text" ? "line" : "offset";
  const lines = [
    `${path}: ${state.format}, ${state.records} records, ${state.bytes} bytes, replayed in ${
      replayMs.toFixed(1)
    } ms`,
    `clocks: member ${state.lastClock}, event ${state.lastEventClock}, query ${state.lastQueryClock}`,
    `alive nodes: ${state.aliveNodes.length}`,
    ...state.aliveNodes.slice(0, SUMMARY_NODES_MAX).map((n) =>
      `  ${escapeControls(`${JSON.stringify(n.name)} ${JSON.stringify(n.addr)}`)}`
    ),
  ];
  if (state.aliveNodes.length > SUMMARY_NODES_MAX) {
    lines.push(`  ... and ${state.aliveNodes.length - SUMMARY_NODES_MAX} more`);
  }
  if (state.tornTailBytes > 0) lines.push(`torn tail: ${state.tornTailBytes} bytes (ignored)`);
  const warnings = state.warnings.length + state.warningsOmitted;
  lines.push(`warnings: ${warnings}`);
  for (const w of state.warnings.slice(0, SUMMARY_WARNINGS_MAX)) {
    lines.push(`  ${where} ${w.line}: ${escapeControls(w.reason)}`);
  }
  if (warnings > SUMMARY_WARNINGS_MAX) lines.push(`  ... and ${warnings - SUMMARY_WARNINGS_MAX} more`);
  return lines.join("\n") + "\n";
}

/** Output of `dump` is written in pieces of about this many characters. */
const DUMP_FLUSH_CHARS = 1 << 16;

async function dumpCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    format: { type: "string" },
    recovery: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) {
    bestEffort(io.stdout, DUMP_USAGE);
    return 0;
  }
  const format = oneOf("--format", values.format, ["auto", "binary", "go-text"] as const, "auto");
  const recovery = recoveryOption(values.recovery);
  const path = singleFile(positionals);
  const show = values.json === true ? dumpJson : dumpText;
  let out = "";
  try {
    for await (const e of readSnapshotRecords(path, { format, recovery })) {
      out += show(e) + "\n";
      if (out.length >= DUMP_FLUSH_CHARS) {
        io.stdout(out);
        out = "";
      }
    }
    io.stdout(out);
  } catch (err) {
    // A reader that went away (`snaplog dump FILE | head`) is not a failure of the dump.
    if (err instanceof Deno.errors.BrokenPipe) return 0;
    io.stdout(out); // what was read before the error, then the error
    throw err;
  }
  return 0;
}

/** A `dump --json` line: the record's fields, clocks as decimal strings, or the note. */
function dumpJson(e: SnapshotEntry): string {
  const r = e.record;
  if (r === null) return JSON.stringify({ offset: e.offset, line: e.line, type: null, note: e.note });
  const fields = "value" in r ? { ...r, value: r.value.toString() } : r;
  return JSON.stringify({ offset: e.offset, line: e.line, ...fields });
}

/** A `dump` line: where, the type, the fields (names, addresses and texts quoted). */
function dumpText(e: SnapshotEntry): string {
  const where = e.line === null ? String(e.offset).padStart(10) : `line ${e.line} @${e.offset}`.padEnd(20);
  const r = e.record;
  if (r === null) return `${where}  (skipped)    ${escapeControls(e.note ?? "")}`;
  // JSON.stringify escapes C0 controls but not DEL, C1 (U+009B is a CSI) or bidi overrides.
  const fields = r.type === "alive"
    ? escapeControls(`${JSON.stringify(r.name)} ${JSON.stringify(r.addr)}`)
    : r.type === "not-alive"
    ? escapeControls(JSON.stringify(r.name))
    : r.type === "leave"
    ? ""
    : "value" in r
    ? String(r.value)
    : escapeControls(JSON.stringify(r.text));
  return `${where}  ${r.type.padEnd(11)}  ${fields}`.trimEnd();
}

/**
 * `text` with its control characters written as escapes (`\x1b`, `\r`, `\u2028`, the
 * bidirectional overrides): a skipped line's note quotes the line as serf logs it, raw, and a
 * terminal must not run an escape sequence, go back over the line or show it reordered because
 * a snapshot held one. A readable view, not a reversible one (a backslash stays as it is):
 * `--json` is the exact form.
 */
function escapeControls(text: string): string {
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === "\r") return "\\r";
    if (c === "\t") return "\\t";
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

async function convertCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    to: { type: "string" },
    from: { type: "string" },
    "rejoin-after-leave": { type: "boolean" },
    recovery: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) {
    bestEffort(io.stdout, CONVERT_USAGE);
    return 0;
  }
  if (values.to === undefined) throw new UsageError("missing --to binary|go-text");
  const to = oneOf("--to", values.to, ["binary", "go-text"] as const, "binary");
  const from = oneOf("--from", values.from, ["auto", "binary", "go-text"] as const, "auto");
  const recovery = recoveryOption(values.recovery);
  if (positionals.length !== 2) {
    throw new UsageError(
      `expected IN and OUT, got ${positionals.length} path${positionals.length === 1 ? "" : "s"}`,
    );
  }
  const [input, output] = positionals as [string, string];
  let lastLineMs = -Infinity;
  const onProgress = (p: ConvertProgress): void => {
    if (p.bytesTotal < PROGRESS_MIN_BYTES) return;
    const now = performance.now();
    if (p.bytesRead < p.bytesTotal && now - lastLineMs < PROGRESS_INTERVAL_MS) return;
    lastLineMs = now;
    const mib = (n: number): string => (n / (1 << 20)).toFixed(1);
    bestEffort(
      io.stderr,
      `snaplog convert: read ${mib(p.bytesRead)} of ${mib(p.bytesTotal)} MiB (${
        (100 * p.bytesRead / p.bytesTotal).toFixed(0)
      }%)\n`,
    );
  };
  const start = performance.now();
  const r = await convertSnapshot(input, output, {
    to,
    from,
    rejoinAfterLeave: values["rejoin-after-leave"] === true,
    onProgress,
    recovery,
  });
  const ms = performance.now() - start;
  const where = r.from === "go-text" ? "line" : "offset";
  for (const w of r.warnings.slice(0, SUMMARY_WARNINGS_MAX)) {
    bestEffort(
      io.stderr,
      `snaplog convert: skipped ${where} ${w.line} of the input: ${escapeControls(w.reason)}\n`,
    );
  }
  const warnings = r.warnings.length + r.warningsOmitted;
  if (warnings > SUMMARY_WARNINGS_MAX) {
    bestEffort(io.stderr, `snaplog convert: ... and ${warnings - SUMMARY_WARNINGS_MAX} more skipped\n`);
  }
  bestEffort(
    io.stdout,
    `converted ${input} (${r.from}, ${r.bytesRead} bytes, ${r.records} records) to ${output} (${r.to}, ${r.bytesWritten} bytes): ` +
      `${r.aliveCount} alive nodes, clocks ${r.lastClock}/${r.lastEventClock}/${r.lastQueryClock}, ` +
      `${warnings} warnings${r.tornTailBytes > 0 ? `, ${r.tornTailBytes}-byte torn tail dropped` : ""}${
        r.leaveRecorded ? ", leave kept" : ""
      }, ${ms.toFixed(1)} ms\n`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
