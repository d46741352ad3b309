// The CLI contract: `replay --json` against what the real serf v0.9.4 recovered from every
// fixture (in-process through `main`, and through `deno task cli` in a subprocess), plus the
// exit codes and the one-line errors.
import assert from "node:assert/strict";
import { type CliIo, main } from "../src/cli/main.ts";
import { replaySnapshot, Snapshotter } from "../mod.ts";
import { fixtureNames, fixturePath, FIXTURES } from "./_fixtures.ts";
import { asVersion1, withTempDir } from "./_tmp.ts";

const REPO = new URL("../", import.meta.url);

/** What serf recovered (a `*.expected.json` top level, or its `rejoin_after_leave_true`). */
interface SerfResult {
  alive_nodes: { name: string; addr: string }[];
  last_clock_str: string;
  last_event_clock_str: string;
  last_query_clock_str: string;
  serf_log: string[];
}

interface Expected extends SerfResult {
  file_bytes: number;
  newline_terminated_lines: number;
  bytes_after_last_newline: number;
  rejoin_after_leave_true: SerfResult;
}

/** The `replay --json` object. */
interface ReplayJson {
  format: string;
  aliveNodes: { name: string; addr: string }[];
  lastClock: string;
  lastEventClock: string;
  lastQueryClock: string;
  records: number;
  bytes: number;
  warnings: { line: number; reason: string }[];
  tornTailBytes: number;
  replayMs: number;
}

// Every fixture in the folder, not a fixed list: more may be added.
const fixtures: string[] = fixtureNames();

function expectedFor(name: string): Expected {
  return JSON.parse(Deno.readTextFileSync(new URL(name.replace(/\.snapshot$/, ".expected.json"), FIXTURES)));
}

/** Runs `main` in-process and captures what it writes. */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => stdout += t, stderr: (t) => stderr += t };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** Runs `deno task cli ...` in a subprocess, from the repository root. */
async function runTask(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "cli", ...args],
    cwd: REPO,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Serf logs each skipped line as `[WARN] serf: <reason>` and an ignored leave as INFO. */
function asSerfLog(warnings: { reason: string }[]): string[] {
  return warnings.map((w) =>
    w.reason === "Ignoring previous leave in snapshot"
      ? `[INFO] serf: ${w.reason}`
      : `[WARN] serf: ${w.reason}`
  );
}

function assertMatchesSerf(got: ReplayJson, want: SerfResult, what: string): void {
  assert.deepEqual(got.aliveNodes, want.alive_nodes, `${what}: alive nodes`);
  assert.equal(got.lastClock, want.last_clock_str, `${what}: lastClock`);
  assert.equal(got.lastEventClock, want.last_event_clock_str, `${what}: lastEventClock`);
  assert.equal(got.lastQueryClock, want.last_query_clock_str, `${what}: lastQueryClock`);
  const warns = want.serf_log.filter((l) => l.startsWith("[WARN]")).length;
  assert.equal(
    got.warnings.filter((w) => w.reason !== "Ignoring previous leave in snapshot").length,
    warns,
    `${what}: warnings vs serf's WARN lines`,
  );
  assert.deepEqual(asSerfLog(got.warnings), want.serf_log, `${what}: warnings in serf's wording`);
}

Deno.test("cli test finds the fixtures", () => {
  assert.ok(fixtures.length >= 14, `found only ${fixtures.length} fixtures in ${FIXTURES.pathname}`);
});

