import assert from "node:assert/strict";
import process from "node:process";
import { Rng, testSeed } from "./_rng.ts";
import { WasmCore } from "../src/_wasm/core.ts";
import { SerfState } from "../src/serf/_state.ts";
import type { AliveNode } from "../src/serf/types.ts";

const encoder = new TextEncoder();
const MAX_UINT64 = (1n << 64n) - 1n;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function sortedNodes(map: Map<string, string>): AliveNode[] {
  return [...map].map(([name, addr]) => ({ name, addr }))
    .sort((a, b) => compareBytes(encoder.encode(a.name), encoder.encode(b.name)));
}

function liveBytes(map: Map<string, string>): number {
  let n = 0;
  for (const [name, addr] of map) n += encoder.encode(name).length + encoder.encode(addr).length;
  return n;
}

Deno.test("SerfState matches a Map under 100k seeded inserts, replacements and deletes", () => {
  const seed = testSeed("SerfState churn");
  const rand = new Rng(seed);
  const r = (): number => rand.next();
  const state = new SerfState();
  state.reset(false);
  const model = new Map<string, string>();
  // Names of every length class from empty to past a hash block, some sharing prefixes,
  // so probes hit equal hashes of different lengths and equal lengths of different names.
  const name = (): string => {
    const k = Math.floor(r() * 3000);
    switch (k % 5) {
      case 0:
        return `node-${k}.dc1`;
      case 1:
        return "x".repeat(k % 40);
      case 2:
        return `ü${k}`;
      case 3:
        return `long-${"y".repeat(k % 300)}-${k}`;
      default:
        return String(k);
    }
  };
  const addr = (): string => {
    const k = Math.floor(r() * 50);
    return k === 0 ? "" : `10.0.${k}.${Math.floor(r() * 256)}:${k < 10 ? 7946 : "7946".repeat(k)}`;
  };
  for (let op = 0; op < 100_000; op++) {
    const n = name();
    if (r() < 0.6) {
      const a = addr();
      state.alive(n, a);
      model.set(n, a);
    } else {
      state.notAlive(n);
      model.delete(n);
    }
    if (op % 10_000 === 9_999) {
      assert.equal(state.count, model.size, `seed ${seed} op ${op}`);
      assert.equal(state.liveBytes, liveBytes(model), `seed ${seed} op ${op}`);
      assert.deepEqual(state.aliveNodes(), sortedNodes(model), `seed ${seed} op ${op}`);
    }
  }
  for (const n of [...model.keys()]) {
    state.notAlive(n);
    model.delete(n);
  }
  assert.equal(state.count, 0);
  assert.equal(state.liveBytes, 0);
  assert.deepEqual(state.aliveNodes(), []);
});

Deno.test("SerfState memory follows the alive set, not the number of operations", () => {
  const core = new WasmCore();
  const state = new SerfState(core);
  state.reset(false);
  const x = state.exports;
  let peakCapacity = 0;
  const round = (prefix: string): void => {
    for (let i = 0; i < 50_000; i++) {
      state.alive(`${prefix}-node-${i}.dc1`, `10.0.${i >> 8 & 255}.${i & 255}:7946`);
    }
    assert.equal(state.count, 50_000);
    peakCapacity = x.state_capacity();
    for (let i = 0; i < 50_000; i++) state.notAlive(`${prefix}-node-${i}.dc1`);
    assert.equal(state.count, 0);
  };
  round("a");
  const afterFirst = core.exports.mem_used();
  round("b");
  // A second round may take one more small block: a rebuild of the small table it starts from
  // (dead slots dropped, same size) holds the old and the new table at once.
  const afterSecond = core.exports.mem_used();
  assert.ok(afterSecond - afterFirst <= 1024, `mem_used grew from ${afterFirst} to ${afterSecond}`);
  round("c");
  round("d");
  assert.equal(
    core.exports.mem_used(),
    afterSecond,
    `mem_used grew on further alive sets of the same size`,
  );
  // The table shrank back after the deletes, and grows to the same size for the same peak.
  assert.ok(x.state_capacity() <= 32, `capacity ${x.state_capacity()} after deleting everything`);
  for (let i = 0; i < 50_000; i++) state.alive(`d-${i}`, "a:1");
  assert.equal(x.state_capacity(), peakCapacity);
});

