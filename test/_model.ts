// Serf's replay rules over snapshot records, in a plain Map: what tests hold the Wasm replay,
// the writers and the record reader to.
import type { SnapshotRecord } from "../mod.ts";

/** What a replay of some records must give. */
export interface ModelState {
  /** Name → address, in the order names were first set. */
  alive: Map<string, string>;
  /** Member, event and query clocks. */
  clocks: [bigint, bigint, bigint];
  /** Records applied (all of them). */
  count: number;
}

/** Applies `records` by serf's rules: last alive wins, not-alive deletes, clocks last-wins, leave clears unless rejoinAfterLeave. */
export function serfModel(records: Iterable<SnapshotRecord>, rejoinAfterLeave = false): ModelState {
  const alive = new Map<string, string>();
  const clocks: [bigint, bigint, bigint] = [0n, 0n, 0n];
  let count = 0;
  for (const r of records) {
    count++;
    switch (r.type) {
      case "alive":
        alive.set(r.name, r.addr);
        break;
      case "not-alive":
        alive.delete(r.name);
        break;
      case "clock":
        clocks[0] = r.value;
        break;
      case "event-clock":
        clocks[1] = r.value;
        break;
      case "query-clock":
        clocks[2] = r.value;
        break;
      case "leave":
        if (!rejoinAfterLeave) {
          alive.clear();
          clocks.fill(0n);
        }
        break;
    }
  }
  return { alive, clocks, count };
}
