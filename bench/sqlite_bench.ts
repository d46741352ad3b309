// The second baseline: the same serf snapshot records stored in SQLite (node:sqlite, built
// into Deno) in WAL mode, the way an application would if it reached for a database
// instead of a log: every record goes into a `log` table, and the state it implies is kept
// current in an `alive` table keyed by name (upsert on alive, delete on not-alive) and a
// `clocks` table. "Replay" is reading that state back, or reading every record back.
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { SnapshotRecord } from "../src/serf/records.ts";

// Record kinds in the `log` table (values as snaplog's binary format numbers them).
const KIND = {
  "alive": 1,
  "not-alive": 2,
  "clock": 3,
  "event-clock": 4,
  "query-clock": 5,
  "leave": 6,
} as const;
const CLOCK_KINDS = [KIND.clock, KIND["event-clock"], KIND["query-clock"]] as const;

/** How {@link SqliteSnapshotStore} commits. */
export type SqliteDurability =
  /** synchronous=NORMAL: a WAL commit is not fsynced (the buffered comparison). */
  | "normal"
  /** synchronous=FULL: every commit fsyncs the WAL (the per-record durable comparison). */
  | "full";

/** The state read back from SQLite, shaped like snaplog's replay result. */
export interface SqliteState {
  aliveNodes: Array<{ name: string; addr: string }>;
  lastClock: bigint;
  lastEventClock: bigint;
  lastQueryClock: bigint;
}

/** Serf snapshot records in SQLite, WAL mode. One connection, synchronous API. */
export class SqliteSnapshotStore {
  readonly db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #upsertAlive: StatementSync;
  readonly #deleteAlive: StatementSync;
  readonly #setClock: StatementSync;
  #inTx = false;

  /**
   * Opens (creating if needed) a store at `path`.
   *
   * @param path Database file.
   * @param durability What a commit guarantees.
   */
  constructor(path: string, durability: SqliteDurability) {
    this.db = new DatabaseSync(path);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"};
      CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL, name TEXT, addr TEXT, value INTEGER);
      CREATE TABLE IF NOT EXISTS alive (name TEXT PRIMARY KEY, addr TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS clocks (kind INTEGER PRIMARY KEY, value INTEGER NOT NULL);
    `);
    this.#insert = this.db.prepare("INSERT INTO log (kind, name, addr, value) VALUES (?, ?, ?, ?)");
    this.#upsertAlive = this.db.prepare(
      "INSERT INTO alive (name, addr) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET addr = excluded.addr",
    );
    this.#deleteAlive = this.db.prepare("DELETE FROM alive WHERE name = ?");
    this.#setClock = this.db.prepare(
      "INSERT INTO clocks (kind, value) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET value = excluded.value",
    );
  }

  /** Starts a transaction; appends until {@link SqliteSnapshotStore.commit} share one commit. */
  begin(): void {
    this.db.exec("BEGIN");
    this.#inTx = true;
  }

  /** Commits the open transaction. */
  commit(): void {
    this.db.exec("COMMIT");
    this.#inTx = false;
  }

  /**
   * Stores one record and applies it to the state tables. Outside a transaction this is
   * its own commit (one WAL fsync under "full").
   */
  append(r: SnapshotRecord): void {
    const own = !this.#inTx;
    if (own) this.db.exec("BEGIN");
    switch (r.type) {
      case "alive":
        this.#insert.run(KIND.alive, r.name, r.addr, null);
        this.#upsertAlive.run(r.name, r.addr);
        break;
      case "not-alive":
        this.#insert.run(KIND["not-alive"], r.name, null, null);
        this.#deleteAlive.run(r.name);
        break;
      case "clock":
      case "event-clock":
      case "query-clock":
        this.#insert.run(KIND[r.type], null, null, r.value);
        this.#setClock.run(KIND[r.type], r.value);
        break;
      case "leave":
        this.#insert.run(KIND.leave, null, null, null);
        this.db.exec("DELETE FROM alive; DELETE FROM clocks;");
        break;
      default:
        break; // coordinate and comment carry no state
    }
    if (own) this.db.exec("COMMIT");
  }

  /** Reads the state back: the alive set by name, and the clocks. */
  readState(): SqliteState {
    const aliveNodes = this.db.prepare("SELECT name, addr FROM alive ORDER BY name").all() as Array<
      { name: string; addr: string }
    >;
    const clocks = this.db.prepare("SELECT kind, value FROM clocks");
    clocks.setReadBigInts(true);
    const c = new Map<number, bigint>();
    for (const row of clocks.all() as Array<{ kind: bigint; value: bigint }>) {
      c.set(Number(row.kind), row.value);
    }
    return {
      aliveNodes: aliveNodes.map((n) => ({ name: n.name, addr: n.addr })),
      lastClock: c.get(CLOCK_KINDS[0]) ?? 0n,
      lastEventClock: c.get(CLOCK_KINDS[1]) ?? 0n,
      lastQueryClock: c.get(CLOCK_KINDS[2]) ?? 0n,
    };
  }

  /** Reads every record back in order and replays it into a Map, as a log replay would. */
  replayAll(): { records: number; alive: number } {
    const stmt = this.db.prepare("SELECT kind, name, addr FROM log ORDER BY seq");
    // Arrays instead of objects: cheaper rows (typed as objects in @types/node's older API).
    (stmt as unknown as { setReturnArrays(v: boolean): void }).setReturnArrays(true);
    const alive = new Map<string, string>();
    let records = 0;
    for (const row of stmt.iterate() as Iterable<[number, string | null, string | null]>) {
      records++;
      const kind = row[0];
      if (kind === KIND.alive) alive.set(row[1]!, row[2]!);
      else if (kind === KIND["not-alive"]) alive.delete(row[1]!);
      else if (kind === KIND.leave) alive.clear();
    }
    return { records, alive: alive.size };
  }

  /** Closes the connection (checkpointing the WAL). */
  close(): void {
    this.db.close();
  }
}

/** SQLite's library version, e.g. `3.53.2`. */
export function sqliteVersion(): string {
  const db = new DatabaseSync(":memory:");
  try {
    return (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  } finally {
    db.close();
  }
}

/** Removes a store's files (the database, its WAL and shared-memory index). */
export async function removeSqliteFiles(path: string): Promise<void> {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(p).catch(() => {});
}