Deno.test("SerfState keeps small tables at most half full and large ones up to 4/5 (the README's sizes)", () => {
  // Probing cost follows the load, memory the table: 10k nodes in 32,768 slots (2 MiB, load
  // 0.31), 100k in 131,072 (8 MiB, load 0.76). A change of the rule must update the README.
  const state = new SerfState(new WasmCore());
  state.reset(false);
  const x = state.exports;
  const sizes: [number, number][] = [[8_192, 16_384], [10_000, 32_768], [32_768, 65_536], [100_000, 131_072]];
  let n = 0;
  for (const [nodes, slots] of sizes) {
    for (; n < nodes; n++) state.alive(`node-${n}`, "10.0.0.1:7946");
    assert.equal(x.state_capacity(), slots, `${nodes} nodes`);
  }
});

Deno.test("SerfState reuses memory when addresses are replaced and nodes die and rejoin", () => {
  const core = new WasmCore();
  const state = new SerfState(core);
  state.reset(false);
  // Three address sizes: in the slot beside the name, out of line in a 64-byte block, and
  // out of line in a 128-byte block, so nodes move between all three on every round.
  const short = "10.0.0.1:7946";
  const mid = `[2001:db8:1234:5678:9abc:def0:1234:5678]:${"7".repeat(12)}`;
  const long = `[2001:db8::1]:${"7946".repeat(20)}`;
  const replaceAll = (addr: string): void => {
    for (let i = 0; i < 1000; i++) state.alive(`node-${i}`, addr);
  };
  const cycle = [short, mid, long, short, long, mid];
  for (const a of cycle) replaceAll(a);
  const settled = core.exports.mem_used();
  for (let round = 0; round < 30; round++) {
    replaceAll(cycle[round % cycle.length]!);
    // Half the nodes die and come back: a revived node keeps its slot.
    for (let i = round % 2; i < 1000; i += 2) state.notAlive(`node-${i}`);
    assert.equal(state.count, 500);
  }
  assert.equal(core.exports.mem_used(), settled);
  replaceAll(short);
  assert.equal(state.count, 1000);
  assert.equal(
    state.liveBytes,
    1000 * short.length + [...Array(1000).keys()].reduce((n, i) => n + `node-${i}`.length, 0),
  );
  assert.deepEqual(new Set(state.aliveNodes().map((n) => n.addr)), new Set([short]));
});

Deno.test("SerfState leave clears nodes and clocks, unless rejoinAfterLeave", () => {
  for (const rejoin of [false, true]) {
    const state = new SerfState();
    state.reset(rejoin);
    state.alive("a", "1");
    state.alive("b", "2");
    state.clock(0, 5n);
    state.clock(1, 6n);
    state.clock(2, 7n);
    state.leave();
    if (rejoin) {
      assert.equal(state.count, 2);
      assert.deepEqual(state.clocks, { lastClock: 5n, lastEventClock: 6n, lastQueryClock: 7n });
    } else {
      assert.equal(state.count, 0);
      assert.equal(state.liveBytes, 0);
      assert.deepEqual(state.aliveNodes(), []);
      assert.deepEqual(state.clocks, { lastClock: 0n, lastEventClock: 0n, lastQueryClock: 0n });
    }
    // The state is usable after a leave.
    state.alive("c", "3");
    assert.deepEqual(state.aliveNodes().map((n) => n.name), rejoin ? ["a", "b", "c"] : ["c"]);
    // reset switches the mode and empties everything.
    state.reset(!rejoin);
    assert.equal(state.count, 0);
    assert.deepEqual(state.clocks, { lastClock: 0n, lastEventClock: 0n, lastQueryClock: 0n });
  }
});

