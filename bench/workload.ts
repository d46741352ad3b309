/**
 * A realistic, seeded serf workload: a churning cluster of `nodes` members (joins, leaves,
 * failures, re-joins at new addresses) with user events and queries carrying Lamport
 * times, streamed one event at a time so a 5M-record history never exists as objects at
 * once. Shared by the benchmarks (bench/), the Go comparison (bench/compare.ts) and the
 * demo.
 *
 * The same history can be written three ways:
 * - as the Go harness's events file (bench/go/README.md, "Events file"): {@link writeEventsFile};
 * - as serf's text snapshot, directly with a buffered writer: {@link writeGoTextSnapshot};
 * - into a snaplog `Snapshotter` (binary or go-text), record by record: {@link feedRecords}.
 *
 * Events become snapshot records as serf's Snapshotter turns them into lines
 * (serf/snapshot.go v0.9.4): a join is `alive: NAME ADDR`, a leave or failure
 * `not-alive: NAME`, each followed by `clock: N` (the member Lamport clock moved); a user
 * event or query whose LTime is above every earlier one is `event-clock: N` /
 * `query-clock: N`, a stale one writes nothing. That is about two lines per member event.
 * The clock value after the k-th member event is k, which is what the Go harness's serf
 * writes when it keeps up (it increments its clock before every member event).
 *
 * @example Stream a small history and read the final alive set
 * ```ts
 * import { Workload } from "./workload.ts";
 *
 * const w = new Workload({ seed: 1, nodes: 100, events: 1000 });
 * let records = 0;
 * for (const _ of w.records()) records++;
 * console.log(records, w.aliveNodes().size);
 * ```
 *
 * @module
 */
import { Rng } from "../src/_rng.ts";
import type { SnapshotRecord } from "../src/serf/records.ts";
import type { SerfEvent } from "../src/serf/snapshotter.ts";

/** One event of the workload, as the Go harness's events file has it. */
export type WorkloadEvent =
  | { kind: "join"; name: string; addr: string }
  | { kind: "leave" | "failed"; name: string }
  | { kind: "user" | "query"; ltime: number };

/** Options of {@link Workload}. */
export interface WorkloadOptions {
  /** PRNG seed: the same seed and options give the same history, byte for byte. */
  seed: number;
  /** Cluster size: names `node-000000` … (distinct members that ever exist). */
  nodes: number;
  /** Stop after this many events (the bootstrap joins count). */
  events?: number;
  /** Stop after the event during which the record count reached this many. */
  records?: number;
  /**
   * Share of the members that are alive in steady state. Churn picks a re-join with a
   * probability that rises with the dead share, so the alive set hovers here instead of
   * drifting like a random walk.
   *
   * @default {0.9}
   */
  aliveFraction?: number;
  /** Percent of post-bootstrap events that are user events. @default {4} */
  userEventPct?: number;
  /** Percent of post-bootstrap events that are queries. @default {2} */
  queryPct?: number;
  /** Percent of joins at an IPv6 address (`[fd00::a:b]:7946`). @default {5} */
  ipv6Pct?: number;
}

/** Totals of a stream, as the writers return them. */
export interface WorkloadTotals {
  /** Events generated. */
  events: number;
  /** Member events (join, leave, failed). */
  memberEvents: number;
  /** Snapshot records (lines) the events turn into. */
  records: number;
  /** Bytes written by the writer that returned this (0 where nothing was written). */
  bytes: number;
}

/** Where {@link feedRecords} appends: a snaplog `Snapshotter` or anything shaped like it. */
export interface RecordSink {
  /** Appends one record (buffered; the returned promise may resolve later). */
  append(record: SnapshotRecord): unknown;
}

/** `node-000123`: six digits as serf agents are commonly named in tests; wider past a million. */
export function nodeName(i: number): string {
  return `node-${String(i).padStart(6, "0")}`;
}

/**
 * A seeded churn history. Iterate {@link Workload.events} or {@link Workload.records}
 * (once per instance); afterwards {@link Workload.aliveNodes} and the clocks describe the
 * state the history leaves, which a replay of its records must reproduce.
 */
export class Workload {
  readonly options: Readonly<Required<Omit<WorkloadOptions, "events" | "records">>> & {
    events: number;
    records: number;
  };
  readonly #alive = new Map<string, string>();
  #used = false;
  #events = 0;
  #memberEvents = 0;
  #records = 0;
  #lastEventClock = 0;
  #lastQueryClock = 0;
  // The newest LTime serf wrote a line for (the generator's own clocks run ahead of stale ones).
  #emittedEventClock = 0;
  #emittedQueryClock = 0;

