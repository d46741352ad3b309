// Helper for the two-process lock test in snapshotter_test.ts: tries to open the snapshot at
// Deno.args[0] and reports the outcome on stdout and in the exit code.
//   "locked"      exit 3: LockedError, as expected while the parent holds the file
//   "opened <n>"  exit 0: opened (n alive nodes) and closed again
//   "error: ..."  exit 1: anything else
import { LockedError, Snapshotter } from "../mod.ts";

const path = Deno.args[0];
if (path === undefined) {
  console.log("error: usage: lock_child.ts <snapshot path>");
  Deno.exit(1);
}
try {
  const snap = await Snapshotter.open(path);
  const n = snap.aliveNodes().length;
  await snap.close();
  console.log(`opened ${n}`);
  Deno.exit(0);
} catch (e) {
  if (e instanceof LockedError) {
    console.log("locked");
    Deno.exit(3);
  }
  console.log(`error: ${e instanceof Error ? e.message : String(e)}`);
  Deno.exit(1);
}