Deno.test("SerfState clocks keep the last value written, up to 2^64-1", () => {
  const state = new SerfState();
  state.reset(false);
  state.clock(0, MAX_UINT64);
  state.clock(1, 1n << 63n);
  state.clock(2, (1n << 63n) - 1n);
  assert.deepEqual(state.clocks, {
    lastClock: MAX_UINT64,
    lastEventClock: 1n << 63n,
    lastQueryClock: (1n << 63n) - 1n,
  });
  // No max: a lower value after a higher one wins, as in serf.
  state.clock(0, 3n);
  state.clock(1, 0n);
  state.clock(2, 1n);
  assert.deepEqual(state.clocks, { lastClock: 3n, lastEventClock: 0n, lastQueryClock: 1n });
});

Deno.test("SerfState sorts names byte-wise on UTF-8, not by UTF-16 code units", () => {
  const state = new SerfState();
  state.reset(false);
  // U+1F600 sorts before U+FF61 in UTF-16 (surrogate 0xD83D < 0xFF61) but after it in UTF-8 (0xF0 > 0xEF).
  const names = ["\u{1f600}", "\uff61", "b", "B", "", "ab", "a", "é"];
  for (const n of names) state.alive(n, "x");
  const want = [...names].sort((a, b) => compareBytes(encoder.encode(a), encoder.encode(b)));
  assert.deepEqual(state.aliveNodes().map((n) => n.name), want);
  assert.notDeepEqual(want, [...names].sort());
});

Deno.test("SerfState instances do not share state", () => {
  const a = new SerfState();
  const b = new SerfState();
  a.reset(false);
  b.reset(false);
  a.alive("only-a", "1");
  b.clock(0, 9n);
  assert.equal(b.count, 0);
  assert.equal(a.clocks.lastClock, 0n);
});

Deno.test("SerfState sorts names that share a long prefix byte-wise, prefixes and zero bytes included", () => {
  const seed = testSeed("SerfState shared-prefix sort");
  const rand = new Rng(seed);
  const state = new SerfState();
  state.reset(false);
  const model = new Map<string, string>();
  const prefix = "dc1-rack07-node-";
  const alphabet = ["\0", "0", "1", "9", "a", "z", "é", "\u00ff"];
  for (let i = 0; i < 3000; i++) {
    // Suffixes of 0..20 characters: some end inside the 8-byte sort key, some run past it,
    // some are prefixes of others, some differ only after the key.
    let suffix = "";
    const len = Math.floor(rand.next() * 21);
    for (let k = 0; k < len; k++) suffix += alphabet[Math.floor(rand.next() * alphabet.length)];
    const name = prefix + suffix;
    state.alive(name, `10.0.0.${i % 256}:7946`);
    model.set(name, `10.0.0.${i % 256}:7946`);
  }
  assert.deepEqual(state.aliveNodes(), sortedNodes(model), `seed ${seed}`);
});

Deno.test("all_ascii finds a byte of 0x80 or more at any position, in the vector part and the tail", () => {
  // aliveNodes() decodes with one string and slices when the export is all ASCII: a missed
  // high byte would cut multi-byte names in the wrong places.
  const core = new WasmCore();
  const x = core.exports;
  const ptr = core.alloc(64);
  for (let len = 0; len <= 40; len++) {
    core.u8.fill(0x7f, ptr, ptr + 64);
    assert.equal(x.all_ascii(ptr, len), 1, `len ${len}`);
    for (let at = 0; at < len; at++) {
      for (const high of [0x80, 0xc3, 0xff]) {
        core.u8.fill(0x7f, ptr, ptr + 64);
        core.u8[ptr + at] = high;
        assert.equal(x.all_ascii(ptr, len), 0, `len ${len}, 0x${high.toString(16)} at ${at}`);
      }
    }
    // A high byte just past the range is not read as part of it.
    core.u8.fill(0x7f, ptr, ptr + 64);
    core.u8[ptr + len] = 0xff;
    assert.equal(x.all_ascii(ptr, len), 1, `len ${len}, high byte after the end`);
  }
});

Deno.test("SerfState aliveNodes decodes a mixed set: ASCII names beside one multi-byte name anywhere", () => {
  for (let pos = 0; pos < 40; pos++) {
    const state = new SerfState(new WasmCore());
    state.reset(false);
    const model = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      const name = i === pos ? `n\u00e9${String(i).padStart(2, "0")}` : `n${String(i).padStart(3, "0")}`;
      model.set(name, `10.0.0.${i}:7946`);
    }
    for (const [n, a] of model) state.alive(n, a);
    assert.deepEqual(state.aliveNodes(), sortedNodes(model), `multi-byte name at ${pos}`);
  }
});