  /**
   * @param options Seed, cluster size and where to stop (`events`, `records`, or both: the
   *   first reached wins).
   * @throws {RangeError} If `nodes` is not a positive integer, a stop is missing, or a
   *   percentage is out of range.
   */
  constructor(options: WorkloadOptions) {
    const o = {
      seed: options.seed,
      nodes: options.nodes,
      events: options.events ?? Infinity,
      records: options.records ?? Infinity,
      aliveFraction: options.aliveFraction ?? 0.9,
      userEventPct: options.userEventPct ?? 4,
      queryPct: options.queryPct ?? 2,
      ipv6Pct: options.ipv6Pct ?? 5,
    };
    if (!Number.isSafeInteger(o.nodes) || o.nodes < 1) {
      throw new RangeError(`Cannot create workload: nodes must be a positive integer, got ${o.nodes}`);
    }
    if (o.events === Infinity && o.records === Infinity) {
      throw new RangeError("Cannot create workload: set events or records");
    }
    if (!(o.aliveFraction > 0 && o.aliveFraction < 1)) {
      throw new RangeError(`Cannot create workload: aliveFraction must be in (0, 1), got ${o.aliveFraction}`);
    }
    if (o.userEventPct < 0 || o.queryPct < 0 || o.userEventPct + o.queryPct > 100) {
      throw new RangeError("Cannot create workload: userEventPct + queryPct must be within 0..100");
    }
    this.options = o;
  }

