// A fresh process for bench:compare's service start-up row: import snaplog, open a snapshot,
// list its alive set, close. Prints the times (ms) as one JSON object.
//   deno run -A bench/_startup_child.ts FILE
const t0 = performance.now();
const { Snapshotter } = await import("../mod.ts");
const t1 = performance.now();
const snap = await Snapshotter.open(Deno.args[0]!);
const t2 = performance.now();
const alive = snap.aliveNodes().length;
const t3 = performance.now();
await snap.close();
console.log(JSON.stringify({ importMs: t1 - t0, openMs: t2 - t1, aliveNodesMs: t3 - t2, alive }));