Deno.test("SerfState sorts by name where keys tie: long runs sharing 8 bytes after the prefix, short names, shuffled", () => {
  // aliveNodes() sorts by a 64-bit key (8 name bytes after the common prefix), by radix, then
  // by whole names within each run of equal keys. Build sets that stress each part.
  const seed = testSeed("SerfState tied keys");
  const rng = new Rng(seed);
  const sets: string[][] = [
    // One run of 3,000 equal keys ("abbbbbbb"), beside names that end inside the key.
    [...Array.from({ length: 3000 }, (_, i) => `abbbbbbbbb-${i}`), "a", "ab", "abbbbbbb", "zz", ""],
    // Every key equal: every radix pass skipped, one run of all.
    Array.from({ length: 500 }, (_, i) => `same-prefix-${"q".repeat(i % 7)}${i}`),
    // Keys differing in one byte only, and in the last byte of the key only.
    Array.from({ length: 2000 }, (_, i) => `n${String.fromCharCode(33 + (i % 90))}zzzzzz${i % 3}${i}`),
    // Random bytes, multi-byte UTF-8 included.
    Array.from(
      { length: 2000 },
      () =>
        Array.from(
          { length: rng.int(14) },
          () => String.fromCodePoint(rng.int(3) === 0 ? 0xe9 + rng.int(300) : 97 + rng.int(3)),
        ).join(""),
    ),
  ];
  for (const [k, names] of sets.entries()) {
    const state = new SerfState(new WasmCore());
    state.reset(false);
    const model = new Map<string, string>();
    // Insert in a shuffled order, so the table's order says nothing about the sorted one.
    const order = [...new Set(names)];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const [i, name] of order.entries()) {
      state.alive(name, `10.0.${i >> 8 & 255}.${i & 255}:7946`);
      model.set(name, `10.0.${i >> 8 & 255}.${i & 255}:7946`);
    }
    const got = state.aliveNodes();
    const want = sortedNodes(model);
    assert.equal(got.length, want.length, `seed ${seed}, set ${k}`);
    for (let i = 0; i < want.length; i++) {
      if (got[i]!.name !== want[i]!.name || got[i]!.addr !== want[i]!.addr) {
        assert.fail(
          `seed ${seed}, set ${k}: at ${i}, ${JSON.stringify(got[i])} where ${JSON.stringify(want[i])}`,
        );
      }
    }
  }
});

Deno.test("SerfState.reserveFor builds at once the table inserting the nodes ends with, capped, never shrinking", () => {
  for (const nodes of [100, 4_097, 8_000, 8_974, 16_384]) {
    const grown = new SerfState(new WasmCore());
    grown.reset(false);
    for (let i = 0; i < nodes; i++) grown.alive(`node-${i}`, "10.0.0.1:7946");
    const core = new WasmCore();
    const state = new SerfState(core);
    state.reset(false);
    state.reserveFor(nodes * 48);
    assert.equal(state.exports.state_capacity(), grown.exports.state_capacity(), `${nodes} nodes`);
    state.alive("node-0", "10.0.0.1:7946"); // the host's scratch block comes with the first call
    const used = core.exports.mem_used();
    for (let i = 1; i < nodes; i++) state.alive(`node-${i}`, "10.0.0.1:7946");
    // Names this short live in their slots: no block at all, so no table was rebuilt either.
    assert.equal(core.exports.mem_used(), used, `${nodes} nodes: memory taken after the reserve`);
    assert.deepEqual(state.aliveNodes(), grown.aliveNodes());
  }
  const state = new SerfState(new WasmCore());
  state.reset(false);
  state.reserveFor(1e12); // capped at 16,384 nodes: 32,768 slots
  assert.equal(state.exports.state_capacity(), 32_768);
  for (let i = 0; i < 50_000; i++) state.alive(`node-${i}`, "10.0.0.1:7946");
  const slots = state.exports.state_capacity();
  state.reserveFor(48);
  assert.equal(state.exports.state_capacity(), slots);
  assert.equal(state.count, 50_000);
});

