/**
 * Differential test of `Snapshotter.handleEvent` (and `leave()`) against the REAL serf v0.9.4
 * Snapshotter: the same seeded random event scripts go through serf (the Go harness's `append`
 * subcommand, see ./README.md "Events file") and through snaplog's go-text Snapshotter, and the
 * two snapshots must agree. Skipped, with a message, when Go or serf's sources are not installed.
 *
 *   deno test -A bench/go/serf_events_test.ts
 *   SNAPLOG_SEED=123 SNAPLOG_FUZZ_ITERATIONS=500 deno test -A bench/go/serf_events_test.ts
 *
 * Per script (a seed, a rejoinAfterLeave mode, maybe a `self-leave` or two, maybe a restart that
 * closes both writers halfway and reopens them on the same file), it asserts:
 *
 * (a) serf's replay of serf's file equals snaplog's `replaySnapshot` of snaplog's file, in both
 *     rejoinAfterLeave modes: the alive nodes with their addresses and the three clocks (and
 *     snaplog's replay of serf's file gives the same);
 * (b) serf's replay of snaplog's file gives that same state too, and logs exactly what it logs
 *     for its own file (only "Ignoring previous leave" lines, in rejoin mode);
 * (c) per session (the bytes each writer appended between an open and its close), with `clock:`
 *     lines removed the two files hold the same lines byte for byte in the same order; the clock
 *     lines are where they may differ, since each side coalesces them (serf writes Time()-1 after
 *     each member event it processes, which may run behind the producer, plus its 500 ms ticker;
 *     snaplog writes the newest value once per flush). What is asserted about them, in each
 *     file: their values strictly increase within the session; each value is at least the
 *     session's base clock plus the number of member lines (`alive:`/`not-alive:`) before it, so
 *     no clock line precedes the member events it counts; and the last one equals the base plus
 *     the session's member events in both files (no clock line at all when there were none).
 *     The base is the clock the writer replayed on open (0 for a fresh file), checked equal on
 *     both sides; the writer's LamportClock starts at base + 1 (serf.Create's Increment then
 *     Witness) and is incremented before every member event, as the harness does.
 * Plus, at each reopen, the state snaplog's writer replayed equals the one serf's replayed.
 */

import assert from "node:assert/strict";
import { replaySnapshot, Snapshotter } from "../../mod.ts";
import { fuzzIterations, Rng, testSeed } from "../../test/_rng.ts";
import { buildSerfHarness, goAvailable, serfAppend, type SerfNode, serfReplay } from "./serf_go.ts";

const avail = await goAvailable();
if (!avail.ok) {
  console.log(`SKIPPING serf event differential tests: ${avail.reason}`);
}
const skip = !avail.ok;

/** One line of the harness's events file, with the same meaning for snaplog. */
type ScriptEvent =
  | { kind: "join"; name: string; addr: string }
  | { kind: "leave" | "failed"; name: string }
  | { kind: "user" | "query"; ltime: bigint }
  | { kind: "self-leave" };

interface Script {
  events: ScriptEvent[];
  rejoinAfterLeave: boolean;
  /** Index where both writers are closed and reopened, or null for one session. */
  restartAt: number | null;
}

const NAMES = ["node-0", "node-1", "node-2", "node-3", "node-4", "node-5", "nöde-6", "节点-7"];
const U64_MAX = (1n << 64n) - 1n;

/** An address exactly as Go's net.TCPAddr.String() writes it (canonical IPv4 / bracketed IPv6). */
function randomAddr(rng: Rng): string {
  const port = rng.int(5) === 0 ? rng.int(65536) : 7946;
  if (rng.int(6) === 0) return `[fd00::${(1 + rng.int(0xffff)).toString(16)}]:${port}`;
  return `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}:${port}`;
}

