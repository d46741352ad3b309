// Event-loop pauses around the flush after a synchronous burst (README "Operating it": "Mind
// the event loop"): a member-join of N members, then sync(), with a 1 ms interval timer recording
// the longest gap between its ticks. A control round with no snaplog (the same objects made and
// dropped, 20 writes of 1 MiB) shows what garbage collection and the VM alone cost.
//
//   deno task bench:lag [N ...]     (default: 200000 1000000)
import { Snapshotter } from "../mod.ts";

async function longestGap(work: () => Promise<void>): Promise<number> {
  let last = performance.now(), max = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    max = Math.max(max, t - last);
    last = t;
  }, 1);
  last = performance.now();
  try {
    await work();
    await new Promise((resolve) => setTimeout(resolve, 5)); // a last tick after the work
  } finally {
    clearInterval(timer);
  }
  return max;
}

const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [200_000, 1_000_000];
const dir = await Deno.makeTempDir({ prefix: "snaplog-lag-" });
try {
  for (const n of sizes) {
    const flush: number[] = [], control: number[] = [];
    for (let round = 0; round < 3; round++) {
      const members = Array.from({ length: n }, (_, i) => ({
        name: `node-${i}`,
        addr: `10.0.${i % 250}.${i % 200}:7946`,
      }));
      const snap = await Snapshotter.open(`${dir}/lag-${n}-${round}.snap`, { minCompactSizeBytes: 2 ** 52 });
      await snap.handleEvent({ type: "member-join", members });
      flush.push(await longestGap(() => snap.sync()));
      await snap.close();
      const copies = members.map((m) => ({ type: "alive", ...m }));
      control.push(
        await longestGap(async () => {
          for (let k = 0; k < 20; k++) await Deno.writeFile(`${dir}/control.bin`, new Uint8Array(1 << 20));
        }),
      );
      if (copies.length !== n) throw new Error("unreachable");
    }
    const ms = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(", ");
    console.log(`${n} members: longest pause during the flush ${ms(flush)} ms; control ${ms(control)} ms`);
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
