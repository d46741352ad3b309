// `deno task demo`: a short end-to-end run a newcomer can watch. A simulated cluster churns
// through a serf snapshot; the process "crashes" mid-append; the snapshot is reopened,
// repaired and compacted; the same state is read back from serf's own text format; bad input
// is refused; and a file moved away behind a live log stops it rather than lose syncs.
import { ManualClock, PoisonedError, readSnapshotRecords, replaySnapshot, Snapshotter } from "../mod.ts";

const dir = await Deno.makeTempDir({ prefix: "snaplog-demo-" });
const path = `${dir}/serf.snapshot`;
const log = (s: string): void => console.log(s);
try {
  log(`snaplog demo in ${dir}\n`);

  // 1. A churning cluster of 2,000 nodes drives the snapshot through serf's event rules.
  let lamport = 1n;
  const clock = new ManualClock();
  const snap = await Snapshotter.open(path, {
    lamportClock: () => lamport,
    clock,
    minCompactSizeBytes: 1 << 20,
  });
  let seed = 42; // mulberry32: seeded, so every run shows the same history
  const rand = (n: number): number => {
    let t = (seed = (seed + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const t0 = performance.now();
  const events = 200_000;
  for (let i = 0; i < events; i++) {
    const node = `node-${String(rand(2000)).padStart(4, "0")}`;
    const r = rand(100);
    lamport++;
    if (r < 55) {
      await snap.handleEvent({
        type: "member-join",
        members: [{ name: node, addr: `10.0.${rand(256)}.${rand(256)}:7946` }],
      });
    } else if (r < 95) {
      await snap.handleEvent({ type: r < 80 ? "member-failed" : "member-leave", members: [{ name: node }] });
    } else {
      await snap.handleEvent({ type: r < 98 ? "user" : "query", ltime: BigInt(i) });
    }
    if (i % 20_000 === 19_999) {
      clock.advance(500); // the flush timer fires, as it would every 500 ms
      await new Promise((resolve) => setTimeout(resolve, 0)); // let the file I/O run
    }
  }
  await snap.sync();
  await snap.settled();
  const ms = performance.now() - t0;
  const alive = snap.aliveNodes();
  log(
    `1. ${events.toLocaleString()} serf events handled in ${
      ms.toFixed(0)
    } ms (a demo loop; speeds: deno task bench)`,
  );
  log(`   alive: ${alive.length} nodes, member clock ${snap.lastClock}, event clock ${snap.lastEventClock}`);
  log(
    `   file ${snap.stats.fileBytes.toLocaleString()} bytes, ${snap.stats.compactions} automatic compactions\n`,
  );

  // 2. Crash mid-append: the last frame on disk is torn.
  snap.append({ type: "alive", name: "late-node", addr: "10.9.9.9:7946" });
  await snap.close();
  const size = (await Deno.stat(path)).size;
  await Deno.truncate(path, size - 5);
  log(`2. simulated crash: cut the last record's final 5 bytes off (file ${size - 5} bytes)`);
  let last = null; // what `deno task cli dump` lists last
  for await (const e of readSnapshotRecords(path)) last = e;
  log(`   the file's last entry (readSnapshotRecords): offset ${last?.offset}: ${last?.note}`);

  const t1 = performance.now();
  const reopened = await Snapshotter.open(path);
  const r = reopened.openReport;
  log(`   reopen + replay: ${(performance.now() - t1).toFixed(1)} ms, ${r.records.toLocaleString()} records`);
  log(
    `   torn tail of ${r.tornTailBytes} bytes cut off; evidence kept in ${
      r.brokenCopy?.slice(dir.length + 1)
    }`,
  );
  log(`   alive set intact: ${reopened.aliveNodes().length === alive.length}\n`);

  // 3. Compaction: the live state, written beside the file and renamed over it. Some churn
  //    first (every node re-joins at a new address), which a compaction folds away.
  for (const n of alive) {
    reopened.append({ type: "alive", name: n.name, addr: `10.1.${rand(256)}.${rand(256)}:7946` });
  }
  await reopened.sync();
  const before = reopened.stats.fileBytes;
  const t2 = performance.now();
  await reopened.compact();
  log(
    `3. compaction: ${before.toLocaleString()} → ${reopened.stats.fileBytes.toLocaleString()} bytes in ${
      (performance.now() - t2).toFixed(1)
    } ms`,
  );
  await reopened.close();

  // 4. Serf's own text format: write the same state as serf would, and read it back.
  const textPath = `${dir}/serf-text.snapshot`;
  const text = await Snapshotter.open(textPath, { format: "go-text" });
  for (const n of alive) text.append({ type: "alive", name: n.name, addr: n.addr });
  text.append({ type: "clock", value: reopened.lastClock });
  await text.close();
  const head = (await Deno.readTextFile(textPath)).split("\n").slice(0, 2).join(" | ");
  const fromText = await replaySnapshot(textPath);
  log(`4. go-text snapshot: "${head} | ..."`);
  log(
    `   replayed as ${fromText.format}: ${fromText.aliveNodes.length} alive, same set: ${
      JSON.stringify(fromText.aliveNodes) === JSON.stringify(alive)
    }`,
  );

  // 5. Bad input is refused, and nothing written is harmed.
  const guarded = await Snapshotter.open(textPath);
  try {
    guarded.append({ type: "alive", name: "x\nleave", addr: "1.2.3.4:7946" });
  } catch (e) {
    log(`5. refused: ${(e as Error).message}`);
  }
  await guarded.close();
  log(`   still ${(await replaySnapshot(textPath)).aliveNodes.length} alive after the refusal\n`);

  // 6. The file is moved away behind a live log (an operator's mv): the next sync says so
  //    instead of acknowledging records no reopen would read.
  const live = await Snapshotter.open(path);
  await Deno.rename(path, `${path}.moved`);
  live.append({ type: "alive", name: "after-the-move", addr: "10.8.8.8:7946" });
  try {
    await live.sync();
  } catch (e) {
    log(
      `6. ${e instanceof PoisonedError ? "refused" : "error"}: ${
        (e as Error).message.replaceAll(`${dir}/`, "")
      }`,
    );
  }
  await live.close().catch(() => {});
} finally {
  await Deno.remove(dir, { recursive: true });
}