for (const name of fixtures) {
  Deno.test(`main replay --json matches serf on ${name}`, async () => {
    const want = expectedFor(name);
    const path = fixturePath(name);
    for (const rejoin of [false, true]) {
      const args = ["replay", ...(rejoin ? ["--rejoin-after-leave"] : []), "--json", path];
      const r = await run(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.ok(
        r.stdout.endsWith("\n") && r.stdout.indexOf("\n") === r.stdout.length - 1,
        "one line of JSON",
      );
      const got = JSON.parse(r.stdout) as ReplayJson;
      assertMatchesSerf(got, rejoin ? want.rejoin_after_leave_true : want, `${name} rejoin=${rejoin}`);
      assert.equal(got.format, "go-text"); // an empty file too: a snaplog binary file always has a header
      assert.equal(got.bytes, want.file_bytes);
      assert.equal(got.records, want.newline_terminated_lines);
      assert.equal(got.tornTailBytes, want.bytes_after_last_newline);
      assert.equal(typeof got.replayMs, "number");
      assert.ok(got.replayMs >= 0);
      assert.deepEqual(
        Object.keys(got).sort(),
        [
          "aliveNodes",
          "bytes",
          "format",
          "lastClock",
          "lastEventClock",
          "lastQueryClock",
          "records",
          "replayMs",
          "tornTailBytes",
          "warnings",
        ],
      );
    }
  });
}

Deno.test("deno task cli replay --json pins the task contract on every fixture", async () => {
  // Subprocesses in parallel: one per fixture and leave mode.
  const jobs = fixtures.flatMap((name) =>
    [false, true].map(async (rejoin) => {
      const r = await runTask([
        "replay",
        ...(rejoin ? ["--rejoin-after-leave"] : []),
        "--json",
        fixturePath(name),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const want = expectedFor(name);
      assertMatchesSerf(
        JSON.parse(r.stdout) as ReplayJson,
        rejoin ? want.rejoin_after_leave_true : want,
        `task ${name} rejoin=${rejoin}`,
      );
    })
  );
  await Promise.all(jobs);
});

Deno.test("main replay --format go-text agrees with auto-detection", async () => {
  const path = fixturePath("05-serf-leave-then-restart.snapshot");
  const a = JSON.parse((await run(["replay", "--json", path])).stdout) as ReplayJson;
  const b = JSON.parse((await run(["replay", "--json", "--format", "go-text", path])).stdout) as ReplayJson;
  assert.deepEqual({ ...a, replayMs: 0 }, { ...b, replayMs: 0 });
});

Deno.test("main replay prints a human summary without --json", async () => {
  const r = await run(["replay", fixturePath("05-serf-leave-then-restart.snapshot")]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /go-text, 13 records, 209 bytes/);
  assert.match(r.stdout, /clocks: member 5, event 1, query 0/);
  assert.match(r.stdout, /alive nodes: 2/);
});

Deno.test("main replay of a missing file exits 1 with one line on stderr", async () => {
  await withTempDir(async (dir) => {
    const r = await run(["replay", "--json", `${dir}/missing.snapshot`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /missing\.snapshot/);
  });
});

Deno.test("main exits 2 with usage on stderr for bad flags, values and commands", async () => {
  const path = fixturePath("01-serf-plain-joins.snapshot");
  for (
    const args of [
      ["replay", "--bogus", path],
      ["replay", "--format", "xml", path],
      ["replay", "--json"],
      ["replay", "--json", path, path],
      ["dump"],
      ["dump", "--recovery", "fix", path],
      ["convert", "--to", "binary", path],
      ["convert", path, "/tmp/out"],
      ["convert", "--to", "yaml", path, "/tmp/out"],
      ["convert", "--frobnicate", "--to", "binary", path, "/tmp/out"],
      ["frobnicate"],
      [],
    ]
  ) {
    const r = await run(args);
    assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /Usage: snaplog/);
  }
});

Deno.test("main --help prints usage on stdout and exits 0", async () => {
  for (
    const [args, re] of [
      [["--help"], /Commands:/],
      [["replay", "--help"], /--rejoin-after-leave/],
      [["convert", "-h"], /--to binary\|go-text/],
      [["dump", "-h"], /One JSON object per line/],
      [["help"], /Commands:/],
      [["help", "replay"], /--rejoin-after-leave/],
      [["help", "compact"], /Usage: snaplog compact/],
      [["help", "--help"], /Commands:/],
      [["help", "-h"], /Commands:/],
      [["help", "help"], /Commands:/],
    ] as const
  ) {
    const r = await run([...args]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, re);
    assert.equal(r.stderr, "");
  }
});

Deno.test("main help with a name that is no command is a usage error (exit 2)", async () => {
  for (const args of [["help", "extra"], ["help", "toString"], ["help", "replay", "dump"]]) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^snaplog: (unknown command "(extra|toString)"|help takes one command name, got 2)\n/,
    );
  }
});

Deno.test("deno task cli exits 1 for a missing file and 2 for a bad flag", async () => {
  await withTempDir(async (dir) => {
    const missing = await runTask(["replay", "--json", `${dir}/missing.snapshot`]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, "");
    // `deno task` echoes the command line to stderr first; ours is the one line after it.
    assert.equal(missing.stderr.split("\n").filter((l) => l.startsWith("snaplog")).length, 1, missing.stderr);
    const bad = await runTask(["replay", "--no-such-flag", `${dir}/missing.snapshot`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown option '--no-such-flag'/);
  });
});

Deno.test("main convert writes OUT, prints one summary line, and refuses OUT == IN", async () => {
  await withTempDir(async (dir) => {
    const src = fixturePath("02-serf-churn.snapshot");
    const r = await run(["convert", "--to", "binary", src, `${dir}/a.snap`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trimEnd().split("\n").length, 1);
    assert.match(r.stdout, /^converted .* \(go-text, .*\) to .*a\.snap \(binary, /);
    const a = JSON.parse((await run(["replay", "--json", src])).stdout) as ReplayJson;
    const b = JSON.parse((await run(["replay", "--json", `${dir}/a.snap`])).stdout) as ReplayJson;
    assert.equal(b.format, "binary");
    assert.deepEqual([b.aliveNodes, b.lastClock, b.lastEventClock, b.lastQueryClock], [
      a.aliveNodes,
      a.lastClock,
      a.lastEventClock,
      a.lastQueryClock,
    ]);

    const before = await Deno.readFile(`${dir}/a.snap`);
    // x must exist: the OS resolves x/.. only through a directory x (Deno without -A normalizes
    // the path first, so the test passed without it there and failed under -A).
    await Deno.mkdir(`${dir}/x`);
    const same = await run(["convert", "--to", "go-text", `${dir}/a.snap`, `${dir}/./x/../a.snap`]);
    assert.equal(same.code, 1);
    assert.equal(same.stdout, "");
    assert.equal(same.stderr.trimEnd().split("\n").length, 1);
    assert.match(same.stderr, /is the input file/);
    assert.deepEqual(await Deno.readFile(`${dir}/a.snap`), before);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.snap", "a.snap.lock", "x"]);
  });
});

Deno.test("deno task cli convert round-trips a fixture through both formats", async () => {
  await withTempDir(async (dir) => {
    const src = fixturePath("05-serf-leave-then-restart.snapshot");
    const toBin = await runTask(["convert", "--to", "binary", src, `${dir}/a.snap`]);
    assert.equal(toBin.code, 0, toBin.stderr);
    const toText = await runTask(["convert", "--to", "go-text", `${dir}/a.snap`, `${dir}/b.snapshot`]);
    assert.equal(toText.code, 0, toText.stderr);
    const want = expectedFor("05-serf-leave-then-restart.snapshot");
    for (const rejoin of [false, true]) {
      const r = await run([
        "replay",
        "--json",
        ...(rejoin ? ["--rejoin-after-leave"] : []),
        `${dir}/b.snapshot`,
      ]);
      const got = JSON.parse(r.stdout) as ReplayJson;
      const w = rejoin ? want.rejoin_after_leave_true : want;
      assert.deepEqual(got.aliveNodes, w.alive_nodes);
      assert.deepEqual([got.lastClock, got.lastEventClock, got.lastQueryClock], [
        w.last_clock_str,
        w.last_event_clock_str,
        w.last_query_clock_str,
      ]);
    }
  });
});

Deno.test("cli compact shrinks a churned snapshot offline, keeps its state, and refuses a locked file", async () => {
  await withTempDir(async (dir) => {
    for (const format of ["binary", "go-text"] as const) {
      const path = `${dir}/serf-${format}.snap`;
      const snap = await Snapshotter.open(path, { format, minCompactSizeBytes: 1 << 30 });
      for (let i = 0; i < 2000; i++) {
        snap.append({ type: "alive", name: `node-${i % 20}`, addr: `10.0.${i % 7}.1:7946` });
        if (i % 3 === 0) snap.append({ type: "not-alive", name: `node-${(i + 5) % 20}` });
      }
      snap.append({ type: "clock", value: 99n });
      await snap.close();
      const before = await replaySnapshot(path);
      const size = (await Deno.stat(path)).size;

      const r = await run(["compact", path]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(`${format}, ${size} -> \\d+ bytes, ${before.aliveNodes.length} alive nodes`),
      );
      const after = await replaySnapshot(path);
      assert.ok((await Deno.stat(path)).size < size / 10);
      assert.deepEqual(after.aliveNodes, before.aliveNodes);
      assert.equal(after.lastClock, 99n);

      const live = await Snapshotter.open(path);
      const locked = await run(["compact", path]);
      assert.equal(locked.code, 1);
      assert.match(locked.stderr, /locked/);
      await live.close();
    }
    assert.equal((await run(["compact"])).code, 2);
  });
});

Deno.test("cli compact --rejoin-after-leave keeps what an agent with RejoinAfterLeave replays, on every fixture", async () => {
  // Without the flag, compaction writes the state a leave clears, as serf's compaction in an
  // agent without RejoinAfterLeave does; the flag is how such an agent's file keeps its nodes.
  await withTempDir(async (dir) => {
    for (const name of fixtures) {
      const path = `${dir}/${name}`;
      await Deno.copyFile(fixturePath(name), path);
      await Deno.chmod(path, 0o644);
      const before = await replaySnapshot(path, { rejoinAfterLeave: true });
      const r = await run(["compact", "--rejoin-after-leave", path]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      const after = await replaySnapshot(path, { rejoinAfterLeave: true });
      assert.deepEqual(after.aliveNodes, before.aliveNodes, name);
      assert.deepEqual(
        [after.lastClock, after.lastEventClock, after.lastQueryClock],
        [before.lastClock, before.lastEventClock, before.lastQueryClock],
        name,
      );
    }
  });
});

Deno.test("main replay --json lists the first 10,000 warnings and counts the rest", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/garbage.snapshot`;
    await Deno.writeTextFile(path, "alive: a 10.0.0.1:7946\n" + "x\n".repeat(10_005));
    const { code, stdout } = await run(["replay", "--json", path]);
    assert.equal(code, 0);
    const got = JSON.parse(stdout);
    assert.equal(got.warnings.length, 10_000);
    assert.deepEqual(got.warnings.at(-1), { line: 10_001, reason: "Unrecognized snapshot line: x" });
    assert.equal(got.warningsOmitted, 5);
    assert.equal(got.records, 10_006);
    assert.deepEqual(got.aliveNodes, [{ name: "a", addr: "10.0.0.1:7946" }]);
  });
});

Deno.test("main: damage before the tail says how to get past it, and convert --recovery salvage does", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    const snap = await Snapshotter.open(path, { format: "binary" });
    for (let i = 0; i < 5; i++) snap.append({ type: "alive", name: `n${i}`, addr: `10.0.0.${i}:7946` });
    await snap.close();
    const bytes = await Deno.readFile(path);
    bytes[24 + 2 * 40 + 14]! ^= 0x01; // the third frame (40 bytes each): n2's name
    await Deno.writeFile(path, bytes);
    for (
      const args of [["replay", "--json", path], ["convert", "--to", "go-text", path, `${dir}/o.txt`], [
        "dump",
        path,
      ]]
    ) {
      const r = await run(args);
      assert.equal(r.code, 1, args.join(" "));
      assert.equal(r.stderr.split("\n").length, 2, "one line");
      assert.match(
        r.stderr,
        /checksum mismatch; valid records resume at offset \d+ \(--recovery salvage keeps/,
      );
    }
    const c = await run(["convert", "--to", "go-text", "--recovery", "salvage", path, `${dir}/o.txt`]);
    assert.equal(c.code, 0, c.stderr);
    const r = await run(["replay", "--json", `${dir}/o.txt`]);
    assert.deepEqual(JSON.parse(r.stdout).aliveNodes.map((n: { name: string }) => n.name), [
      "n0",
      "n1",
      "n3",
      "n4",
    ]);
    // Salvage itself gets no hint; a bad value is a usage error.
    assert.equal(
      (await run(["convert", "--to", "go-text", "--recovery", "fix", path, `${dir}/p.txt`])).code,
      2,
    );
  });
});

Deno.test("main dump lists a fixture's lines, skipped ones with serf's reason, as text and as JSON lines", async () => {
  for (const name of fixtures) {
    const path = fixturePath(name);
    const json = await run(["dump", "--json", path]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stderr, "");
    const lines = json.stdout.split("\n");
    assert.equal(lines.pop(), "", "ends in a newline");
    const entries = lines.map((l) => JSON.parse(l));
    const replay = JSON.parse((await run(["replay", "--json", path])).stdout) as ReplayJson;
    // Every line that ends in a newline is one entry; serf's skipped lines are its warnings.
    assert.equal(entries.filter((e) => !String(e.note).startsWith("last line")).length, replay.records, name);
    assert.deepEqual(
      entries.filter((e) => e.type === null && !e.note.startsWith("last line")).map((e) => ({
        line: e.line,
        reason: e.note,
      })),
      replay.warnings,
    );
    // The last alive line of each surviving node carries the address replay reports, clocks as strings.
    for (const n of replay.aliveNodes) {
      const last = entries.findLast((e) =>
        (e.type === "alive" || e.type === "not-alive") && e.name === n.name
      );
      assert.deepEqual(
        { type: last.type, addr: last.addr },
        { type: "alive", addr: n.addr },
        `${name}: ${n.name}`,
      );
    }
    for (const e of entries) if (e.type?.endsWith("clock")) assert.match(e.value, /^\d+$/);
    const text = await run(["dump", path]);
    assert.equal(text.code, 0);
    assert.equal(text.stdout.split("\n").length - 1, entries.length, "one text line per entry");
  }
});

Deno.test("main dump's text mode escapes the control bytes of a skipped line (--json keeps them exact)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    await Deno.writeTextFile(path, "alive: a 1\nbogus\x1b[2Jred\x07\rX\u2028\n");
    const r = await run(["dump", path]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout.split("\n")[1],
      "line 2 @11            (skipped)    Unrecognized snapshot line: bogus\\x1b[2Jred\\x07\\rX\\u2028",
    );
    // Names go through JSON.stringify, which leaves DEL, C1 (U+009B is an 8-bit CSI) and bidi
    // overrides raw: escaped too.
    await Deno.writeTextFile(path, "alive: a\u009b2J\u202e\u007f 1\nalive: b 2\n");
    assert.equal(
      (await run(["dump", path])).stdout.split("\n")[0],
      'line 1 @0             alive        "a\\x9b2J\\u202e\\x7f" "1"',
    );
    await Deno.writeTextFile(path, "alive: a 10.0.0.1:7946\nbogus\x1b[2Jred\x07\rX\u2028\n");
    const j = await run(["dump", "--json", path]);
    assert.equal(
      JSON.parse(j.stdout.split("\n")[1]!).note,
      "Unrecognized snapshot line: bogus\x1b[2Jred\x07\rX\u2028",
    );
  });
});

Deno.test("main replay's text summary and convert's warnings escape control bytes as dump does", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    await Deno.writeTextFile(path, "alive: a\u009b2J\u202e 1\nbogus\x1b[31mred\n");
    const r = await run(["replay", path]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.ok(lines.includes('  "a\\x9b2J\\u202e" "1"'), r.stdout);
    assert.ok(lines.includes("  line 2: Unrecognized snapshot line: bogus\\x1b[31mred"), r.stdout);
    for (const c of ["\x1b", "\x9b", "\u202e"]) assert.ok(!r.stdout.includes(c), JSON.stringify(c));
    const c = await run(["convert", "--to", "binary", path, `${dir}/s.bin`]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /skipped line 2 of the input: Unrecognized snapshot line: bogus\\x1b\[31mred/);
    assert.ok(!c.stderr.includes("\x1b"));
  });
});

Deno.test("main dump of a binary file: offsets, quoted fields, and salvage notes", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/s.snap`;
    const snap = await Snapshotter.open(path);
    snap.append({ type: "alive", name: "a b", addr: "10.0.0.1:7946" });
    snap.append({ type: "event-clock", value: 2n ** 64n - 1n });
    snap.append({ type: "leave" });
    await snap.close();
    const r = await run(["dump", path]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        '        24  alive        "a b" "10.0.0.1:7946"',
        "        56  event-clock  18446744073709551615",
        "        80  leave",
        "",
      ].join("\n"),
    );
    const bytes = await Deno.readFile(path);
    bytes[56 + 12]! ^= 1; // the clock's value
    await Deno.writeFile(path, bytes);
    const s = await run(["dump", "--json", "--recovery", "salvage", path]);
    assert.deepEqual(s.stdout.trim().split("\n").map((l) => JSON.parse(l)), [
      { offset: 24, line: null, type: "alive", name: "a b", addr: "10.0.0.1:7946" },
      { offset: 56, line: null, type: null, note: "skipped 24 bytes: checksum mismatch" },
      { offset: 80, line: null, type: "leave" },
    ]);
  });
});

Deno.test("deno task cli run from another folder: a relative path that is not found says where paths are taken from", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/in.snapshot`, "alive: a 10.0.0.1:7946\n");
    /** `deno task cli replay FILE` run in `dir`, with INIT_CWD as deno task sets it when no outer task did. */
    const replayFrom = async (file: string): Promise<{ code: number; stderr: string }> => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "task",
          "-q",
          "--config",
          new URL("deno.json", REPO).pathname,
          "cli",
          "replay",
          "--json",
          file,
        ],
        cwd: dir,
        env: { NO_COLOR: "1", INIT_CWD: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const relative = await replayFrom("in.snapshot");
    assert.equal(relative.code, 1);
    const root = Deno.realPathSync(new URL(".", REPO)).replace(/[/\\]$/, "");
    assert.equal(
      relative.stderr,
      `snaplog replay: Cannot replay "in.snapshot": no such file (relative paths are taken from the working directory, ${root} (deno task runs in the package's folder), not from ${dir}: give an absolute path)\n`,
    );
    assert.equal(
      (await replayFrom(`${dir}/none.snapshot`)).stderr,
      `snaplog replay: Cannot replay "${dir}/none.snapshot": no such file\n`,
      "no hint for an absolute path",
    );
  });
});