Deno.test("SerfState's fresh table is in memory before a slot is read (written first: no zero page, no second fault)", () => {
  // A lookup reads a slot before an insert writes it. Were the table's pages left untouched,
  // each first read would map the zero page and each first write would fault again, a
  // copy-on-write that interrupts the other core when a Worker of the process runs there.
  if (Deno.build.os !== "linux") return; // minor faults as Linux counts them
  // The count is the process's: the fewest of three tries, in case other tests' threads
  // fault pages in during one.
  let faults = Infinity;
  for (let attempt = 0; attempt < 3; attempt++) {
    const core = new WasmCore();
    const state = new SerfState(core);
    state.reset(false);
    state.reserveFor(1e12); // 32,768 slots: 2 MiB of fresh memory
    const table = state.exports.state_table_ptr();
    const bytes = state.exports.state_capacity() * 64;
    assert.equal(bytes, 2 << 20);
    const u8 = core.u8;
    let sum = 0;
    const before = process.resourceUsage().minorPageFault;
    for (let p = table; p < table + bytes; p += 4096) sum += u8[p]!;
    faults = Math.min(faults, process.resourceUsage().minorPageFault - before);
    assert.equal(sum, 0);
  }
  // 512 pages: one fault each if they were not in memory yet.
  assert.ok(faults < 64, `${faults} page faults reading a fresh 2 MiB table`);
});

Deno.test("SerfState.adopt copies another instance's alive set, out-of-line names and dead slots included, and both go on independently", () => {
  const seed = testSeed("SerfState adopt");
  const rand = new Rng(seed);
  const r = (): number => rand.next();
  const from = new SerfState();
  from.reset(false);
  const model = new Map<string, string>();
  // Short names live in their slot; long ones (name + address over 52 bytes) in a block of
  // their own, whose pointer the move must rewrite. Deletes leave dead slots behind.
  const name = (): string => {
    const k = Math.floor(r() * 4000);
    return k % 3 === 0 ? `long-${"z".repeat(k % 90)}-${k}` : `node-${k}`;
  };
  const churn = (state: SerfState, map: Map<string, string>, ops: number): void => {
    for (let op = 0; op < ops; op++) {
      const n = name();
      if (r() < 0.65) {
        const a = `10.0.${op & 255}.${Math.floor(r() * 256)}:7946`;
        state.alive(n, a);
        map.set(n, a);
      } else {
        state.notAlive(n);
        map.delete(n);
      }
    }
  };
  churn(from, model, 30_000);
  from.clock(0, 7n);
  const to = new SerfState();
  to.reset(false);
  to.alive("stale", "1.2.3.4:1"); // replaced, not merged
  to.adopt(from);
  assert.equal(to.count, model.size, `seed ${seed}`);
  assert.equal(to.liveBytes, liveBytes(model), `seed ${seed}`);
  assert.equal(to.capacity, from.capacity, `seed ${seed}`);
  assert.deepEqual(to.aliveNodes(), sortedNodes(model), `seed ${seed}`);
  assert.equal(to.clocks.lastClock, 0n, "clocks are the caller's to copy");
  // The copy owns its blocks: changing either state leaves the other as it was.
  const copy = new Map(model);
  churn(to, copy, 20_000);
  assert.deepEqual(from.aliveNodes(), sortedNodes(model), `seed ${seed}: the source changed`);
  assert.deepEqual(to.aliveNodes(), sortedNodes(copy), `seed ${seed}`);
  from.leave();
  assert.deepEqual(
    to.aliveNodes(),
    sortedNodes(copy),
    `seed ${seed}: freeing the source's blocks reached the copy`,
  );
  // Adopting an empty state empties.
  to.adopt(from);
  assert.equal(to.count, 0);
  assert.deepEqual(to.aliveNodes(), []);
});

/**
 * Names in 16-byte blocks that differ only in the top bit of bytes 7, 11 and 15 of a block:
 * under an unkeyed chain of `h = (h ^ word) * K; h ^= h >>> 32` (this table's hash before it
 * was keyed) a flipped top bit of one word cancels in the next whatever the seed, so all
 * 2^blocks of them had one hash and one probe run (a member picking such names made every
 * lookup of a replay walk all of them: 16,384 names replayed in 2.7 s instead of 60 ms).
 */