/** A Lamport time that is sometimes stale, sometimes equal to the newest one, mostly newer. */
function randomLtime(rng: Rng, newest: bigint): bigint {
  const r = rng.int(20);
  if (r === 0) return 0n;
  if (r === 1) return U64_MAX - BigInt(rng.int(3)); // the top of uint64
  if (r < 5) {
    const stale = newest - BigInt(1 + rng.int(3));
    return stale >= 0n ? stale : 0n;
  }
  if (r < 8) return newest;
  const newer = newest + BigInt(1 + rng.int(3));
  return newer <= U64_MAX ? newer : U64_MAX;
}

function randomScript(rng: Rng, index: number): Script {
  const count = 20 + rng.int(181);
  const events: ScriptEvent[] = [];
  let user = BigInt(rng.int(5));
  let query = BigInt(rng.int(5));
  for (let i = 0; i < count; i++) {
    const r = rng.int(100);
    const name = rng.pick(NAMES);
    if (r < 40) events.push({ kind: "join", name, addr: randomAddr(rng) });
    else if (r < 55) events.push({ kind: "leave", name });
    else if (r < 70) events.push({ kind: "failed", name });
    else if (r < 85) {
      const ltime = randomLtime(rng, user);
      if (ltime > user) user = ltime;
      events.push({ kind: "user", ltime });
    } else {
      const ltime = randomLtime(rng, query);
      if (ltime > query) query = ltime;
      events.push({ kind: "query", ltime });
    }
  }
  // Half the scripts leave, a few of those twice (serf writes a `leave` line per Leave()).
  const leaves = rng.int(2) === 0 ? 0 : rng.int(5) === 0 ? 2 : 1;
  for (let i = 0; i < leaves; i++) events.splice(rng.int(events.length + 1), 0, { kind: "self-leave" });
  return {
    events,
    rejoinAfterLeave: index % 2 === 1,
    restartAt: (index >> 1) % 2 === 1 ? rng.int(events.length + 1) : null,
  };
}

function eventLine(e: ScriptEvent): string {
  switch (e.kind) {
    case "join":
      return `join ${e.name} ${e.addr}`;
    case "leave":
    case "failed":
      return `${e.kind} ${e.name}`;
    case "user":
    case "query":
      return `${e.kind} ${e.ltime}`;
    case "self-leave":
      return "self-leave";
  }
}

function isMember(e: ScriptEvent): boolean {
  return e.kind === "join" || e.kind === "leave" || e.kind === "failed";
}

/** Replayed state in a comparable form: alive nodes sorted byte-wise, clocks as decimal strings. */
interface State {
  aliveNodes: SerfNode[];
  clocks: [string, string, string];
}