  /** The events, in order. A generator: nothing is held beyond the alive set. */
  *events(): Generator<WorkloadEvent> {
    if (this.#used) throw new Error("Cannot iterate workload: each Workload streams once");
    this.#used = true;
    const o = this.options;
    const rng = new Rng(o.seed);
    const names: string[] = [];
    for (let i = 0; i < o.nodes; i++) names.push(nodeName(i));
    // Alive and dead members in swap-remove arrays: picking either is O(1).
    const aliveIdx: number[] = [];
    const deadIdx: number[] = [];
    const pos = new Int32Array(o.nodes);
    const addr = (): string => {
      if (rng.int(100) < o.ipv6Pct) {
        // Both groups non-zero: Go's TCPAddr.String() prints exactly this (RFC 5952 form),
        // so the address serf writes equals the one in the events file.
        return `[fd00::${(1 + rng.int(0xffff)).toString(16)}:${(1 + rng.int(0xffff)).toString(16)}]:7946`;
      }
      const port = rng.int(10) === 0 ? 1024 + rng.int(60000) : 7946;
      return `10.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}:${port}`;
    };
    const stop = (): boolean => this.#events >= o.events || this.#records >= o.records;
    const emitMember = (): void => {
      this.#events++;
      this.#memberEvents++;
      this.#records += 2; // the member line and the clock line after it
    };

    // Bootstrap: every member joins once.
    for (let i = 0; i < o.nodes && !stop(); i++) {
      const a = addr();
      pos[i] = aliveIdx.length;
      aliveIdx.push(i);
      this.#alive.set(names[i]!, a);
      emitMember();
      yield { kind: "join", name: names[i]!, addr: a };
    }
    // Keep the dead share near 1 - aliveFraction: at that share a re-join is a coin toss.
    const deadTarget = o.nodes * (1 - o.aliveFraction);
    while (!stop()) {
      const p = rng.int(100);
      if (p < o.userEventPct) {
        this.#lastEventClock += 1 + rng.int(3);
        let lt = this.#lastEventClock;
        // Now and then a stale or duplicate LTime (a late gossip message): serf skips it.
        if (rng.int(30) === 0 && lt > 2) lt -= rng.int(3);
        if (lt > this.#emittedEventClock) {
          this.#emittedEventClock = lt;
          this.#records++;
        }
        this.#events++;
        yield { kind: "user", ltime: lt };
        continue;
      }
      if (p < o.userEventPct + o.queryPct) {
        this.#lastQueryClock += 1 + rng.int(3);
        let lt = this.#lastQueryClock;
        if (rng.int(50) === 0 && lt > 2) lt -= rng.int(2);
        if (lt > this.#emittedQueryClock) {
          this.#emittedQueryClock = lt;
          this.#records++;
        }
        this.#events++;
        yield { kind: "query", ltime: lt };
        continue;
      }
      const rejoin = deadIdx.length > 0 &&
        (aliveIdx.length === 0 || rng.next() < Math.min(1, (0.5 * deadIdx.length) / Math.max(deadTarget, 1)));
      if (rejoin) {
        const k = rng.int(deadIdx.length);
        const i = deadIdx[k]!;
        swapRemove(deadIdx, pos, k);
        pos[i] = aliveIdx.length;
        aliveIdx.push(i);
        const a = addr(); // a re-join comes back at a new address
        this.#alive.set(names[i]!, a);
        emitMember();
        yield { kind: "join", name: names[i]!, addr: a };
      } else {
        const k = rng.int(aliveIdx.length);
        const i = aliveIdx[k]!;
        swapRemove(aliveIdx, pos, k);
        pos[i] = deadIdx.length;
        deadIdx.push(i);
        this.#alive.delete(names[i]!);
        emitMember();
        // Graceful leaves outnumber failures in a healthy cluster.
        yield { kind: rng.int(5) < 3 ? "leave" : "failed", name: names[i]! };
      }
    }
  }

  /** The snapshot records serf's Snapshotter writes for {@link Workload.events}, in order. */
  *records(): Generator<SnapshotRecord> {
    for (const line of eventsToRecords(this.events())) yield line;
  }

  /** Snapshot lines of serf's text format for the history (what serf would write). */
  *goTextLines(): Generator<string> {
    let member = 0, eventClock = 0, queryClock = 0;
    for (const ev of this.events()) {
      switch (ev.kind) {
        case "join":
          yield `alive: ${ev.name} ${ev.addr}\n`;
          yield `clock: ${++member}\n`;
          break;
        case "leave":
        case "failed":
          yield `not-alive: ${ev.name}\n`;
          yield `clock: ${++member}\n`;
          break;
        case "user":
          if (ev.ltime > eventClock) {
            eventClock = ev.ltime;
            yield `event-clock: ${ev.ltime}\n`;
          }
          break;
        case "query":
          if (ev.ltime > queryClock) {
            queryClock = ev.ltime;
            yield `query-clock: ${ev.ltime}\n`;
          }
          break;
      }
    }
  }

  /** The alive set the history leaves (name → address), valid after iterating. */
  aliveNodes(): ReadonlyMap<string, string> {
    return this.#alive;
  }

  /** Totals so far (all of them after iterating). `bytes` is 0. */
  totals(): WorkloadTotals {
    return { events: this.#events, memberEvents: this.#memberEvents, records: this.#records, bytes: 0 };
  }

  /** The clocks a replay of the records must end with (uint64, as serf keeps them). */
  clocks(): { lastClock: bigint; lastEventClock: bigint; lastQueryClock: bigint } {
    return {
      lastClock: BigInt(this.#memberEvents),
      lastEventClock: BigInt(this.#emittedEventClock),
      lastQueryClock: BigInt(this.#emittedQueryClock),
    };
  }
}

function swapRemove(list: number[], pos: Int32Array, k: number): void {
  const last = list.pop()!;
  if (k < list.length) {
    list[k] = last;
    pos[last] = k;
  }
}

/**
 * Turns events into the snapshot records serf's Snapshotter writes for them: `alive` or
 * `not-alive` then `clock` per member event, `event-clock`/`query-clock` only for an
 * LTime above every earlier one.
 */
export function* eventsToRecords(events: Iterable<WorkloadEvent>): Generator<SnapshotRecord> {
  let member = 0, eventClock = 0, queryClock = 0;
  for (const ev of events) {
    switch (ev.kind) {
      case "join":
        yield { type: "alive", name: ev.name, addr: ev.addr };
        yield { type: "clock", value: BigInt(++member) };
        break;
      case "leave":
      case "failed":
        yield { type: "not-alive", name: ev.name };
        yield { type: "clock", value: BigInt(++member) };
        break;
      case "user":
        if (ev.ltime > eventClock) {
          eventClock = ev.ltime;
          yield { type: "event-clock", value: BigInt(ev.ltime) };
        }
        break;
      case "query":
        if (ev.ltime > queryClock) {
          queryClock = ev.ltime;
          yield { type: "query-clock", value: BigInt(ev.ltime) };
        }
        break;
    }
  }
}

/** One line of the Go harness's events file, with its `\n`. */
export function formatEventLine(ev: WorkloadEvent): string {
  switch (ev.kind) {
    case "join":
      return `join ${ev.name} ${ev.addr}\n`;
    case "leave":
    case "failed":
      return `${ev.kind} ${ev.name}\n`;
    case "user":
    case "query":
      return `${ev.kind} ${ev.ltime}\n`;
  }
}

// 1 MiB: few write calls, still small next to the files written.
const WRITE_BUFFER_BYTES = 1 << 20;

/**
 * Writes the workload as the Go harness's events file (`join NAME ADDR`, `leave NAME`,
 * `failed NAME`, `user LTIME`, `query LTIME`, one per line).
 *
 * @param path File to create or replace.
 * @param options The workload.
 * @returns Totals, with the file's size in `bytes`.
 */
export async function writeEventsFile(path: string, options: WorkloadOptions): Promise<WorkloadTotals> {
  const w = new Workload(options);
  const bytes = await writeLinesAsync(path, mapIter(w.events(), formatEventLine));
  return { ...w.totals(), bytes };
}

/**
 * Writes the workload's snapshot straight in serf's text format, as serf would (see the
 * module doc), without going through a Snapshotter.
 *
 * @param path File to create or replace.
 * @param options The workload.
 * @returns Totals, with the file's size in `bytes`, plus the workload for its final state.
 */
export async function writeGoTextSnapshot(
  path: string,
  options: WorkloadOptions,
): Promise<WorkloadTotals & { workload: Workload }> {
  const w = new Workload(options);
  const bytes = await writeLinesAsync(path, w.goTextLines());
  return { ...w.totals(), bytes, workload: w };
}

/**
 * Appends every record of `records` to `sink` without awaiting each append (buffered
 * modes resolve at once; the caller syncs or closes). Returns the count.
 */
export function feedRecords(sink: RecordSink, records: Iterable<SnapshotRecord>): number {
  let n = 0;
  for (const r of records) {
    sink.append(r);
    n++;
  }
  return n;
}

/** A sink that can be drained: a snaplog `Snapshotter`. */
export interface SyncableSink extends RecordSink {
  /** Flushes what is buffered and fsyncs it. */
  sync(): Promise<void>;
}

// Records between syncs while feeding: at ~40 bytes a record, 2.5 MiB staged at most, far
// under the Snapshotter's 64 MiB backpressure limit however slowly the disk drains.
const FEED_SYNC_EVERY = 1 << 16;

/**
 * Appends every record of `records` to `sink`, calling `sync()` every 65,536 records so
 * the buffer drains (a plain loop never yields to the event loop that does the writes) and
 * once at the end. For generating large files; returns the count.
 */
export async function feedSnapshotter(
  sink: SyncableSink,
  records: Iterable<SnapshotRecord>,
): Promise<number> {
  let n = 0;
  for (const r of records) {
    sink.append(r);
    if (++n % FEED_SYNC_EVERY === 0) await sink.sync();
  }
  await sink.sync();
  return n;
}

function* mapIter<T, U>(it: Iterable<T>, f: (t: T) => U): Generator<U> {
  for (const x of it) yield f(x);
}

async function writeLinesAsync(path: string, lines: Iterable<string>): Promise<number> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const buf = new Uint8Array(WRITE_BUFFER_BYTES);
  let len = 0, bytes = 0;
  const flush = async (): Promise<void> => {
    let off = 0;
    while (off < len) off += await file.write(buf.subarray(off, len));
    len = 0;
  };
  for (const l of lines) {
    // Lines are ASCII here, but leave room for any UTF-8 (3 bytes per UTF-16 unit).
    if (len + l.length * 3 > buf.length) await flush();
    const { written } = enc.encodeInto(l, buf.subarray(len));
    len += written;
    bytes += written;
  }
  await flush();
  return bytes;
}

/** What {@link feedEvents} drives: a snaplog `Snapshotter`'s serf event API. */
export interface EventSink {
  /** Applies one serf event (serf's rules). */
  handleEvent(event: SerfEvent): unknown;
  /** Flushes what is buffered and fsyncs it. */
  sync(): Promise<void>;
}

/**
 * Drives `sink` with the workload's events through serf's event API, as serf's own
 * Snapshotter is driven: a member event advances the Lamport clock (`clock.value`, read
 * through the sink's `lamportClock` option) and the sink writes `clock` records as serf
 * does. Open the sink with `lamportClock: () => clock.value`. Syncs every 65,536 events and
 * at the end; returns the number of events.
 */
export async function feedEvents(
  sink: EventSink,
  events: Iterable<WorkloadEvent>,
  clock: { value: bigint },
): Promise<number> {
  let n = 0;
  for (const ev of events) {
    switch (ev.kind) {
      case "join":
        clock.value++;
        sink.handleEvent({ type: "member-join", members: [{ name: ev.name, addr: ev.addr }] });
        break;
      case "leave":
      case "failed":
        clock.value++;
        sink.handleEvent({
          type: ev.kind === "leave" ? "member-leave" : "member-failed",
          members: [{ name: ev.name }],
        });
        break;
      case "user":
      case "query":
        sink.handleEvent({ type: ev.kind, ltime: BigInt(ev.ltime) });
        break;
    }
    if (++n % FEED_SYNC_EVERY === 0) await sink.sync();
  }
  await sink.sync();
  return n;
}
