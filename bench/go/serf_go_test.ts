/**
 * Tests for the Go serf harness: serf's real replay of every fixture in
 * ../shared/fixtures/serf-go/ (relative to the repo root) must match its
 * .expected.json, and a small paced append must lose nothing.
 * Skipped, with a message, when Go or serf's sources are not installed.
 *
 *   deno test -A bench/go/serf_go_test.ts
 */

import assert from "node:assert/strict";
import { goIsPrint } from "../../src/serf/_go_quote.ts";
import {
  buildSerfHarness,
  goAvailable,
  serfAppend,
  serfCompact,
  type SerfNode,
  serfReplay,
  type SerfReplayResult,
} from "./serf_go.ts";

const repoRoot = new URL("../../", import.meta.url);
const fixturesUrl = new URL("../shared/fixtures/serf-go/", repoRoot);
const fixturesDir = decodeURIComponent(fixturesUrl.pathname);

const avail = await goAvailable();
if (!avail.ok) {
  console.log(`SKIPPING serf Go harness tests: ${avail.reason}`);
}
const skip = !avail.ok;

let binPromise: Promise<string> | undefined;
function harness(): Promise<string> {
  binPromise ??= buildSerfHarness();
  return binPromise;
}

/** A test that needs the harness binary and a temporary directory (removed afterwards); skipped without Go. */
function serfTest(name: string, fn: (bin: string, dir: string) => Promise<void>): void {
  Deno.test({
    name,
    ignore: skip,
    async fn(): Promise<void> {
      const bin = await harness();
      const dir = await Deno.makeTempDir({ prefix: "snaplog-serf-" });
      try {
        await fn(bin, dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** Expected replay outcome for one rejoinAfterLeave mode (see the fixtures README). */
interface ExpectedMode {
  alive_nodes: SerfNode[];
  alive_count: number;
  last_clock_str: string;
  last_event_clock_str: string;
  last_query_clock_str: string;
  serf_log: string[];
}

interface ExpectedFixture extends ExpectedMode {
  file_bytes: number;
  newline_terminated_lines?: number;
  rejoin_after_leave_true: ExpectedMode;
}

async function listFixtures(): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(fixturesDir)) {
      if (e.isFile && e.name.endsWith(".snapshot")) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort();
}

const fixtures = skip ? [] : await listFixtures();
if (!skip && fixtures.length === 0) {
  console.log(`SKIPPING serf fixture replay tests: no *.snapshot files in ${fixturesDir}`);
}

function checkMode(label: string, got: SerfReplayResult, want: ExpectedMode): void {
  assert.deepEqual(got.aliveNodes, want.alive_nodes, `${label}: alive nodes`);
  assert.equal(got.aliveCount, want.alive_count, `${label}: alive count`);
  assert.equal(got.lastClock, want.last_clock_str, `${label}: clock`);
  assert.equal(got.lastEventClock, want.last_event_clock_str, `${label}: event clock`);
  assert.equal(got.lastQueryClock, want.last_query_clock_str, `${label}: query clock`);
  assert.deepEqual(got.serfLog, want.serf_log, `${label}: serf log`);
}

for (const name of fixtures) {
  Deno.test({
    name: `serf replay matches ${name} (both rejoinAfterLeave modes)`,
    ignore: skip,
    async fn(): Promise<void> {
      const bin = await harness();
      const expectedPath = `${fixturesDir}${name.replace(/\.snapshot$/, ".expected.json")}`;
      const expected = JSON.parse(await Deno.readTextFile(expectedPath)) as ExpectedFixture;
      // Replay a private copy: serf opens the file read-write.
      const dir = await Deno.makeTempDir({ prefix: "snaplog-serf-fixture-" });
      try {
        const copy = `${dir}/${name}`;
        await Deno.copyFile(`${fixturesDir}${name}`, copy);
        const before = await Deno.readFile(copy);

        const plain = await serfReplay(bin, copy, { nodes: true });
        assert.equal(plain.fileBytes, expected.file_bytes, "file bytes");
        if (expected.newline_terminated_lines !== undefined) {
          assert.equal(plain.lines, expected.newline_terminated_lines, "lines");
        }
        checkMode(`${name} rejoinAfterLeave=false`, plain, expected);

        const rejoin = await serfReplay(bin, copy, { nodes: true, rejoinAfterLeave: true });
        assert.equal(rejoin.rejoinAfterLeave, true);
        checkMode(`${name} rejoinAfterLeave=true`, rejoin, expected.rejoin_after_leave_true);

        assert.deepEqual(await Deno.readFile(copy), before, "replay must not modify the file");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** A small deterministic churn workload in the events-file format. */
function churnEvents(count: number, nodes: number, seed: number): string {
  let s = seed >>> 0;
  const rnd = (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
  const alive = new Array<boolean>(nodes).fill(false);
  const addr = (): string =>
    rnd(8) === 0
      ? `[fd00::${rnd(65536).toString(16)}]:${7946 + rnd(3)}`
      : `10.${rnd(256)}.${rnd(256)}.${1 + rnd(254)}:${rnd(5) === 0 ? 1024 + rnd(60000) : 7946}`;
  const lines: string[] = [];
  let userLt = 0;
  let queryLt = 0;
  for (let i = 0; i < count; i++) {
    const p = rnd(100);
    if (p < 5) {
      userLt += 1 + rnd(2);
      lines.push(`user ${rnd(5) === 0 ? Math.max(0, userLt - 2) : userLt}`); // some stale LTimes
    } else if (p < 8) {
      queryLt += 1 + rnd(2);
      lines.push(`query ${queryLt}`);
    } else {
      const n = rnd(nodes);
      if (alive[n]) {
        lines.push(`${rnd(2) === 0 ? "leave" : "failed"} node-${n}`);
        alive[n] = false;
      } else {
        lines.push(`join node-${n} ${addr()}`);
        alive[n] = true;
      }
    }
  }
  return lines.join("\n") + "\n";
}

serfTest("serf append of a small churn workload loses no event", async (bin, dir) => {
  const events = `${dir}/events.txt`;
  await Deno.writeTextFile(events, churnEvents(600, 40, 42));
  const r = await serfAppend(bin, events, `${dir}/serf.snapshot`);
  assert.equal(r.events, 600);
  assert.equal(r.dropped, 0);
  assert.equal(r.lines, r.expectedLines);
  assert.equal(r.dataLines, r.expectedDataLines);
  assert.equal(r.linesByKind.alive, r.expectedByKind.alive);
  assert.equal(r.linesByKind.notAlive, r.expectedByKind.notAlive);
  assert.equal(r.linesByKind.eventClock, r.expectedByKind.eventClock);
  assert.equal(r.linesByKind.queryClock, r.expectedByKind.queryClock);
  assert.equal(r.lastClockLine, r.expectedLastClock);
  assert.equal(r.expectedLastClock, String(r.memberEvents));
  assert.ok(r.maxInFlight <= r.streamCap);
  assert.equal(r.compacted, false);
  assert.equal(r.stateVerified, true);
  assert.equal((await Deno.stat(`${dir}/serf.snapshot`)).size, r.fileBytes);

  // serf's own replay agrees with the harness's verification.
  const rep = await serfReplay(bin, `${dir}/serf.snapshot`, { nodes: true });
  assert.equal(rep.aliveCount, r.aliveAfter);
  assert.equal(rep.lastClock, r.expectedLastClock);
  assert.equal(rep.lines, r.lines);
  assert.deepEqual(rep.serfLog, []);
});

serfTest("serf append with a small minCompactSize compacts and keeps the state", async (bin, dir) => {
  const events = `${dir}/events.txt`;
  await Deno.writeTextFile(events, churnEvents(800, 30, 7));
  const r = await serfAppend(bin, events, `${dir}/serf.snapshot`, { minCompactSizeBytes: 2048 });
  assert.equal(r.compacted, true);
  assert.equal(r.stateVerified, true);
  assert.equal(r.expectedLines, null);
  assert.equal(r.minCompactSize, "2048");
});

serfTest("serf harness rejects malformed events and times compaction", async (bin, dir) => {
  const events = `${dir}/bad.txt`;
  await Deno.writeTextFile(events, "join a 10.0.0.1:7946\nupdate a\n");
  await assert.rejects(serfAppend(bin, events, `${dir}/x.snapshot`), /unknown event/);
  await Deno.writeTextFile(events, "join a fe80::1:7946\n");
  await assert.rejects(serfAppend(bin, events, `${dir}/x.snapshot`), /failed/);
  const c = await serfCompact(bin, 500, { runs: 2 });
  assert.equal(c.aliveNodes, 500);
  assert.equal(c.runsMs.length, 2);
  assert.ok(c.fileBytes > 0 && c.fileBytes < c.sourceBytes);
});

serfTest(
  "serf replays a go-text snapshot written by snaplog's Snapshotter to the same state",
  async (bin, dir) => {
    const { Snapshotter, replaySnapshot } = await import("../../mod.ts");
    const path = `${dir}/snaplog.snapshot`;
    let lamport = 1n;
    const snap = await Snapshotter.open(path, { format: "go-text", lamportClock: () => lamport });
    for (let i = 0; i < 300; i++) {
      lamport++;
      const name = `node-${i % 40}`;
      if (i % 3 === 2) await snap.handleEvent({ type: "member-failed", members: [{ name }] });
      else {
        await snap.handleEvent({
          type: "member-join",
          members: [{ name, addr: i % 7 === 0 ? `[fd00::${i}]:7946` : `10.0.${i % 256}.1:7946` }],
        });
      }
      if (i % 11 === 0) await snap.handleEvent({ type: "user", ltime: BigInt(i) });
      if (i % 13 === 0) await snap.handleEvent({ type: "query", ltime: BigInt(i) });
    }
    await snap.compact(); // serf must read snaplog's compacted form too
    await snap.handleEvent({ type: "member-join", members: [{ name: "late", addr: "10.9.9.9:7946" }] });
    await snap.close();
    const ours = await replaySnapshot(path);
    const serf = await serfReplay(bin, path, { nodes: true });
    assert.deepEqual(serf.aliveNodes, ours.aliveNodes);
    assert.equal(serf.lastClock, String(ours.lastClock));
    assert.equal(serf.lastEventClock, String(ours.lastEventClock));
    assert.equal(serf.lastQueryClock, String(ours.lastQueryClock));
    assert.equal(serf.serfLogCount, 0, `serf logged: ${JSON.stringify(serf.serfLog)}`);
  },
);

serfTest(
  "snaplog shows names, addresses and skipped lines that are not UTF-8 as serf's JSON and log do",
  async (bin, dir) => {
    const { replaySnapshot } = await import("../../mod.ts");
    const { Rng, testSeed } = await import("../../test/_rng.ts");
    const { UTF8_EDGE_BYTES } = await import("../../test/_soup.ts");
    const rng = new Rng(testSeed("serf vs snaplog on bytes that are not UTF-8"));
    const junk = (n: number): number[] => Array.from({ length: n }, () => rng.pick(UTF8_EDGE_BYTES));
    const lines: number[][] = [];
    for (let i = 0; i < 400; i++) {
      const name = [...new TextEncoder().encode(`n${i % 60}-`), ...junk(rng.int(6))];
      const addr = [...new TextEncoder().encode("10.0.0.1:"), ...junk(rng.int(3))];
      const kind = rng.int(10);
      if (kind < 6) lines.push([...new TextEncoder().encode("alive: "), ...name, 0x20, ...addr, 0x0a]);
      else if (kind < 8) lines.push([...new TextEncoder().encode("not-alive: "), ...name, 0x0a]);
      else if (kind < 9) lines.push([...new TextEncoder().encode("alive: "), ...name, 0x0a]); // no address
      else lines.push([...junk(1 + rng.int(8)), 0x0a]); // an unrecognized line
    }
    const path = `${dir}/bytes.snapshot`;
    await Deno.writeFile(path, new Uint8Array(lines.flat()));
    const ours = await replaySnapshot(path, { format: "go-text" });
    const serf = await serfReplay(bin, path, { nodes: true });
    assert.deepEqual(ours.aliveNodes, serf.aliveNodes);
    assert.deepEqual(ours.warnings.map((w) => `[WARN] serf: ${w.reason}`), serf.serfLog);
  },
);

serfTest(
  "snaplog replays random line soups exactly as the real serf does, and converts them losslessly for serf",
  async (bin, dir) => {
    const { convertSnapshot, replaySnapshot } = await import("../../mod.ts");
    const { fuzzIterations, Rng, testSeed } = await import("../../test/_rng.ts");
    const { randomSoup } = await import("../../test/_soup.ts");
    const rng = new Rng(testSeed("serf vs snaplog on line soups"));
    const r = (): number => rng.next();
    const iterations = fuzzIterations(40);
    for (let i = 0; i < iterations; i++) {
      const path = `${dir}/soup-${i}.snapshot`;
      await Deno.writeFile(path, randomSoup(r));
      for (const rejoinAfterLeave of [false, true]) {
        const what = `soup ${i}, rejoinAfterLeave ${rejoinAfterLeave}`;
        const ours = await replaySnapshot(path, { format: "go-text", rejoinAfterLeave });
        const serf = await serfReplay(bin, path, { nodes: true, rejoinAfterLeave });
        assert.deepEqual(ours.aliveNodes, serf.aliveNodes, what);
        assert.deepEqual(
          [ours.lastClock, ours.lastEventClock, ours.lastQueryClock].map(String),
          [serf.lastClock, serf.lastEventClock, serf.lastQueryClock],
          what,
        );
        const log = ours.warnings.map((w) =>
          w.reason === "Ignoring previous leave in snapshot"
            ? `[INFO] serf: ${w.reason}`
            : `[WARN] serf: ${w.reason}`
        );
        assert.deepEqual(log, serf.serfLog, what);
      }
      // Converted to binary and back to serf's text, it is the same snapshot to serf.
      await convertSnapshot(path, `${path}.bin`, { to: "binary" });
      await convertSnapshot(`${path}.bin`, `${path}.txt`, { to: "go-text" });
      const state = (
        x: SerfReplayResult,
      ): unknown[] => [x.aliveNodes, x.lastClock, x.lastEventClock, x.lastQueryClock];
      for (const rejoinAfterLeave of [false, true]) {
        const source = await serfReplay(bin, path, { nodes: true, rejoinAfterLeave });
        const converted = await serfReplay(bin, `${path}.txt`, { nodes: true, rejoinAfterLeave });
        assert.deepEqual(
          state(converted),
          state(source),
          `soup ${i} converted, rejoinAfterLeave ${rejoinAfterLeave}`,
        );
        // And the binary file between them replays, in snaplog, to what serf reads from the text.
        const binary = await replaySnapshot(`${path}.bin`, { rejoinAfterLeave });
        assert.deepEqual(
          [
            binary.aliveNodes,
            ...[binary.lastClock, binary.lastEventClock, binary.lastQueryClock].map(String),
          ],
          state(source),
          `soup ${i} as binary, rejoinAfterLeave ${rejoinAfterLeave}`,
        );
      }
    }
  },
);

Deno.test({
  name: "goIsPrint matches Go's strconv.IsPrint on every rune (how serf's log quotes a bad clock)",
  ignore: skip,
  async fn(): Promise<void> {
    const dir = await Deno.makeTempDir({ prefix: "snaplog-isprint-" });
    try {
      await Deno.writeTextFile(
        `${dir}/main.go`,
        `package main

import (
	"bufio"
	"os"
	"strconv"
)

func main() {
	w := bufio.NewWriter(os.Stdout)
	for r := rune(0); r <= 0x10ffff; r++ {
		if strconv.IsPrint(r) {
			w.WriteByte('1')
		} else {
			w.WriteByte('0')
		}
	}
	w.Flush()
}
`,
      );
      const out = await new Deno.Command("go", {
        args: ["run", "main.go"],
        cwd: dir,
        env: { GO111MODULE: "off" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const bits = out.stdout;
      assert.equal(bits.length, 0x110000);
      const wrong: string[] = [];
      for (let r = 0; r < bits.length; r++) {
        if ((bits[r] === 0x31) !== goIsPrint(r) && wrong.length < 5) wrong.push(r.toString(16));
      }
      assert.deepEqual(wrong, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
