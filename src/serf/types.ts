/**
 * A member of the alive set: its node name and its address as serf writes it (`HOST:PORT`).
 * Names and addresses that are not UTF-8 (a Go text file can hold any bytes) read as serf's
 * JSON shows them: each byte that begins no whole UTF-8 sequence becomes one U+FFFD.
 */
export interface AliveNode {
  /** The node name. */
  name: string;
  /** The node address, as written (`10.0.0.1:7946`, `[::1]:7946`). */
  addr: string;
}

/** Something replay skipped or could not use, with where it was. */
export interface ReplayWarning {
  /** Go text format: the 1-based line number. Binary format: the byte offset of the frame. */
  line: number;
  /**
   * Why it was skipped, in words. Go text: serf's own log message (`Unrecognized snapshot
   * line: ...`, `Failed to convert clock time: strconv.ParseUint: ...`). Binary (salvage): the
   * region skipped and why (`skipped 24 bytes: checksum mismatch`).
   */
  reason: string;
}

/** The state a snapshot file replays to, and what replay found on the way. */
export interface SnapshotState {
  /** The file's format. */
  format: "binary" | "go-text";
  /**
   * The alive set, sorted by name byte-wise on the bytes the file holds (the UTF-8 bytes,
   * for names that are UTF-8; a name that is not sorts by its own bytes, then decodes as serf
   * shows it, each byte that begins no whole rune as U+FFFD).
   */
  aliveNodes: AliveNode[];
  /** The last member Lamport clock written (uint64). */
  lastClock: bigint;
  /** The last user-event Lamport clock written (uint64). */
  lastEventClock: bigint;
  /** The last query Lamport clock written (uint64). */
  lastQueryClock: bigint;
  /** Records read (binary: frames; go-text: complete lines, skipped ones included). */
  records: number;
  /** Bytes of the file that replay read, torn tail included. */
  bytes: number;
  /** Bytes after the last complete record: a torn tail (binary) or a last line with no newline (go-text). */
  tornTailBytes: number;
  /**
   * What replay skipped, in file order: the first `maxWarnings` (10,000 by default), and in
   * serf's text format no more than 1 Mi characters of `reason` in all (a skipped line's
   * text is in its reason: the list stops at the first that does not fit), so a file of
   * garbage cannot make the list, and memory, follow the file's size.
   */
  warnings: ReplayWarning[];
  /** Warnings past those limits: counted, not listed (0 when all are in `warnings`). */
  warningsOmitted: number;
}

/** How many warnings a replay lists by default; the rest are only counted. */
export const WARNINGS_MAX_DEFAULT = 10_000;

/**
 * Checks a `maxWarnings` option: undefined gives the default.
 *
 * @throws {TypeError} Unless an integer. @throws {RangeError} If negative.
 */
export function checkMaxWarnings(what: string, value: unknown): number {
  if (value === undefined) return WARNINGS_MAX_DEFAULT;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Cannot ${what}: maxWarnings must be an integer, got ${String(value)}`);
  }
  if (value < 0) throw new RangeError(`Cannot ${what}: maxWarnings must be 0 or more, got ${value}`);
  return value;
}

/**
 * Appends `more` (and `moreOmitted` already counted elsewhere) to `list` up to `max` entries
 * and `charsMax` characters of `reason` in all, stopping at the first that does not fit (as a
 * replay lists them in file order); returns how many were omitted in all. Nothing is added
 * once `list` omitted any. A loop, not `push(...more)`: a spread of hundreds of thousands of
 * warnings overflows the call stack.
 */
export function addWarnings<T extends { reason: string }>(
  list: T[],
  omitted: number,
  more: readonly T[],
  moreOmitted: number,
  max: number,
  charsMax: number = Infinity,
): number {
  let chars = charsMax === Infinity ? 0 : list.reduce((n, w) => n + w.reason.length, 0);
  let i = 0;
  if (omitted === 0) {
    for (; i < more.length && list.length < max; i++) {
      const c = more[i]!.reason.length;
      if (chars + c > charsMax) break;
      chars += c;
      list.push(more[i]!);
    }
  }
  return omitted + moreOmitted + (more.length - i);
}
