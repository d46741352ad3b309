import assert from "node:assert/strict";
import { fuzzIterations, Rng, testSeed } from "./_rng.ts";
import { randomSoup, UTF8_EDGE_BYTES } from "./_soup.ts";
import {
  encodeGoTextRecord,
  formatGoTextRecord,
  type GoTextRecord,
  GoTextReplayer,
  replayGoText,
} from "../src/serf/gotext.ts";
import { replayGoTextRef } from "../src/serf/_gotext_ref.ts";
import { decodeUtf8 } from "../src/serf/records.ts";
import type { SnapshotState } from "../src/serf/types.ts";

const FIXTURES = new URL("../../shared/fixtures/serf-go/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- seeded randomness ------------------------------------------------------------------

function int(r: () => number, n: number): number {
  return Math.floor(r() * n);
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[int(r, xs.length)]!;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Replays `bytes` through a GoTextReplayer in pieces of random size. */
function replayPieces(
  bytes: Uint8Array,
  r: () => number,
  options: { rejoinAfterLeave?: boolean; chunkSizeBytes?: number },
): SnapshotState {
  const replayer = new GoTextReplayer(options);
  let off = 0;
  while (off < bytes.length) {
    const n = 1 + int(r, r() < 0.5 ? 16 : 600);
    replayer.push(bytes.subarray(off, off + n));
    off += n;
  }
  return replayer.finish();
}

// ---- fixtures --------------------------------------------------------------------------

interface Expected {
  alive_nodes: { name: string; addr: string }[];
  last_clock_str: string;
  last_event_clock_str: string;
  last_query_clock_str: string;
  serf_log: string[];
}

interface ExpectedFile extends Expected {
  file_bytes: number;
  newline_terminated_lines: number;
  bytes_after_last_newline: number;
  rejoin_after_leave_true: Expected;
}

async function loadFixtures(): Promise<{ name: string; bytes: Uint8Array; expected: ExpectedFile }[]> {
  const out = [];
  for await (const entry of Deno.readDir(FIXTURES)) {
    if (!entry.name.endsWith(".snapshot")) continue;
    const base = entry.name.slice(0, -".snapshot".length);
    const bytes = await Deno.readFile(new URL(entry.name, FIXTURES));
    const expected = JSON.parse(await Deno.readTextFile(new URL(`${base}.expected.json`, FIXTURES)));
    out.push({ name: entry.name, bytes, expected });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The serf log line a warning stands for. */
function serfLogLine(reason: string): string {
  return reason === "Ignoring previous leave in snapshot"
    ? `[INFO] serf: ${reason}`
    : `[WARN] serf: ${reason}`;
}

function checkAgainstFixture(
  label: string,
  state: SnapshotState,
  file: { bytes: Uint8Array; expected: ExpectedFile },
  want: Expected,
): void {
  assert.deepEqual(state.aliveNodes, want.alive_nodes, `${label}: alive nodes`);
  assert.equal(state.lastClock.toString(), want.last_clock_str, `${label}: clock`);
  assert.equal(state.lastEventClock.toString(), want.last_event_clock_str, `${label}: event clock`);
  assert.equal(state.lastQueryClock.toString(), want.last_query_clock_str, `${label}: query clock`);
  assert.equal(state.records, file.expected.newline_terminated_lines, `${label}: records`);
  assert.equal(state.tornTailBytes, file.expected.bytes_after_last_newline, `${label}: torn tail`);
  assert.equal(state.bytes, file.expected.file_bytes, `${label}: bytes`);
  assert.equal(state.format, "go-text");
  assert.deepEqual(state.warnings.map((w) => serfLogLine(w.reason)), want.serf_log, `${label}: serf log`);
  // Line numbers: each warning names the line it quotes.
  const lines = decoder.decode(file.bytes).split("\n");
  for (const w of state.warnings) {
    const text = lines[w.line - 1];
    assert.ok(text !== undefined, `${label}: warning line ${w.line} exists`);
    if (w.reason.startsWith("Ignoring previous leave")) {
      assert.equal(text, "leave", `${label}: line ${w.line}`);
    } else if (!w.reason.startsWith("Failed to convert")) {
      assert.ok(w.reason.endsWith(`: ${text}`), `${label}: line ${w.line}`);
    } else assert.ok(/^(event-|query-)?clock: /.test(text), `${label}: line ${w.line}`);
  }
}

Deno.test("replayGoText matches serf on every fixture in both leave modes and at every chunk size", async () => {
  const fixtures = await loadFixtures();
  assert.ok(fixtures.length >= 14, `found ${fixtures.length} fixtures`);
  for (const file of fixtures) {
    for (const rejoinAfterLeave of [false, true]) {
      const want = rejoinAfterLeave ? file.expected.rejoin_after_leave_true : file.expected;
      for (const chunkSizeBytes of [1, 7, 64, 4096, Math.max(1, file.bytes.length)]) {
        const label = `${file.name} rejoinAfterLeave=${rejoinAfterLeave} chunk=${chunkSizeBytes}`;
        const state = await replayGoText(new URL(file.name, FIXTURES), { rejoinAfterLeave, chunkSizeBytes });
        checkAgainstFixture(label, state, file, want);
      }
      checkAgainstFixture(
        `${file.name} reference rejoinAfterLeave=${rejoinAfterLeave}`,
        replayGoTextRef(file.bytes, rejoinAfterLeave),
        file,
        want,
      );
    }
  }
});

Deno.test("GoTextReplayer gives the same state for any split of the input", async () => {
  const seed = testSeed("GoTextReplayer split test");
  const rand = new Rng(seed);
  const r = (): number => rand.next();
  for (const file of await loadFixtures()) {
    for (const rejoinAfterLeave of [false, true]) {
      const want = rejoinAfterLeave ? file.expected.rejoin_after_leave_true : file.expected;
      const chunkSizeBytes = pick(r, [1, 3, 16, 100, 65536]);
      const state = replayPieces(file.bytes, r, { rejoinAfterLeave, chunkSizeBytes });
      checkAgainstFixture(`${file.name} seed=${seed}`, state, file, want);
    }
  }
});

Deno.test("GoTextReplayer reports more than one scan's worth of warnings in order", () => {
  const lines = Array.from({ length: 3000 }, (_, i) => (i % 3 === 2 ? `clock: ${i}` : `bogus ${i}`));
  const bytes = encoder.encode(lines.join("\n") + "\n");
  for (const chunkSizeBytes of [64, 1 << 20]) {
    const replayer = new GoTextReplayer({ chunkSizeBytes });
    replayer.push(bytes);
    const state = replayer.finish();
    assert.equal(state.warnings.length, 2000);
    assert.equal(state.records, 3000);
    assert.equal(state.lastClock, 2999n);
    state.warnings.forEach((w, k) => {
      const i = k + (k >> 1); // skips every third line
      assert.equal(w.line, i + 1);
      assert.equal(w.reason, `Unrecognized snapshot line: bogus ${i}`);
    });
  }
});

Deno.test("GoTextReplayer grows its buffer for a line longer than the chunk", () => {
  const name = "n".repeat(200_000);
  const bytes = encoder.encode(`# ${"c".repeat(300_000)}\nalive: ${name} 10.0.0.1:7946\nclock: 9\n`);
  const replayer = new GoTextReplayer({ chunkSizeBytes: 16 });
  replayer.push(bytes);
  const state = replayer.finish();
  assert.deepEqual(state.aliveNodes, [{ name, addr: "10.0.0.1:7946" }]);
  assert.equal(state.lastClock, 9n);
  assert.equal(state.records, 3);
});

Deno.test("GoTextReplayer quotes clock values the way Go's strconv.Quote does", () => {
  const cases: [string, string][] = [
    ["clock: ", `Failed to convert clock time: strconv.ParseUint: parsing "": invalid syntax`],
    ["clock: +1", `Failed to convert clock time: strconv.ParseUint: parsing "+1": invalid syntax`],
    ["clock: 1_000", `Failed to convert clock time: strconv.ParseUint: parsing "1_000": invalid syntax`],
    [
      "clock: 18446744073709551616",
      `Failed to convert clock time: strconv.ParseUint: parsing "18446744073709551616": value out of range`,
    ],
    [
      "event-clock: 99999999999999999999x",
      `Failed to convert event clock time: strconv.ParseUint: parsing "99999999999999999999x": value out of range`,
    ],
    [
      "query-clock: 1x99999999999999999999",
      `Failed to convert query clock time: strconv.ParseUint: parsing "1x99999999999999999999": invalid syntax`,
    ],
    [
      'clock: "\\\t\x00\x7fé€😀\u00a0',
      `Failed to convert clock time: strconv.ParseUint: parsing "\\"\\\\\\t\\x00\\x7fé€😀\\u00a0": invalid syntax`,
    ],
  ];
  for (const [line, reason] of cases) {
    const replayer = new GoTextReplayer();
    replayer.push(encoder.encode(line + "\n"));
    assert.deepEqual(replayer.finish().warnings, [{ line: 1, reason }], line);
  }
  const bad = new Uint8Array([...encoder.encode("clock: 1"), 0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x0a]);
  const replayer = new GoTextReplayer();
  replayer.push(bad);
  assert.deepEqual(replayer.finish().warnings, [{
    line: 1,
    reason:
      `Failed to convert clock time: strconv.ParseUint: parsing "1\\xff\\xc3(\\xed\\xa0\\x80": invalid syntax`,
  }]);
});

Deno.test("replayGoText accepts leading zeros and 2^64-1, last clock wins", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(
      path,
      "clock: 18446744073709551615\nevent-clock: 0007\nquery-clock: 00000000000000000000000000018446744073709551615\nclock: 5\n",
    );
    const state = await replayGoText(path);
    assert.equal(state.lastClock, 5n);
    assert.equal(state.lastEventClock, 7n);
    assert.equal(state.lastQueryClock, 18446744073709551615n);
    assert.deepEqual(state.warnings, []);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("replayGoText rejects bad options", async () => {
  await assert.rejects(() => replayGoText("x", { chunkSizeBytes: 0 }), RangeError);
  await assert.rejects(() => replayGoText("x", { chunkSizeBytes: 1.5 }), TypeError);
  await assert.rejects(
    () => replayGoText("x", { rejoinAfterLeave: "yes" as unknown as boolean }),
    TypeError,
  );
  // null is not "the default" (as in Snapshotter.open).
  for (const bad of [{ rejoinAfterLeave: null }, { chunkSizeBytes: null }, { maxWarnings: null }]) {
    await assert.rejects(() => replayGoText("x", bad as unknown as object), TypeError, Deno.inspect(bad));
    assert.throws(() => new GoTextReplayer(bad as unknown as object), TypeError, Deno.inspect(bad));
  }
  await assert.rejects(
    () => replayGoText(new URL("does-not-exist.snapshot", FIXTURES)),
    Deno.errors.NotFound,
  );
});

// ---- differential fuzz -------------------------------------------------------------------

Deno.test("GoTextReplayer agrees with the reference replay on random line soups", () => {
  const seed = testSeed("gotext fuzz");
  const iterations = fuzzIterations(400);
  console.log(`gotext fuzz: ${iterations} iterations (SNAPLOG_FUZZ_ITERATIONS)`);
  const rand = new Rng(seed);
  const r = (): number => rand.next();
  for (let i = 0; i < iterations; i++) {
    const bytes = randomSoup(r);
    const rejoinAfterLeave = r() < 0.5;
    const want = replayGoTextRef(bytes, rejoinAfterLeave);
    const chunkSizeBytes = pick(r, [1, 2, 7, 8, 9, 15, 16, 17, 64, 4096]);
    const got = replayPieces(bytes, r, { rejoinAfterLeave, chunkSizeBytes });
    assert.deepEqual(got, want, `seed ${seed} iteration ${i}`);
  }
});

// ---- writer -----------------------------------------------------------------------------

Deno.test("formatGoTextRecord writes serf's exact line format", () => {
  const cases: [GoTextRecord, string][] = [
    [{ type: "alive", name: "node-a", addr: "10.0.0.1:7946" }, "alive: node-a 10.0.0.1:7946\n"],
    [
      { type: "alive", name: "v6 name with spaces", addr: "[::1]:7946" },
      "alive: v6 name with spaces [::1]:7946\n",
    ],
    [{ type: "alive", name: "nil-addr", addr: "" }, "alive: nil-addr \n"],
    [{ type: "not-alive", name: "node-a" }, "not-alive: node-a\n"],
    [{ type: "clock", value: 0n }, "clock: 0\n"],
    [{ type: "event-clock", value: 18446744073709551615n }, "event-clock: 18446744073709551615\n"],
    [{ type: "query-clock", value: 3n }, "query-clock: 3\n"],
    [{ type: "leave" }, "leave\n"],
    [{ type: "coordinate", text: '{"Vec":[0]}' }, 'coordinate: {"Vec":[0]}\n'],
    [{ type: "comment", text: "hi" }, "# hi\n"],
  ];
  for (const [record, line] of cases) {
    assert.equal(formatGoTextRecord(record), line);
    assert.deepEqual(encodeGoTextRecord(record), encoder.encode(line));
  }
});

Deno.test("encodeGoTextRecord writes into a buffer that fits and allocates when it does not", () => {
  const record: GoTextRecord = { type: "alive", name: "é".repeat(10), addr: "10.0.0.1:7946" };
  const want = encoder.encode(formatGoTextRecord(record));
  const big = new Uint8Array(256);
  const inBig = encodeGoTextRecord(record, big);
  assert.equal(inBig.buffer, big.buffer);
  assert.deepEqual(inBig, want);
  const exact = new Uint8Array(want.length);
  const inExact = encodeGoTextRecord(record, exact);
  assert.equal(inExact.buffer, exact.buffer);
  assert.deepEqual(inExact, want);
  const small = new Uint8Array(4);
  const fresh = encodeGoTextRecord(record, small);
  assert.notEqual(fresh.buffer, small.buffer);
  assert.deepEqual(fresh, want);
});

Deno.test("formatGoTextRecord refuses records that would not replay as written", () => {
  const range: [GoTextRecord, string][] = [
    [{ type: "alive", name: "x\nleave", addr: "a" }, `Cannot write alive record: name contains "\\n"`],
    [{ type: "alive", name: "x\r", addr: "a" }, `Cannot write alive record: name contains "\\r"`],
    [{ type: "alive", name: "x", addr: "a\n" }, `Cannot write alive record: address contains "\\n"`],
    [{ type: "alive", name: "x", addr: "a\r" }, `Cannot write alive record: address contains "\\r"`],
    [{ type: "alive", name: "x", addr: "a b" }, `Cannot write alive record: address contains " ": "a b"`],
    [{ type: "alive", name: "", addr: "a" }, `Cannot write alive record: name is empty`],
    [
      { type: "alive", name: "\ud800", addr: "a" },
      `Cannot write alive record: name contains a lone surrogate`,
    ],
    [{ type: "not-alive", name: "" }, `Cannot write not-alive record: name is empty`],
    [{ type: "not-alive", name: "a\nb" }, `Cannot write not-alive record: name contains "\\n"`],
    [{ type: "not-alive", name: "a\rb" }, `Cannot write not-alive record: name contains "\\r"`],
    [{ type: "clock", value: -1n }, `Cannot write clock record: value must be in 0..2^64-1, got -1`],
    [
      { type: "event-clock", value: 1n << 64n },
      `Cannot write event-clock record: value must be in 0..2^64-1, got 18446744073709551616`,
    ],
    [{ type: "comment", text: "a\nleave" }, `Cannot write comment record: text contains "\\n"`],
    [{ type: "coordinate", text: "a\r" }, `Cannot write coordinate record: text contains "\\r"`],
  ];
  for (const [record, message] of range) {
    assert.throws(() => formatGoTextRecord(record), { name: "RangeError", message });
    assert.throws(() => encodeGoTextRecord(record), RangeError);
  }
  const type: unknown[] = [
    { type: "clock", value: 1 },
    { type: "query-clock", value: "1" },
    { type: "alive", name: 1, addr: "a" },
    { type: "alive", name: "a" },
    { type: "nope" },
    null,
  ];
  for (const record of type) {
    assert.throws(() => formatGoTextRecord(record as GoTextRecord), TypeError);
  }
});

Deno.test("formatGoTextRecord output replays to the state the records describe", () => {
  const seed = testSeed("gotext writer round-trip");
  const rand = new Rng(seed);
  const r = (): number => rand.next();
  const names = [
    "node-a",
    "node b",
    "ünïcødé",
    "\u{1f600} x",
    "n".repeat(300),
    "a  b",
    " lead",
    "#hash",
    "leave",
  ];
  for (let round = 0; round < 20; round++) {
    const alive = new Map<string, string>();
    const clocks = { clock: 0n, "event-clock": 0n, "query-clock": 0n };
    const parts: string[] = [];
    for (let i = 0; i < 300; i++) {
      const k = int(r, 10);
      let record: GoTextRecord;
      if (k < 4) {
        const name = pick(r, names) + (r() < 0.5 ? String(int(r, 50)) : "");
        const addr = pick(r, ["10.0.0.1:7946", "[::1]:7946", "", ":0", "é:1"]) + String(int(r, 9));
        record = { type: "alive", name, addr };
        alive.set(name, addr);
      } else if (k < 6) {
        const name = pick(r, names) + (r() < 0.5 ? String(int(r, 50)) : "");
        record = { type: "not-alive", name };
        alive.delete(name);
      } else if (k < 9) {
        const type = pick(r, ["clock", "event-clock", "query-clock"] as const);
        const value = r() < 0.1
          ? (1n << 64n) - 1n - BigInt(int(r, 3))
          : BigInt(int(r, 1e9)) * BigInt(int(r, 1e9));
        record = { type, value };
        clocks[type] = value;
      } else if (r() < 0.3) {
        record = { type: "leave" };
        alive.clear();
        clocks.clock = clocks["event-clock"] = clocks["query-clock"] = 0n;
      } else {
        record = r() < 0.5 ? { type: "comment", text: "x y" } : { type: "coordinate", text: "{}" };
      }
      parts.push(formatGoTextRecord(record));
    }
    const state = replayPieces(encoder.encode(parts.join("")), r, { chunkSizeBytes: pick(r, [5, 64, 4096]) });
    const want = [...alive].map(([name, addr]) => ({ name, addr }))
      .sort((a, b) => compareBytes(encoder.encode(a.name), encoder.encode(b.name)));
    assert.deepEqual(state.aliveNodes, want, `seed ${seed} round ${round}`);
    assert.equal(state.lastClock, clocks.clock);
    assert.equal(state.lastEventClock, clocks["event-clock"]);
    assert.equal(state.lastQueryClock, clocks["query-clock"]);
    assert.deepEqual(state.warnings, []);
    assert.equal(state.tornTailBytes, 0);
  }
});

Deno.test("GoTextReplayer lists the first maxWarnings warnings and counts the rest", () => {
  const replayer = new GoTextReplayer({ maxWarnings: 3 });
  // More than one scan's worth (1024 per Wasm call), pushed in pieces.
  const text = Array.from({ length: 2500 }, (_, i) => `bogus ${i}\n`).join("");
  replayer.push(encoder.encode(text.slice(0, 7000)));
  replayer.push(encoder.encode(text.slice(7000)));
  const state = replayer.finish();
  assert.deepEqual(state.warnings.map((w) => w.line), [1, 2, 3]);
  assert.equal(state.warningsOmitted, 2497);
  assert.throws(() => new GoTextReplayer({ maxWarnings: 1.5 }), TypeError);
  assert.throws(() => new GoTextReplayer({ maxWarnings: -1 }), RangeError);
});

Deno.test("bad clock values are quoted with Go 1.19's idea of printable (Unicode 13), as serf logs them", () => {
  const cases: [string, string][] = [
    ["\u1715", '"\\u1715"'], // added in Unicode 14: Go 1.19 escapes it, V8 would print it
    ["\u00ad", '"\\u00ad"'], // soft hyphen
    ["\u00e9x", '"\u00e9x"'],
    ["\u{1f600}", '"\u{1f600}"'],
    ["\u{e0001}", '"\\U000e0001"'], // a format character
  ];
  for (const [value, quoted] of cases) {
    const replayer = new GoTextReplayer();
    replayer.push(encoder.encode(`clock: ${value}\n`));
    assert.deepEqual(replayer.finish().warnings, [{
      line: 1,
      reason: `Failed to convert clock time: strconv.ParseUint: parsing ${quoted}: invalid syntax`,
    }]);
  }
});

Deno.test("Names that are not UTF-8 decode as Go shows them: one U+FFFD for each byte that begins no whole rune", () => {
  const r = "\ufffd";
  const cases: Array<[number[], string]> = [
    [[0x41, 0xe2, 0x82, 0x41], `A${r}${r}A`], // a 3-byte rune cut short: WHATWG writes one U+FFFD
    [[0xf0, 0x9f, 0x98], `${r}${r}${r}`], // a 4-byte rune cut short at the end
    [[0xf0, 0x9f, 0x98, 0x80], "\u{1f600}"],
    [[0xed, 0xa0, 0x80], `${r}${r}${r}`], // an encoded surrogate
    [[0xf4, 0x90, 0x80, 0x80], `${r}${r}${r}${r}`], // above U+10FFFF
    [[0xc0, 0xaf], `${r}${r}`], // overlong
    [[0xe0, 0x9f, 0xbf], `${r}${r}${r}`], // overlong 3-byte form
    [[0xef, 0xbb, 0xbf, 0x61], "\ufeffa"], // a leading U+FEFF is part of the name
    [[0xc3, 0xa9, 0xff], `\u00e9${r}`],
    [[0xef, 0xbf, 0xbd], r], // U+FFFD itself, valid
    [[0xef, 0xbf, 0xbd, 0xf0, 0x9f, 0x98, 0x80, 0xff], `${r}\u{1f600}${r}`], // and a pair after it
  ];
  for (const [bytes, want] of cases) {
    assert.equal(decodeUtf8(new Uint8Array(bytes)), want, JSON.stringify(bytes));
  }
  // Against a decoder built another way (the shortest prefix a strict decoder takes is a rune).
  const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const slow = (b: Uint8Array): string => {
    let out = "";
    for (let i = 0; i < b.length;) {
      const width = [1, 2, 3, 4].find((w) => {
        if (i + w > b.length) return false;
        try {
          strict.decode(b.subarray(i, i + w));
          return true;
        } catch {
          return false;
        }
      });
      out += width === undefined ? r : strict.decode(b.subarray(i, i + width));
      i += width ?? 1;
    }
    return out;
  };
  const rng = new Rng(testSeed("decodeUtf8 vs a strict decoder"));
  for (let k = 0; k < fuzzIterations(2000); k++) {
    const b = Uint8Array.from(
      { length: rng.int(12) },
      () => rng.int(2) ? rng.pick(UTF8_EDGE_BYTES) : rng.int(256),
    );
    assert.equal(decodeUtf8(b), slow(b), JSON.stringify([...b]));
  }
  // Longer than one String.fromCharCode slice of the decoder's slow path.
  const long = new Uint8Array(20_001).map((_, i) => i % 2 ? 0xff : 0x61);
  assert.equal(decodeUtf8(long), "a\ufffd".repeat(10_000) + "a");
});

Deno.test("GoTextReplayer scans a long line pushed in pieces once, not again from its start at every piece", () => {
  // convert pushes 1 MiB pieces: a 128 MiB line took 11 s (2 s through readAll).
  const r = new GoTextReplayer({ rejoinAfterLeave: false });
  const name = new TextEncoder().encode(`alive: ${"n".repeat(4 << 20)} 10.0.0.1:7946\nclock: 5\n`);
  for (let at = 0; at < name.length; at += 4096) r.push(name.subarray(at, at + 4096));
  const s = r.finish();
  assert.equal(s.aliveNodes.length, 1);
  assert.equal(s.aliveNodes[0]!.name.length, 4 << 20);
  assert.equal(s.lastClock, 5n);
  assert.ok(r.scannedBytes < 2 * name.length, `${r.scannedBytes} bytes scanned for ${name.length}`);
});