Deno.test("main: a reader that went away is no failure, and compact/convert succeed when only their summary is lost", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/in.snapshot`;
    await Deno.writeTextFile(path, "alive: a 10.0.0.1:7946\n".repeat(20));
    let stderr = "";
    const gone = (err: Error): CliIo => ({
      stdout: () => {
        throw err;
      },
      stderr: (t) => stderr += t,
    });
    assert.equal(await main(["replay", "--json", path], gone(new Deno.errors.BrokenPipe("Broken pipe"))), 0);
    assert.equal(await main(["convert", "--help"], gone(new Deno.errors.BrokenPipe("Broken pipe"))), 0);
    // Progress and skipped-line notes on a stderr whose reader went away (`2>&1 | head -1`)
    // neither abort a conversion nor fail it.
    const broken: CliIo = {
      stdout: () => {},
      stderr: () => {
        throw new Deno.errors.BrokenPipe("Broken pipe");
      },
    };
    await Deno.writeTextFile(`${dir}/skips.snapshot`, "alive: a 10.0.0.1:7946\nbogus\n");
    assert.equal(
      await main(["convert", "--to", "binary", `${dir}/skips.snapshot`, `${dir}/skips.snap`], broken),
      0,
    );
    assert.equal((await replaySnapshot(`${dir}/skips.snap`)).aliveNodes.length, 1);
    const full = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
    assert.equal(await main(["convert", "--to", "binary", path, `${dir}/out.snap`], gone(full)), 0);
    assert.equal((await replaySnapshot(`${dir}/out.snap`)).aliveNodes.length, 1);
    const before = (await Deno.stat(path)).size;
    assert.equal(await main(["compact", path], gone(full)), 0);
    assert.ok((await Deno.stat(path)).size < before, "compacted");
    assert.equal(stderr, "");
  });
});

Deno.test("main prints an error whose path holds a newline on one line, the reason kept", async () => {
  const r = await run(["replay", "--json", "/no/such\ndir/x.snapshot"]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'snaplog replay: Cannot replay "/no/such\\x0adir/x.snapshot": no such file\n');
});

Deno.test("A pipe or a directory is refused as a snapshot: never read as an empty one, no lock file made", async () => {
  await withTempDir(async (dir) => {
    const fifo = `${dir}/fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output().catch(() => null);
    const targets = [`${dir}/sub`];
    await Deno.mkdir(`${dir}/sub`);
    if (made?.code === 0) targets.push(fifo);
    else console.log("mkfifo is not available: the pipe case is skipped");
    for (const t of targets) {
      await assert.rejects(
        replaySnapshot(t),
        (e: Error) => e instanceof TypeError && /not a regular file/.test(e.message),
      );
      await assert.rejects(Snapshotter.open(t), /not a regular file/);
      const r = await run(["convert", "--to", "binary", t, `${dir}/out.snap`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^snaplog convert: Cannot convert ".*": not a regular file/);
    }
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
      targets.map((t) => t.slice(dir.length + 1)).sort(),
    );
  });
});

