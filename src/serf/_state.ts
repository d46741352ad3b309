// A typed binding over the serf replay state in Wasm memory (assembly/serf_state.ts).
// Private: the Go text replay (./gotext.ts) and the binary format drive it; callers see
// only the SnapshotState they return.
import { WasmCore, WasmMemoryError } from "../_wasm/core.ts";
import type { AliveNode } from "./types.ts";
import { decodeUtf8 } from "./records.ts";

/** Bytes of a slot of the alive set's table (assembly/serf_state.ts, SLOT_BYTES). */
const SLOT_BYTES = 64;
/** The most alive nodes a replay sizes its table for up front (see SerfState.reserveFor). */
const RESERVE_NODES_MAX = 16384;

/** The exports of assembly/serf_state.ts. u64 values cross as BigInt (signed i64). */
export interface SerfStateExports {
  state_reset(flags: number): void;
  state_reserve(nodes: number): number;
  state_delta_flags(): number;
  state_delta_dead_max(names: number, bytes: number): void;
  state_delta_count(): number;
  state_delta_bytes(): number;
  state_delta_export(outBytes: number, outEntries: number): number;
  state_delta_merge(
    bytes: number,
    entries: number,
    n: number,
    flags: number,
    c0: bigint,
    c1: bigint,
    c2: bigint,
  ): number;
  state_alive(namePtr: number, nameLen: number, addrPtr: number, addrLen: number): number;
  state_not_alive(namePtr: number, nameLen: number): void;
  state_clock(kind: number, value: bigint): void;
  state_leave(): void;
  state_count(): number;
  state_clock_value(kind: number): bigint;
  state_live_bytes(): number;
  state_capacity(): number;
  state_table_ptr(): number;
  state_dead(): number;
  state_out_bytes(): number;
  state_pack_out(dst: number): void;
  state_adopt(
    table: number,
    cap: number,
    count: number,
    dead: number,
    liveBytes: number,
    out: number,
  ): number;
  state_rejoin_after_leave(): number;
  state_iter_reset(): void;
  state_export(outBytes: number, outOffsets: number): number;
  state_export_sorted(outBytes: number, outOffsets: number): number;
  state_iter_next(): number;
  state_iter_name_ptr(): number;
  state_iter_name_len(): number;
  state_iter_addr_ptr(): number;
  state_iter_addr_len(): number;
}

/** Clock kinds, as assembly/serf_state.ts numbers them. */
export const CLOCK_MEMBER = 0;
/** The user-event clock. */
export const CLOCK_EVENT = 1;
/** The query clock. */
export const CLOCK_QUERY = 2;

/** The three Lamport clocks of a replayed state (uint64). */
export interface SerfClocks {
  lastClock: bigint;
  lastEventClock: bigint;
  lastQueryClock: bigint;
}

const encoder = new TextEncoder();

/** A delta-mode state as plain data: see {@link SerfState.exportDelta}. */
export interface StateDelta {
  /** Names and addresses back to back. */
  bytes: Uint8Array;
  /** Per name three u32 (little-endian): name length, address length, 1 if dead. */
  entries: Uint8Array;
  count: number;
  /** Bit 0: a leave cleared the state before; bits 1..3: member, event, query clock set. */
  flags: number;
  clocks: [bigint, bigint, bigint];
}

/**
 * The serf replay state of one Wasm core instance: the alive set and the three clocks.
 * Only one per instance (the Wasm side keeps it in module globals).
 */
export class SerfState {
  /** The core whose memory holds the state. */
  readonly core: WasmCore;
  readonly #x: SerfStateExports;
  #scratchPtr = 0;
  #scratchCap = 0;

  constructor(core: WasmCore = new WasmCore()) {
    this.core = core;
    this.#x = core.exports as unknown as SerfStateExports;
  }

  /** The raw Wasm exports, for callers that scan into the state themselves. */
  get exports(): SerfStateExports {
    return this.#x;
  }

