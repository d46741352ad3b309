// Node names that hold frames: what a cluster member can put in the binary format's names.
import { WasmCore } from "../src/_wasm/core.ts";
import { FrameEncoder } from "../src/core/frame.ts";
import { encodeBinaryRecord, SERF_LIMITS } from "../src/serf/binary.ts";
import type { SnapshotRecord } from "../src/serf/records.ts";

/** The frame of `record` without a salt (version 1), as a string if all its bytes are ASCII, else null. */
export function asciiFrame(record: SnapshotRecord): string | null {
  const core = new WasmCore();
  const enc = new FrameEncoder(core, SERF_LIMITS, 256);
  encodeBinaryRecord(core, enc, record);
  const b = enc.bytes();
  return b.every((x) => x < 0x80) ? String.fromCharCode(...b) : null;
}

/**
 * A node name whose bytes are a whole alive frame for a node `evil…` (ASCII, so it survives as
 * a name), valid in a version 1 file (no salt); in a version 2 file it fails against the salt.
 */
export function nameHoldingAFrame(): string {
  for (let n = 0;; n++) {
    const f = asciiFrame({ type: "alive", name: `evil${n}`, addr: "6.6.6.6:1" });
    if (f !== null) return f;
  }
}
