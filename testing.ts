/**
 * Test doubles for code that uses snaplog: an in-memory file system that models what
 * survives a power loss, a wrapper that injects I/O failures, and a clock that moves only
 * when told to. Pass them as the `fs` and `clock` options.
 *
 * @example Lose everything that was not fsynced
 * ```ts
 * import { Snapshotter } from "@snaplog/snaplog";
 * import { ManualClock, MemFs } from "@snaplog/snaplog/testing";
 * import assert from "node:assert/strict";
 *
 * const fs = new MemFs();
 * const snap = await Snapshotter.open("/data/serf.snap", { fs, clock: new ManualClock() });
 * snap.append({ type: "alive", name: "a", addr: "10.0.0.1:7946" });
 * await snap.sync(); // durable
 * snap.append({ type: "alive", name: "b", addr: "10.0.0.2:7946" }); // buffered only
 * fs.crash(); // power loss: the process and everything not fsynced is gone
 *
 * const after = await Snapshotter.open("/data/serf.snap", { fs, clock: new ManualClock() });
 * assert.deepEqual(after.aliveNodes().map((n) => n.name), ["a"]);
 * await after.close();
 * ```
 *
 * @module
 */
export { type CrashOptions, type CrashRandom, MemFs, type MemWriteOptions } from "./src/fs/mem_fs.ts";
export { FaultFs, type FaultOp } from "./src/fs/fault_fs.ts";
export { type Clock, ManualClock } from "./src/clock.ts";