  /**
   * Empties the alive set, zeroes the clocks and sets the leave mode. With `delta`, the state
   * records what the records it is given do to any prior state (a parallel replay's second
   * half: see {@link SerfState.exportDelta}).
   */
  reset(rejoinAfterLeave: boolean, delta = false): void {
    this.#x.state_reset((rejoinAfterLeave ? 1 : 0) | (delta ? 2 : 0));
  }

  /**
   * Sizes the alive set's table for a replay of `bytes` bytes of records, so it is built
   * once rather than doubled up to its size: one alive node per 48 bytes (a compacted file's
   * density), at most RESERVE_NODES_MAX (a 2 MiB table, all of it in memory at once: see
   * mem_alloc_zeroed). A hint: if memory cannot grow now, the replay itself reports it.
   */
  reserveFor(bytes: number): void {
    this.#x.state_reserve(Math.min(Math.floor(bytes / 48), RESERVE_NODES_MAX));
  }

  /**
   * Replaces this state's alive set with a copy of `from`'s (another instance's), table and
   * all: no node is inserted again. Clocks and the leave mode are not copied.
   *
   * @throws {RangeError} If Wasm memory cannot grow (this state's alive set is then as it was,
   *   or empty if the copy had begun; `from` is unchanged either way).
   */
  adopt(from: SerfState): void {
    const fx = from.exports;
    const cap = fx.state_capacity();
    const tableBytes = from.tableBytes;
    const outBytes = fx.state_out_bytes();
    // The out-of-line bytes, packed in the other instance and copied across.
    const src = from.core.alloc(Math.max(outBytes, 1));
    let table = 0;
    let out = 0;
    try {
      fx.state_pack_out(src);
      out = this.core.alloc(Math.max(outBytes, 1));
      if (cap > 0) {
        table = this.core.alloc(tableBytes);
        const t = fx.state_table_ptr();
        this.core.u8.set(from.core.u8.subarray(t, t + tableBytes), table);
      }
      this.core.u8.set(from.core.u8.subarray(src, src + outBytes), out);
      // The slots keep the hashes `from`'s key gave them.
      this.core.useHashKeyOf(from.core);
      const failed = this.#x.state_adopt(
        table,
        cap,
        fx.state_count(),
        fx.state_dead(),
        fx.state_live_bytes(),
        out,
      );
      table = 0; // the state owns it now (or freed it)
      if (failed !== 0) throw new RangeError(`Cannot copy the alive set: Wasm memory cannot grow further`);
    } finally {
      from.core.free(src, Math.max(outBytes, 1));
      if (out !== 0) this.core.free(out, Math.max(outBytes, 1));
      if (table !== 0) this.core.free(table, tableBytes);
    }
  }

  /** Slots in the alive set's table. */
  get capacity(): number {
    return this.#x.state_capacity();
  }

  /** Bytes of the alive set's table (its slots; names too long for a slot live outside it). */
  get tableBytes(): number {
    return this.#x.state_capacity() * SLOT_BYTES;
  }

  /** The leave mode this state was reset with. */
  get rejoinAfterLeave(): boolean {
    return this.#x.state_rejoin_after_leave() !== 0;
  }

  /**
   * A delta-mode state as plain data (transferable to another thread): every name it saw
   * last as alive (with its address) or dead, whether a leave cleared what came before, and
   * the clocks it set.
   *
   * @throws {RangeError} If the delta is incomplete (memory ran out while building it) or was
   *   dropped for its dead names (assembly/serf_state.ts, deltaDied).
   */
  exportDelta(): StateDelta {
    const x = this.#x;
    const flags = x.state_delta_flags();
    if ((flags & 16) !== 0) throw new RangeError(`Cannot export the replay delta: Wasm memory ran out`);
    if ((flags & 32) !== 0) {
      throw new RangeError(
        `Cannot export the replay delta: dropped, it held far more dead names than alive ones (the caller replays that part)`,
      );
    }
    const count = x.state_delta_count();
    const byteLen = x.state_delta_bytes();
    const { bytes, entries, n } = this.#export(byteLen, count, (b, e) => x.state_delta_export(b, e));
    const c = this.clocks;
    return { bytes, entries, count: n, flags, clocks: [c.lastClock, c.lastEventClock, c.lastQueryClock] };
  }

  /**
   * Runs a Wasm export that writes up to `byteLen` bytes and `count` 12-byte entries into two
   * fresh blocks and returns how many entries it wrote (or -1); returns copies of both.
   */
  #export(
    byteLen: number,
    count: number,
    run: (bytesPtr: number, entriesPtr: number) => number,
  ): { bytes: Uint8Array<ArrayBuffer>; entries: Uint8Array<ArrayBuffer>; n: number } {
    let bytesPtr = 0;
    let entriesPtr = 0;
    try {
      bytesPtr = this.core.alloc(Math.max(byteLen, 1));
      entriesPtr = this.core.alloc(Math.max(count * 12, 1));
    } catch (e) {
      if (bytesPtr !== 0) this.core.free(bytesPtr, Math.max(byteLen, 1));
      throw new WasmMemoryError(
        `Cannot list the alive set: a copy of its ${count} nodes (${byteLen} bytes of names and addresses) does not fit in Wasm memory beside it (at most 2 GiB in all)`,
        { cause: e },
      );
    }
    try {
      const n = run(bytesPtr, entriesPtr);
      const u8 = this.core.u8;
      return {
        bytes: u8.slice(bytesPtr, bytesPtr + byteLen),
        entries: u8.slice(entriesPtr, entriesPtr + Math.max(n, 0) * 12),
        n,
      };
    } finally {
      this.core.free(bytesPtr, Math.max(byteLen, 1));
      this.core.free(entriesPtr, Math.max(count * 12, 1));
    }
  }

  /**
   * Applies a delta from {@link SerfState.exportDelta} to this state, as if this state had
   * replayed the delta's records itself.
   *
   * @throws {RangeError} If Wasm memory cannot grow.
   */
  mergeDelta(d: StateDelta): void {
    const bytesPtr = this.core.alloc(Math.max(d.bytes.length, 1));
    const entriesPtr = this.core.alloc(Math.max(d.entries.length, 1));
    try {
      const u8 = this.core.u8;
      u8.set(d.bytes, bytesPtr);
      u8.set(d.entries, entriesPtr);
      const [c0, c1, c2] = d.clocks.map((c) => BigInt.asIntN(64, c)) as [bigint, bigint, bigint];
      if (this.#x.state_delta_merge(bytesPtr, entriesPtr, d.count, d.flags, c0, c1, c2) !== 0) {
        throw new RangeError(`Cannot merge the replay delta: Wasm memory cannot grow further`);
      }
    } finally {
      this.core.free(bytesPtr, Math.max(d.bytes.length, 1));
      this.core.free(entriesPtr, Math.max(d.entries.length, 1));
    }
  }

  /** Number of alive nodes. */
  get count(): number {
    return this.#x.state_count();
  }

  /** Sum of the name and address bytes of the alive set (for compaction sizing). */
  get liveBytes(): number {
    return this.#x.state_live_bytes();
  }

  /** The three clocks, as uint64 BigInts. */
  get clocks(): SerfClocks {
    return {
      lastClock: BigInt.asUintN(64, this.#x.state_clock_value(CLOCK_MEMBER)),
      lastEventClock: BigInt.asUintN(64, this.#x.state_clock_value(CLOCK_EVENT)),
      lastQueryClock: BigInt.asUintN(64, this.#x.state_clock_value(CLOCK_QUERY)),
    };
  }

  /**
   * Applies `alive: NAME ADDR` from the host (tests, appends); replays apply in Wasm.
   *
   * @throws {RangeError} if Wasm memory cannot grow.
   */
  alive(name: string | Uint8Array, addr: string | Uint8Array): void {
    const n = typeof name === "string" ? encoder.encode(name) : name;
    const a = typeof addr === "string" ? encoder.encode(addr) : addr;
    const p = this.#scratch(n.length + a.length);
    const u8 = this.core.u8;
    u8.set(n, p);
    u8.set(a, p + n.length);
    if (this.#x.state_alive(p, n.length, p + n.length, a.length) !== 0) {
      throw new RangeError(`Cannot add alive node: Wasm memory cannot grow further`);
    }
  }

  /** Applies `not-alive: NAME` from the host. */
  notAlive(name: string | Uint8Array): void {
    const n = typeof name === "string" ? encoder.encode(name) : name;
    const p = this.#scratch(n.length);
    this.core.u8.set(n, p);
    this.#x.state_not_alive(p, n.length);
  }

  /** Sets a clock (0 member, 1 event, 2 query); the last value wins, as in serf. */
  clock(kind: 0 | 1 | 2, value: bigint): void {
    this.#x.state_clock(kind, BigInt.asIntN(64, value));
  }

  /** Applies `leave` (ignored when reset with rejoinAfterLeave). */
  leave(): void {
    this.#x.state_leave();
  }

  /** The alive set, sorted byte-wise by the name bytes, decoded as serf shows them (decodeUtf8). */
  aliveNodes(): AliveNode[] {
    const { bytes, offsets, count, ascii } = this.exportSorted();
    if (ascii) {
      // Almost every cluster names its nodes in ASCII. Then one decode covers every string:
      // byte offsets are character offsets, and each string is a slice of it.
      const text = decodeUtf8(bytes);
      const nodes: AliveNode[] = new Array(count);
      for (let k = 0; k < count; k++) {
        nodes[k] = {
          name: text.slice(offsets[k * 3]!, offsets[k * 3 + 1]!),
          addr: text.slice(offsets[k * 3 + 1]!, offsets[k * 3 + 2]!),
        };
      }
      return nodes;
    }
    return Array.from({ length: count }, (_, k) => ({
      name: decodeUtf8(bytes.subarray(offsets[k * 3]!, offsets[k * 3 + 1]!)),
      addr: decodeUtf8(bytes.subarray(offsets[k * 3 + 1]!, offsets[k * 3 + 2]!)),
    }));
  }

  /**
   * The alive set as raw bytes, sorted by name byte-wise in one Wasm call (state_export_sorted):
   * names and addresses back to back in `bytes`, and per node three offsets into it (name
   * start, address start, address end); `ascii` when every byte is below 0x80. No object per
   * node.
   */
  exportSorted(): { bytes: Uint8Array; offsets: Uint32Array; count: number; ascii: boolean } {
    const x = this.#x;
    const count = x.state_count();
    const liveBytes = x.state_live_bytes();
    let ascii = false;
    const { bytes, entries, n } = this.#export(liveBytes, count, (b, e) => {
      const n = x.state_export_sorted(b, e);
      ascii = this.core.exports.all_ascii(b, liveBytes) === 1;
      return n;
    });
    if (n === -1) throw new RangeError(`Cannot sort the alive set: Wasm memory cannot grow further`);
    if (n !== count) throw new Error(`Cannot read alive set: ${n} entries, expected ${count}`);
    return { bytes, offsets: new Uint32Array(entries.buffer), count, ascii };
  }

  /** A scratch block of at least `bytes` bytes in Wasm memory, reused between calls. */
  #scratch(bytes: number): number {
    if (bytes > this.#scratchCap || this.#scratchPtr === 0) {
      if (this.#scratchPtr !== 0) this.core.free(this.#scratchPtr, this.#scratchCap);
      this.#scratchPtr = 0;
      const cap = Math.max(64, 2 ** Math.ceil(Math.log2(bytes)));
      this.#scratchPtr = this.core.alloc(cap);
      this.#scratchCap = cap;
    }
    return this.#scratchPtr;
  }
}
