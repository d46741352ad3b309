import assert from "node:assert/strict";
import { serfModel } from "./_model.ts";
import {
  eventsToRecords,
  formatEventLine,
  Workload,
  type WorkloadOptions,
  writeEventsFile,
  writeGoTextSnapshot,
} from "../bench/workload.ts";
import { replayGoText } from "../src/serf/gotext.ts";
import { withTempDir } from "./_tmp.ts";

const OPTS: WorkloadOptions = { seed: 7, nodes: 200, events: 20_000 };

function eventLines(opts: WorkloadOptions): string {
  let s = "";
  for (const ev of new Workload(opts).events()) s += formatEventLine(ev);
  return s;
}

/** The events-file grammar of bench/go/README.md, as bench/go/events.go parses it. */
function parseEventLine(line: string): void {
  const f = line.split(" ");
  switch (f[0]) {
    case "join": {
      assert.equal(f.length, 3, line);
      assert.ok(f[1]!.length > 0, line);
      const m = /^(?:(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})|\[([0-9a-f:]+)\]):(\d{1,5})$/.exec(f[2]!);
      assert.ok(m, `bad address in ${JSON.stringify(line)}`);
      if (m[1] !== undefined) {
        for (const o of m.slice(1, 5)) {
          assert.ok(Number(o) <= 255 && String(Number(o)) === o, `bad octet in ${line}`);
        }
      } else {
        // Go's TCPAddr.String() form: no leading zeros, so serf writes the same string back.
        const groups = m[5]!.split(":").filter((g) => g !== "");
        for (const g of groups) {
          assert.ok(g.length <= 4 && !g.startsWith("0"), `non-canonical IPv6 in ${line}`);
        }
      }
      assert.ok(Number(m[6]) <= 65535 && String(Number(m[6])) === m[6], `bad port in ${line}`);
      return;
    }
    case "leave":
    case "failed":
      assert.equal(f.length, 2, line);
      assert.ok(f[1]!.length > 0, line);
      return;
    case "user":
    case "query":
      assert.equal(f.length, 2, line);
      assert.match(f[1]!, /^\d+$/, line);
      assert.ok(BigInt(f[1]!) < 1n << 64n, line);
      return;
    default:
      assert.fail(`unknown event line ${JSON.stringify(line)}`);
  }
}

Deno.test("Workload gives identical output for the same seed", () => {
  assert.equal(eventLines(OPTS), eventLines(OPTS));
});

Deno.test("Workload gives different output for a different seed", () => {
  assert.notEqual(eventLines(OPTS), eventLines({ ...OPTS, seed: 8 }));
});

Deno.test("Workload records replay to the alive set and clocks the generator reports", () => {
  const w = new Workload({ seed: 11, nodes: 500, events: 50_000 });
  const records = [...w.records()];
  // Only what serf's Snapshotter writes for events: no leave, coordinate or comment.
  assert.ok(
    records.every((r) => ["alive", "not-alive", "clock", "event-clock", "query-clock"].includes(r.type)),
  );
  const model = serfModel(records);
  assert.deepEqual(model.alive, new Map(w.aliveNodes()));
  const c = w.clocks();
  assert.deepEqual(model.clocks, [c.lastClock, c.lastEventClock, c.lastQueryClock]);
  const t = w.totals();
  assert.equal(model.count, t.records);
  assert.equal(t.events, 50_000);
  // About two lines per member event, as serf writes them.
  assert.ok(t.records >= 2 * t.memberEvents && t.records < 2.1 * t.memberEvents, JSON.stringify(t));
});

Deno.test("Workload churns: leaves, failures, re-joins at new addresses, stale clocks", () => {
  const seen = { join: 0, leave: 0, failed: 0, user: 0, query: 0, rejoinNewAddr: 0, stale: 0 };
  const lastAddr = new Map<string, string>();
  let maxUser = 0;
  const w = new Workload({ seed: 3, nodes: 1000, events: 100_000 });
  for (const ev of w.events()) {
    seen[ev.kind]++;
    if (ev.kind === "join") {
      const prev = lastAddr.get(ev.name);
      if (prev !== undefined && prev !== ev.addr) seen.rejoinNewAddr++;
      lastAddr.set(ev.name, ev.addr);
    } else if (ev.kind === "user") {
      if (ev.ltime <= maxUser) seen.stale++;
      maxUser = Math.max(maxUser, ev.ltime);
    }
  }
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `no ${k} in ${JSON.stringify(seen)}`);
  // The alive share hovers near the 0.9 default instead of drifting.
  const alive = w.aliveNodes().size;
  assert.ok(alive > 800 && alive < 970, `alive ${alive}`);
  assert.ok([...w.aliveNodes().values()].some((a) => a.startsWith("[fd00::")), "no IPv6 address");
});

Deno.test("Workload stops at a record count", () => {
  const w = new Workload({ seed: 5, nodes: 100, records: 10_000 });
  let n = 0;
  for (const _ of w.records()) n++;
  assert.equal(n, w.totals().records);
  assert.ok(n >= 10_000 && n <= 10_001, `records ${n}`);
});

Deno.test("Workload streams once", () => {
  const w = new Workload(OPTS);
  for (const _ of w.events()) break;
  assert.throws(() => w.events().next(), Error);
});

Deno.test("writeEventsFile writes lines that parse by the events-file format", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/events.txt`;
    const totals = await writeEventsFile(path, OPTS);
    const text = await Deno.readTextFile(path);
    assert.equal(text, eventLines(OPTS));
    assert.equal(totals.bytes, text.length);
    assert.ok(text.endsWith("\n"));
    const lines = text.slice(0, -1).split("\n");
    assert.equal(lines.length, totals.events);
    for (const line of lines) parseEventLine(line);
  });
});

Deno.test("writeGoTextSnapshot writes what eventsToRecords gives, and snaplog replays it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/serf.snapshot`;
    const out = await writeGoTextSnapshot(path, OPTS);
    const state = await replayGoText(path);
    const expected = [...out.workload.aliveNodes()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(state.aliveNodes.map((n) => [n.name, n.addr]), expected);
    assert.deepEqual(
      {
        lastClock: state.lastClock,
        lastEventClock: state.lastEventClock,
        lastQueryClock: state.lastQueryClock,
      },
      out.workload.clocks(),
    );
    assert.equal(state.records, out.records);
    assert.equal(state.bytes, out.bytes);
    assert.equal(state.warnings.length, 0);
    // Line for line what the record stream says.
    let text = "";
    for (const r of eventsToRecords(new Workload(OPTS).events())) {
      text += r.type === "alive"
        ? `alive: ${r.name} ${r.addr}\n`
        : r.type === "not-alive"
        ? `not-alive: ${r.name}\n`
        : `${r.type}: ${(r as { value: bigint }).value}\n`;
    }
    assert.equal(await Deno.readTextFile(path), text);
  });
});