function blockNames(blocks: number): Uint8Array[] {
  return Array.from({ length: 1 << blocks }, (_, bits) => {
    const b = new Uint8Array(16 * blocks + 8).fill(0x61);
    for (let j = 0; j < blocks; j++) {
      if ((bits >> j) & 1) { for (const at of [7, 11, 15]) b[16 * j + at]! ^= 0x80; }
    }
    return b;
  });
}

/** The longest distance of a slot in use from where its hash puts it (its probe). */
function longestProbe(state: SerfState): number {
  const x = state.exports;
  const cap = x.state_capacity(), table = x.state_table_ptr();
  const view = state.core.view;
  let longest = 0;
  for (let i = 0; i < cap; i++) {
    if (view.getUint32(table + i * 64 + 4, true) === 0) continue;
    const home = view.getUint32(table + i * 64, true) & (cap - 1);
    longest = Math.max(longest, (i - home + cap) & (cap - 1));
  }
  return longest;
}

Deno.test("SerfState keys its hash per instance: names built to collide spread over the table", () => {
  const names = blockNames(12);
  const state = new SerfState();
  state.reset(false);
  for (const [k, name] of names.entries()) state.alive(name, `10.0.${k >> 8}.${k & 255}:7946`);
  assert.equal(state.count, names.length);
  // 4,096 names at load <= 1/2: random hashing keeps probe runs short (the unkeyed hash put
  // every name in one run: 4,095).
  assert.ok(longestProbe(state) < 64, `longest probe ${longestProbe(state)}`);
  for (const name of names) {
    state.notAlive(name);
    state.alive(name, "10.9.9.9:7946"); // found, not inserted again
  }
  assert.equal(state.count, names.length);
  // A second instance draws another key: the same name lands elsewhere.
  const hash = (s: SerfState, name: Uint8Array): number => {
    const x = s.core.exports as unknown as { name_hash(p: number, len: number): number };
    const p = s.core.alloc(name.length);
    s.core.u8.set(name, p);
    const h = x.name_hash(p, name.length);
    s.core.free(p, name.length);
    return h;
  };
  const other = new SerfState();
  const differ = names.slice(0, 64).filter((n) => hash(state, n) !== hash(other, n)).length;
  assert.ok(differ >= 62, `${differ} of 64 hash differently`);
  // adopt takes the key with the table, so the copy finds every node.
  other.reset(false);
  other.adopt(state);
  for (const name of names) other.alive(name, "10.9.9.9:7946");
  assert.equal(other.count, names.length);
});

Deno.test("A Wasm instance's memory stops at 2 GiB with a RangeError, every address below 2^31", () => {
  // Without a maximum it grew to 4 GiB, and addresses past 2^31 came back to JavaScript as
  // negative numbers (a list of a large alive set wrote past a 1-byte block).
  const core = new WasmCore();
  const blocks: number[] = [];
  assert.throws(() => {
    for (;;) blocks.push(core.alloc(64 << 20)); // pages are reserved, not touched
  }, /Cannot allocate 67108864 bytes of Wasm memory/);
  assert.ok(blocks.length >= 28, `${blocks.length} blocks of 64 MiB`);
  assert.ok(blocks.every((p) => p > 0 && p + (64 << 20) <= 2 ** 31), "addresses");
  assert.ok(core.exports.memory.buffer.byteLength <= 2 ** 31);
  // And a list of the alive set that cannot have its copy says so.
  const state = new SerfState(core);
  state.reset(false);
  for (let i = 0; i < 3; i++) state.alive(`n${i}`, "1");
  while (true) {
    try {
      core.alloc(1 << 20);
    } catch {
      break;
    }
  }
  for (;;) {
    try {
      core.alloc(64);
    } catch {
      break;
    }
  }
  assert.throws(
    () => state.aliveNodes(),
    (e) => e instanceof RangeError && /Cannot list the alive set/.test(e.message),
  );
});