/** Sorts as Go's byte-wise string comparison does (serf's replay output is sorted so). */
function byteOrder(a: SerfNode, b: SerfNode): number {
  const x = new TextEncoder().encode(a.name);
  const y = new TextEncoder().encode(b.name);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

async function snaplogState(path: string, rejoinAfterLeave: boolean): Promise<State> {
  const s = await replaySnapshot(path, { format: "go-text", rejoinAfterLeave });
  assert.deepEqual(s.warnings.filter((w) => w.reason !== "Ignoring previous leave in snapshot"), []);
  return {
    aliveNodes: s.aliveNodes.map((n) => ({ name: n.name, addr: n.addr })).sort(byteOrder),
    clocks: [String(s.lastClock), String(s.lastEventClock), String(s.lastQueryClock)],
  };
}

async function serfState(
  bin: string,
  path: string,
  rejoinAfterLeave: boolean,
): Promise<{ state: State; log: string[] }> {
  const r = await serfReplay(bin, path, { nodes: true, rejoinAfterLeave });
  return {
    state: { aliveNodes: r.aliveNodes ?? [], clocks: [r.lastClock, r.lastEventClock, r.lastQueryClock] },
    log: r.serfLog,
  };
}

/** The newline-terminated lines of `bytes[from..to)`. */
async function sessionLines(path: string, from: number, to: number): Promise<string[]> {
  const bytes = (await Deno.readFile(path)).subarray(from, to);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  assert.ok(text === "" || text.endsWith("\n"), `${path}: session ends with a newline`);
  return text === "" ? [] : text.slice(0, -1).split("\n");
}

/** Checks (c)'s clock rules on one file's session lines; returns the clock values. */
function checkClockLines(what: string, lines: string[], base: bigint, memberEvents: number): bigint[] {
  const values: bigint[] = [];
  let memberLines = 0n;
  for (const line of lines) {
    if (line.startsWith("alive: ") || line.startsWith("not-alive: ")) memberLines++;
    if (!line.startsWith("clock: ")) continue;
    const v = BigInt(line.slice("clock: ".length));
    assert.ok(values.length === 0 || v > values.at(-1)!, `${what}: clock ${v} after ${values.at(-1)}`);
    assert.ok(
      v >= base + memberLines,
      `${what}: clock ${v} before member line ${memberLines} (base ${base})`,
    );
    values.push(v);
  }
  if (memberEvents === 0) assert.deepEqual(values, [], `${what}: clock lines without member events`);
  else assert.equal(values.at(-1), base + BigInt(memberEvents), `${what}: last clock line`);
  return values;
}

/** Runs one script through both writers and checks (a), (b) and (c); returns the clock lines written by serf and by snaplog. */
async function runScript(bin: string, dir: string, script: Script, what: string): Promise<[number, number]> {
  const { events, rejoinAfterLeave, restartAt } = script;
  const sessions = restartAt === null ? [events] : [events.slice(0, restartAt), events.slice(restartAt)];
  const serfPath = `${dir}/serf.snapshot`;
  const ourPath = `${dir}/snaplog.snapshot`;
  const eventsPath = `${dir}/events.txt`;
  await Deno.remove(serfPath).catch(() => {});
  await Deno.remove(ourPath).catch(() => {});
  let serfOffset = 0;
  let ourOffset = 0;
  const clockLines: [number, number] = [0, 0];
  for (const [s, session] of sessions.entries()) {
    const here = `${what}, session ${s + 1}/${sessions.length}`;
    // serf: one `append` run (a fresh process: a restarted agent) on the same file.
    await Deno.writeTextFile(eventsPath, session.map((e) => eventLine(e) + "\n").join(""));
    const r = await serfAppend(bin, eventsPath, serfPath, { rejoinAfterLeave, keep: s > 0 });
    assert.equal(r.dropped, 0, here);
    assert.equal(r.compacted, false, here);
    assert.equal(r.initialBytes, serfOffset, here);

    // snaplog: open, mirror the harness's LamportClock, handle the same events, close.
    let clock = 0n;
    const snap = await Snapshotter.open(ourPath, {
      format: "go-text",
      rejoinAfterLeave,
      lamportClock: () => clock,
      minCompactSizeBytes: Number.MAX_SAFE_INTEGER,
      sync: "never",
    });
    // serf.Create: Increment() (0 -> 1), then Witness(replayed clock): Time() = replayed + 1.
    clock = snap.lastClock + 1n;
    assert.equal(String(snap.lastClock), r.initialLastClock, `${here}: replayed clock on open`);
    if (s > 0) {
      const serfOpen = await serfState(bin, `${dir}/serf.session-start`, rejoinAfterLeave);
      assert.deepEqual(
        {
          aliveNodes: snap.aliveNodes().map((n) => ({ name: n.name, addr: n.addr })).sort(byteOrder),
          clocks: [snap.lastClock, snap.lastEventClock, snap.lastQueryClock].map(String),
        },
        serfOpen.state,
        `${here}: state replayed on reopen`,
      );
    }
    const base = snap.lastClock;
    for (const e of session) {
      switch (e.kind) {
        case "join":
          clock++;
          await snap.handleEvent({ type: "member-join", members: [{ name: e.name, addr: e.addr }] });
          break;
        case "leave":
        case "failed":
          clock++;
          await snap.handleEvent({
            type: e.kind === "leave" ? "member-leave" : "member-failed",
            members: [{ name: e.name }],
          });
          break;
        case "user":
        case "query":
          await snap.handleEvent({ type: e.kind, ltime: e.ltime });
          break;
        case "self-leave":
          await snap.leave();
          break;
      }
    }
    await snap.close();

    // (c) on this session's bytes.
    const serfEnd = (await Deno.stat(serfPath)).size;
    const ourEnd = (await Deno.stat(ourPath)).size;
    assert.equal(serfEnd, r.fileBytes, here);
    const serfLines = await sessionLines(serfPath, serfOffset, serfEnd);
    const ourLines = await sessionLines(ourPath, ourOffset, ourEnd);
    const notClock = (l: string): boolean => !l.startsWith("clock: ");
    assert.deepEqual(ourLines.filter(notClock), serfLines.filter(notClock), `${here}: non-clock lines`);
    const members = session.filter(isMember).length;
    const serfClocks = checkClockLines(`${here}, serf`, serfLines, base, members);
    const ourClocks = checkClockLines(`${here}, snaplog`, ourLines, base, members);
    clockLines[0] += serfClocks.length;
    clockLines[1] += ourClocks.length;
    serfOffset = serfEnd;
    ourOffset = ourEnd;
    // What the next session's serf will replay (a copy: the harness's replay opens it read-write).
    if (s + 1 < sessions.length) await Deno.copyFile(serfPath, `${dir}/serf.session-start`);
  }

  // (a) and (b), in both modes whatever mode the writers ran in.
  for (const mode of [false, true]) {
    const here = `${what}, replayed with rejoinAfterLeave ${mode}`;
    const serfOwn = await serfState(bin, serfPath, mode);
    const serfOurs = await serfState(bin, ourPath, mode);
    assert.deepEqual(await snaplogState(ourPath, mode), serfOwn.state, `${here}: (a) snaplog's file`);
    assert.deepEqual(
      await snaplogState(serfPath, mode),
      serfOwn.state,
      `${here}: (a) serf's file, by snaplog`,
    );
    assert.deepEqual(serfOurs.state, serfOwn.state, `${here}: (b) snaplog's file, by serf`);
    assert.deepEqual(serfOurs.log, serfOwn.log, `${here}: (b) serf's log`);
    assert.ok(
      serfOwn.log.every((l) => mode && l === "[INFO] serf: Ignoring previous leave in snapshot"),
      here,
    );
  }
  return clockLines;
}

Deno.test({
  name: "handleEvent and leave() write what the real serf Snapshotter writes for the same random events",
  ignore: skip,
  async fn(): Promise<void> {
    const bin = await buildSerfHarness();
    const dir = await Deno.makeTempDir({ prefix: "snaplog-serf-events-" });
    try {
      const seed = testSeed("serf vs snaplog on random event scripts");
      const iterations = fuzzIterations(40);
      let serfClockLines = 0;
      let ourClockLines = 0;
      let leaving = 0;
      let restarted = 0;
      for (let i = 0; i < iterations; i++) {
        const scriptSeed = (seed + i) >>> 0;
        const script = randomScript(new Rng(scriptSeed), i);
        const what =
          `script ${i} (seed ${scriptSeed}, SNAPLOG_SEED=${seed}; rejoinAfterLeave ${script.rejoinAfterLeave}, ` +
          `restart ${script.restartAt ?? "none"}, ${script.events.length} events)`;
        const [a, b] = await runScript(bin, dir, script, what);
        serfClockLines += a;
        ourClockLines += b;
        if (script.events.some((e) => e.kind === "self-leave")) leaving++;
        if (script.restartAt !== null) restarted++;
      }
      console.log(
        `${iterations} scripts agree (${leaving} with a self-leave, ${restarted} restarted); ` +
          `clock lines: serf ${serfClockLines}, snaplog ${ourClockLines}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
