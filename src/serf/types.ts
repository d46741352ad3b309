/** A member of the alive set: its node name and its address as serf writes it (`HOST:PORT`). */
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
  /** Why it was skipped, in words (`unrecognized line`, `failed to parse clock: ...`). */
  reason: string;
}

/** The state a snapshot file replays to, and what replay found on the way. */
export interface SnapshotState {
  /** The file's format. */
  format: "binary" | "go-text";
  /** The alive set, sorted by name, byte-wise on the UTF-8 bytes. */
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
  /** What replay skipped, in file order. */
  warnings: ReplayWarning[];
}