Deno.test("main compact takes --format, as the refusal of a file auto cannot tell asks", async () => {
  await withTempDir(async (dir) => {
    // A serf file whose first page a crash zeroed, holding a snaplog frame in a node name.
    const bin = `${dir}/b.snap`;
    const s = await Snapshotter.open(bin);
    s.append({ type: "alive", name: "x", addr: "1" });
    await s.close();
    // Version 1's frame (no salt), which auto takes for a binary file's alone.
    const frame = asVersion1(await Deno.readFile(bin)).subarray(24, 40);
    const head = new TextEncoder().encode("\nalive: ");
    const pad = new Uint8Array((8 - ((4096 + head.length) % 8)) % 8).fill(0x78);
    const tail = new TextEncoder().encode(" 10.0.0.2:7946\nalive: later 10.0.0.3:7946\nclock: 42\n");
    const parts = [new Uint8Array(4096), head, pad, frame, tail];
    const file = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (file.set(p, at), at + p.length), 0);
    const path = `${dir}/serf.snapshot`;
    await Deno.writeFile(path, file);
    const refused = await run(["compact", path]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ask for format "go-text"/);
    assert.deepEqual(await Deno.readFile(path), file, "left as it was");
    const asked = await run(["compact", "--format", "go-text", path]);
    assert.equal(asked.code, 0, asked.stderr);
    const state = await replaySnapshot(path);
    // As serf reads it: the node whose name holds the frame, and "later".
    assert.equal(state.format, "go-text");
    assert.equal(state.aliveNodes.length, 2);
    assert.equal(state.aliveNodes[1]!.name, "later");
    assert.equal(state.lastClock, 42n);
  });
});
