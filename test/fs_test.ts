import assert from "node:assert/strict";
import { posix } from "node:path";
import { absolutePath, baseOf, dirOf, joinPath, normalizePosix } from "../src/fs/_path.ts";
import { denoFs } from "../src/fs/deno_fs.ts";
import { FaultFs } from "../src/fs/fault_fs.ts";
import { MemFs } from "../src/fs/mem_fs.ts";
import type { FileHandle, FileSystem } from "../src/fs/types.ts";
import { fuzzIterations, Rng, testSeed } from "./_rng.ts";
import { withTempDir } from "./_tmp.ts";

const isWindows = Deno.build.os === "windows";

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

async function readAll(fs: FileSystem, path: string): Promise<Uint8Array> {
  const f = await fs.open(path, { read: true });
  try {
    const buf = new Uint8Array(await f.size());
    assert.equal(await f.read(buf, 0), buf.length);
    return buf;
  } finally {
    await f.close();
  }
}

/** Creates `path` with `data`, fsyncs it and its directory: a crash-safe create. */
async function createDurable(fs: FileSystem, path: string, data: Uint8Array, dir = ""): Promise<void> {
  const f = await fs.open(path, { write: true, createNew: true });
  await f.write(data, 0);
  await f.datasync();
  await f.close();
  await fs.syncDir(dir);
}

// ---------------------------------------------------------------------------------------------
// denoFs

Deno.test("denoFs writes and reads at explicit positions", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/a.log`;
    const f = await denoFs.open(path, { read: true, write: true, create: true });
    try {
      await f.write(bytes(1, 2, 3, 4), 0);
      await f.write(bytes(9, 9), 6); // leaves a hole of two zero bytes
      await f.write(bytes(7), 1);
      assert.equal(await f.size(), 8);
      const buf = new Uint8Array(10);
      assert.equal(await f.read(buf, 0), 8);
      assert.deepEqual(buf.subarray(0, 8), bytes(1, 7, 3, 4, 0, 0, 9, 9));
      const mid = new Uint8Array(3);
      assert.equal(await f.read(mid, 2), 3);
      assert.deepEqual(mid, bytes(3, 4, 0));
      assert.equal(await f.read(new Uint8Array(4), 8), 0, "read at end of file");
      await f.truncate(2);
      assert.equal(await f.size(), 2);
      await f.datasync();
    } finally {
      await f.close();
    }
  });
});

Deno.test("denoFs writes and reads large buffers whole", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/big.log`;
    const rng = new Rng(testSeed("denoFs large"));
    const data = rng.bytes(8 * 1024 * 1024 + 13); // far beyond any single-syscall guarantee
    const f = await denoFs.open(path, { read: true, write: true, create: true });
    try {
      await f.write(data, 5);
      assert.equal(await f.size(), data.length + 5);
      const back = new Uint8Array(data.length);
      assert.equal(await f.read(back, 5), data.length);
      assert.ok(back.every((b, i) => b === data[i]), "bytes read back differ");
    } finally {
      await f.close();
    }
  });
});

Deno.test("denoFs serialises concurrent positioned calls on one handle", async () => {
  await withTempDir(async (dir) => {
    const f = await denoFs.open(`${dir}/c.log`, { read: true, write: true, create: true });
    try {
      await Promise.all(
        Array.from({ length: 32 }, (_, i) => f.write(new Uint8Array(100).fill(i), i * 100)),
      );
      const buf = new Uint8Array(3200);
      await f.read(buf, 0);
      for (let i = 0; i < 32; i++) assert.ok(buf.subarray(i * 100, i * 100 + 100).every((b) => b === i));
    } finally {
      await f.close();
    }
  });
});

Deno.test({
  name: "denoFs creates files with exactly the requested mode",
  ignore: isWindows,
  fn: async () => {
    await withTempDir(async (dir) => {
      for (const mode of [0o644, 0o666, 0o600]) {
        const path = `${dir}/m${mode.toString(8)}`;
        const f = await denoFs.open(path, { write: true, createNew: true, mode });
        await f.close();
        assert.equal((await denoFs.stat(path))?.mode, mode);
      }
      // The default, through `create`.
      const f = await denoFs.open(`${dir}/d`, { write: true, create: true });
      await f.close();
      assert.equal((await denoFs.stat(`${dir}/d`))?.mode, 0o644);
      // Opening an existing file leaves its mode alone.
      await Deno.chmod(`${dir}/d`, 0o600);
      const g = await denoFs.open(`${dir}/d`, { write: true, create: true, mode: 0o644 });
      await g.close();
      assert.equal((await denoFs.stat(`${dir}/d`))?.mode, 0o600);
    });
  },
});

Deno.test("denoFs skips the seek only where the cursor is: random reads, writes and truncates against a model", async () => {
  // The handle remembers its cursor so sequential calls skip a seek; any call elsewhere (and any
  // call after a truncate or a failed one) must still land at its own position.
  const seed = testSeed("denoFs cursor");
  const rng = new Rng(seed);
  await withTempDir(async (dir) => {
    const f = await denoFs.open(`${dir}/c`, { read: true, write: true, create: true });
    let model = new Uint8Array(0);
    let at = 0; // where a "sequential" call would go: the end of the previous one
    let start = 0; // where the previous call began
    let cut = 0; // the last truncate's length
    try {
      for (let i = 0; i < 600; i++) {
        const op = rng.int(10);
        // Calls that continue where the last one ended (no seek), that go back to where it
        // began or to the last truncate's length (the cursor is elsewhere), and anywhere.
        const choice = rng.int(4);
        const pos = choice === 0
          ? at
          : choice === 1
          ? start
          : choice === 2
          ? cut
          : rng.int(model.length + 64);
        start = pos;
        if (op < 5) {
          const data = new Uint8Array(1 + rng.int(300)).map(() => rng.int(256));
          await f.write(data, pos);
          if (pos + data.length > model.length) {
            const grown = new Uint8Array(pos + data.length);
            grown.set(model);
            model = grown;
          }
          model.set(data, pos);
          at = pos + data.length;
        } else if (op < 9) {
          const buf = new Uint8Array(1 + rng.int(300));
          const n = await f.read(buf, pos);
          const want = model.subarray(Math.min(pos, model.length), Math.min(pos + buf.length, model.length));
          assert.equal(n, want.length, `seed ${seed} op ${i}: read at ${pos}`);
          assert.deepEqual(buf.subarray(0, n), want, `seed ${seed} op ${i}: read at ${pos}`);
          at = pos + n;
        } else {
          const length = rng.int(model.length + 32);
          await f.truncate(length);
          cut = length;
          const next = new Uint8Array(length);
          next.set(model.subarray(0, Math.min(length, model.length)));
          model = next;
        }
      }
      assert.equal(await f.size(), model.length, `seed ${seed}`);
    } finally {
      await f.close();
    }
  });
});

Deno.test("denoFs tryLock excludes a second handle in the same process", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/LOCK`;
    const a = await denoFs.open(path, { read: true, write: true, create: true });
    const b = await denoFs.open(path, { read: true, write: true });
    try {
      assert.equal(await a.tryLock(), true);
      assert.equal(await b.tryLock(), false);
      await a.close();
      assert.equal(await b.tryLock(), true);
    } finally {
      await a.close(); // idempotent
      await b.close();
    }
  });
});

Deno.test("denoFs stat of a missing file is null", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await denoFs.stat(`${dir}/missing`), null);
    await Deno.writeFile(`${dir}/present`, bytes(1, 2));
    const { id, ...rest } = (await denoFs.stat(`${dir}/present`))!;
    assert.deepEqual(rest, {
      size: 2,
      mode: isWindows ? null : (await Deno.stat(`${dir}/present`)).mode! & 0o777,
      isFile: true,
    });
    if (isWindows) assert.equal(id, undefined); // no inode numbers: logs check sizes only
    else assert.match(id!, /^\d+:\d+$/);
  });
});

Deno.test("denoFs stat ids: a file keeps its id through a rename and a second name, another file differs", {
  ignore: isWindows,
}, async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/a`, bytes(1));
    await Deno.writeFile(`${dir}/b`, bytes(1));
    const a = (await denoFs.stat(`${dir}/a`))!.id;
    assert.notEqual((await denoFs.stat(`${dir}/b`))!.id, a);
    await denoFs.rename(`${dir}/a`, `${dir}/c`);
    assert.equal((await denoFs.stat(`${dir}/c`))!.id, a);
    await denoFs.link!(`${dir}/c`, `${dir}/d`);
    assert.equal((await denoFs.stat(`${dir}/d`))!.id, a);
    await denoFs.rename(`${dir}/b`, `${dir}/c`); // another file in its place
    assert.notEqual((await denoFs.stat(`${dir}/c`))!.id, a);
  });
});

Deno.test("denoFs remove of a missing file succeeds", async () => {
  await withTempDir(async (dir) => {
    await denoFs.remove(`${dir}/missing`);
    await Deno.writeFile(`${dir}/x`, bytes(1));
    await denoFs.remove(`${dir}/x`);
    assert.equal(await denoFs.stat(`${dir}/x`), null);
  });
});

Deno.test("denoFs rename replaces the target", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/a.tmp`, bytes(1, 2, 3));
    await Deno.writeFile(`${dir}/a`, bytes(9));
    await denoFs.rename(`${dir}/a.tmp`, `${dir}/a`);
    await denoFs.syncDir(dir);
    assert.deepEqual(await Deno.readFile(`${dir}/a`), bytes(1, 2, 3));
    assert.equal(await denoFs.stat(`${dir}/a.tmp`), null);
  });
});

Deno.test("denoFs keeps NotFound and AlreadyExists recognisable and says which step failed", async () => {
  await withTempDir(async (dir) => {
    const missing = `${dir}/missing`;
    const notFound = await denoFs.open(missing, { read: true }).then(() => null, (e: unknown) => e);
    assert.ok(notFound instanceof Deno.errors.NotFound);
    assert.match(notFound.message, /^Cannot open ".*\/missing": No such file or directory \(os error 2\)$/);
    assert.equal((notFound as Error & { code?: string }).code, "ENOENT");
    assert.ok(notFound.cause instanceof Deno.errors.NotFound);

    await Deno.writeFile(`${dir}/x`, bytes(1));
    await assert.rejects(
      denoFs.open(`${dir}/x`, { write: true, createNew: true }),
      Deno.errors.AlreadyExists,
    );
    await assert.rejects(denoFs.rename(missing, `${dir}/y`), (err: Error) => {
      assert.ok(err instanceof Deno.errors.NotFound);
      assert.match(err.message, /^Cannot rename ".*\/missing" to ".*\/y": /);
      return true;
    });
    await assert.rejects(denoFs.syncDir(`${dir}/nodir`), Deno.errors.NotFound);
  });
});

Deno.test("denoFs open with create on a dangling symlink says so and creates nothing", async () => {
  await withTempDir(async (dir) => {
    // Exclusive creation refuses the link, and opening cannot follow it: not a race to retry.
    await Deno.symlink(`${dir}/gone/target`, `${dir}/link`);
    await assert.rejects(denoFs.open(`${dir}/link`, { write: true, create: true }), (err: Error) => {
      assert.ok(err instanceof Deno.errors.NotFound, String(err));
      assert.equal(
        err.message,
        `Cannot open "${dir}/link": it is a symbolic link to "${dir}/gone/target", which does not exist`,
      );
      return true;
    });
    assert.equal(await denoFs.stat(`${dir}/gone/target`), null);
  });
});

Deno.test("denoFs handle calls after close throw", async () => {
  await withTempDir(async (dir) => {
    const f = await denoFs.open(`${dir}/a`, { write: true, create: true });
    await f.close();
    await assert.rejects(f.write(bytes(1), 0), /^BadResource: Cannot write ".*\/a": file is closed$/);
  });
});

Deno.test("denoFs handle calls made after close() throw, also while the close waits for a call in flight", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/a`;
    await Deno.writeFile(path, bytes(1, 2, 3));
    const f = await denoFs.open(path, { read: true });
    const buf = new Uint8Array(3);
    const read = f.read(buf, 0);
    const closed = f.close(); // waits for the read
    assert.equal(await read, 3);
    // The read has settled and the close not yet run: a call now still comes after the close
    // (a call with nothing in flight starts at once, and the close counts as one in flight).
    await assert.rejects(f.read(new Uint8Array(1), 0), /^BadResource: Cannot read ".*\/a": file is closed$/);
    await closed;
  });
});

// ---------------------------------------------------------------------------------------------
// MemFs

Deno.test("MemFs loses data that was written but not datasynced", async () => {
  const fs = new MemFs();
  await createDurable(fs, "log", bytes(1, 2, 3));
  const f = await fs.open("log", { write: true });
  await f.write(bytes(4, 5), 3);
  await f.write(bytes(0), 0);
  assert.deepEqual(fs.read("log"), bytes(0, 2, 3, 4, 5));
  fs.crash();
  assert.deepEqual(fs.read("log"), bytes(1, 2, 3));
});

Deno.test("MemFs keeps datasynced data through a crash", async () => {
  const fs = new MemFs();
  await createDurable(fs, "log", bytes(1));
  const f = await fs.open("log", { write: true });
  await f.write(bytes(2, 3), 1);
  await f.datasync();
  await f.write(bytes(4), 3);
  fs.crash();
  assert.deepEqual(fs.read("log"), bytes(1, 2, 3));
});

Deno.test("MemFs syncDir of '/' and '.' makes entries at the root and bare names durable, as a snapshot's open needs", async () => {
  // The snapshotter syncs dirOf(path): "/" for "/s" and "." for "s". MemFs took their parents
  // to be "" for both, so a snapshot there vanished in a crash after a clean close.
  for (const [path, dir] of [["/s", "/"], ["s", "."], ["s", ""], ["/d/s", "/d"]]) {
    const fs = new MemFs();
    const f = await fs.open(path!, { write: true, create: true });
    await f.write(bytes(7), 0);
    await f.datasync();
    await f.close();
    await fs.syncDir(dir!);
    fs.crash();
    assert.deepEqual(fs.read(path!), bytes(7), `${path} after syncDir ${JSON.stringify(dir)}`);
  }
  const fs = new MemFs();
  const f = await fs.open("/s", { write: true, create: true });
  await f.datasync();
  await fs.syncDir(""); // not the root's directory
  fs.crash();
  assert.equal(await fs.stat("/s"), null);
});

Deno.test("MemFs drops a datasynced new file whose directory was not synced", async () => {
  const fs = new MemFs();
  const f = await fs.open("dir/new", { write: true, create: true });
  await f.write(bytes(1, 2), 0);
  await f.datasync();
  await fs.syncDir(""); // the wrong directory
  assert.deepEqual(fs.files(), ["dir/new"]);
  fs.crash();
  assert.deepEqual(fs.files(), []);
  assert.equal(await fs.stat("dir/new"), null);

  const g = await fs.open("dir/new", { write: true, create: true });
  await g.write(bytes(1, 2), 0);
  await g.datasync();
  await fs.syncDir("dir");
  fs.crash();
  assert.deepEqual(fs.read("dir/new"), bytes(1, 2));
});

Deno.test("MemFs undoes a rename on crash unless the directory was synced", async () => {
  const fs = new MemFs();
  fs.write("snap", bytes(1)); // durable fixture
  await createDurable(fs, "snap.tmp", bytes(2));
  await fs.rename("snap.tmp", "snap");
  assert.deepEqual(fs.files(), ["snap"]);
  assert.deepEqual(fs.read("snap"), bytes(2));
  fs.crash();
  assert.deepEqual(fs.files(), ["snap", "snap.tmp"]);
  assert.deepEqual(fs.read("snap"), bytes(1));
  assert.deepEqual(fs.read("snap.tmp"), bytes(2));

  await fs.rename("snap.tmp", "snap");
  await fs.syncDir("");
  fs.crash();
  assert.deepEqual(fs.files(), ["snap"]);
  assert.deepEqual(fs.read("snap"), bytes(2));
});

Deno.test("MemFs undoes a remove on crash unless the directory was synced", async () => {
  const fs = new MemFs();
  fs.write("d/a", bytes(1));
  await fs.remove("d/a");
  await fs.remove("d/a"); // already gone: fine
  fs.crash();
  assert.deepEqual(fs.read("d/a"), bytes(1));
  await fs.remove("d/a");
  await fs.syncDir("d");
  fs.crash();
  assert.deepEqual(fs.files(), []);
});

Deno.test("MemFs undoes an unsynced truncate on crash", async () => {
  const fs = new MemFs();
  fs.write("log", bytes(1, 2, 3));
  const f = await fs.open("log", { write: true });
  await f.truncate(1);
  fs.crash();
  assert.deepEqual(fs.read("log"), bytes(1, 2, 3));
  const g = await fs.open("log", { write: true });
  await g.truncate(1);
  await g.datasync();
  fs.crash();
  assert.deepEqual(fs.read("log"), bytes(1));
});

Deno.test("MemFs keeps exactly what the last datasync saw, over random writes, truncates, syncs and crashes", async () => {
  // A model that copies the whole file at each datasync, against MemFs, which copies only
  // what changed since the last one (a whole copy per fsync made long tests quadratic).
  const seed = testSeed("MemFs durable model");
  const rng = new Rng(seed);
  const int = (n: number): number => rng.u32() % n;
  for (let run = 0; run < 40; run++) {
    const fs = new MemFs();
    fs.write("d/f", new Uint8Array(int(40)).map(() => int(256))); // contents and entry durable
    const model = { current: fs.read("d/f"), durable: fs.read("d/f") };
    let f = await fs.open("d/f", { read: true, write: true });
    for (let step = 0; step < 60; step++) {
      const op = int(10);
      if (op < 5) {
        const pos = int(model.current.length + 20);
        const data = new Uint8Array(1 + int(24)).map(() => int(256));
        await f.write(data, pos);
        const next = new Uint8Array(Math.max(model.current.length, pos + data.length));
        next.set(model.current);
        next.set(data, pos);
        model.current = next;
      } else if (op < 7) {
        const len = int(model.current.length + 20);
        await f.truncate(len);
        const next = new Uint8Array(len);
        next.set(model.current.subarray(0, len));
        model.current = next;
      } else if (op < 9) {
        await f.datasync();
        model.durable = model.current.slice();
      } else {
        fs.crash();
        model.current = model.durable.slice();
        assert.deepEqual(fs.read("d/f"), model.current, `seed ${seed} run ${run} step ${step}`);
        model.durable = model.current.slice();
        f = await fs.open("d/f", { read: true, write: true });
      }
      assert.deepEqual(fs.read("d/f"), model.current, `seed ${seed} run ${run} step ${step}`);
    }
  }
});

Deno.test("MemFs invalidates handles and releases locks on crash", async () => {
  const fs = new MemFs();
  fs.write("LOCK", bytes());
  const a = await fs.open("LOCK", { read: true, write: true });
  const b = await fs.open("LOCK", { read: true, write: true });
  assert.equal(await a.tryLock(), true);
  assert.equal(await a.tryLock(), true, "the holder may ask again");
  assert.equal(await b.tryLock(), false);
  fs.crash();
  await assert.rejects(
    a.write(bytes(1), 0),
    /^Error: Cannot write "LOCK": handle was invalidated by a simulated crash$/,
  );
  await assert.rejects(a.read(new Uint8Array(1), 0), /invalidated by a simulated crash/);
  await assert.rejects(a.datasync(), /^Error: Cannot fsync "LOCK": handle was invalidated/);
  await a.close(); // does nothing, does not throw
  const c = await fs.open("LOCK", { read: true, write: true });
  assert.equal(await c.tryLock(), true);
  const d = await fs.open("LOCK", { read: true });
  assert.equal(await d.tryLock(), false);
  await c.close();
  assert.equal(await d.tryLock(), true);
});

Deno.test("MemFs open follows the OpenOptions contract", async () => {
  const fs = new MemFs();
  await assert.rejects(fs.open("x", { read: true }), Deno.errors.NotFound);
  await assert.rejects(fs.open("x", { create: true }), TypeError);
  const f = await fs.open("x", { write: true, createNew: true, mode: 0o600 });
  assert.equal(fs.mode("x"), 0o600);
  const { id, ...rest } = (await fs.stat("x"))!;
  assert.deepEqual(rest, { size: 0, mode: 0o600, isFile: true });
  // Ids follow the file, not the name, as inode numbers do.
  fs.write("other", bytes(1));
  assert.notEqual((await fs.stat("other"))!.id, id);
  await fs.link("x", "x2");
  assert.equal((await fs.stat("x2"))!.id, id);
  await fs.rename("x2", "other");
  assert.equal((await fs.stat("other"))!.id, id);
  await fs.remove("other");
  await assert.rejects(fs.open("x", { write: true, createNew: true }), Deno.errors.AlreadyExists);
  await f.write(bytes(1, 2), 0);
  await assert.rejects(
    f.read(new Uint8Array(1), 0),
    /^Error: Cannot read "x": file is not open for reading$/,
  );
  const g = await fs.open("x", { read: true, write: true, truncate: true });
  assert.equal(await g.size(), 0);
  await f.close();
  await assert.rejects(f.write(bytes(1), 0), /^Error: Cannot write "x": file is closed$/);
  await fs.open("y", { write: true, create: true });
  assert.equal(fs.mode("y"), 0o644);
});

Deno.test("MemFs keeps a random prefix of the unsynced tail in a torn crash, reproducibly", async () => {
  const seed = testSeed("MemFs torn");
  const rng = new Rng(seed);
  const durable = rng.bytes(1000);
  const tail = rng.bytes(5000);
  /** Appends `tail` unsynced to a durable file, then crashes with `seed`. */
  async function tornOutcome(crashSeed: number, faultySectorChance = 0): Promise<Uint8Array> {
    const fs = new MemFs();
    fs.write("log", durable);
    const f = await fs.open("log", { write: true });
    await f.write(tail, durable.length);
    fs.crash({ tornWrites: crashSeed, faultySectorChance });
    return fs.read("log");
  }
  const lengths = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const s = (seed + i) >>> 0;
    const got = await tornOutcome(s);
    assert.ok(got.length >= durable.length && got.length <= durable.length + tail.length);
    assert.deepEqual(got.subarray(0, durable.length), durable);
    assert.deepEqual(got.subarray(durable.length), tail.subarray(0, got.length - durable.length));
    assert.deepEqual(await tornOutcome(s), got, `seed ${s} must replay exactly`);
    lengths.add(got.length);
  }
  assert.ok(lengths.size > 1, "different seeds tear at different lengths");

  // Faulty sectors hold random bytes, never touching the durable prefix.
  for (let i = 0; i < 20; i++) {
    const s = (seed + i) >>> 0;
    const got = await tornOutcome(s, 1);
    assert.deepEqual(await tornOutcome(s, 1), got);
    assert.deepEqual(got.subarray(0, durable.length), durable);
    const kept = got.subarray(durable.length);
    if (kept.length >= 64) assert.notDeepEqual(kept, tail.subarray(0, kept.length));
  }
});

Deno.test("MemFs tears in-place overwrites per sector", async () => {
  const seed = testSeed("MemFs torn overwrite");
  const old = new Uint8Array(4096).fill(1);
  const fs = new MemFs();
  fs.write("f", old);
  const f = await fs.open("f", { write: true });
  await f.write(new Uint8Array(4096).fill(2), 0);
  fs.crash({ tornWrites: seed });
  const got = fs.read("f");
  assert.equal(got.length, 4096);
  for (let s = 0; s < 4096; s += 512) {
    const sector = got.subarray(s, s + 512);
    assert.ok(sector.every((b) => b === sector[0]), `sector at ${s} is all old or all new`);
  }
});

Deno.test("MemFs logs the I/O sequence", async () => {
  const fs = new MemFs();
  await createDurable(fs, "d/a.tmp", new Uint8Array(24), "d");
  await fs.rename("d/a.tmp", "d/a");
  await fs.syncDir("d");
  const f = await fs.open("d/a", { read: true, write: true });
  await f.read(new Uint8Array(4), 0); // reads are not logged
  await f.truncate(8);
  await f.close();
  await fs.remove("d/a");
  assert.deepEqual(fs.ops, [
    "open d/a.tmp",
    "write d/a.tmp 0 24",
    "datasync d/a.tmp",
    "close d/a.tmp",
    "syncDir d",
    "rename d/a.tmp d/a",
    "syncDir d",
    "open d/a",
    "truncate d/a 8",
    "close d/a",
    "remove d/a",
  ]);
  assert.equal(fs.syncCount, 1);
  assert.equal(fs.dirSyncCount, 2);
});

Deno.test("MemFs fixtures can be durable or not", () => {
  const fs = new MemFs();
  fs.write("a", bytes(1));
  fs.write("b", bytes(2), { durable: false });
  fs.write("a", bytes(3), { durable: false });
  assert.deepEqual(fs.files(), ["a", "b"]);
  fs.crash();
  assert.deepEqual(fs.files(), ["a"]);
  assert.deepEqual(fs.read("a"), bytes(1));
  assert.throws(() => fs.read("b"), Deno.errors.NotFound);
  assert.deepEqual(fs.ops, []);
});

// ---------------------------------------------------------------------------------------------
// FaultFs

Deno.test("FaultFs failNextWrite fails exactly one write and leaves the file unchanged", async () => {
  const mem = new MemFs();
  mem.write("log", bytes(1, 2));
  const fs = new FaultFs(mem);
  const f = await fs.open("log", { read: true, write: true });
  fs.failNextWrite();
  await assert.rejects(f.write(bytes(3), 2), (err: Error & { code?: string }) => {
    assert.equal(err.message, 'Cannot write "log": injected fault');
    assert.equal(err.code, "EIO");
    return true;
  });
  assert.deepEqual(mem.read("log"), bytes(1, 2));
  await f.write(bytes(3), 2);
  assert.deepEqual(mem.read("log"), bytes(1, 2, 3));

  const custom = new Error("boom");
  fs.failNextWrite(custom);
  await assert.rejects(f.write(bytes(4), 3), (err) => err === custom);
  assert.deepEqual(mem.read("log"), bytes(1, 2, 3));
});

Deno.test("FaultFs failNextSync fails one datasync and makes nothing durable", async () => {
  const mem = new MemFs();
  mem.write("log", bytes(1));
  const fs = new FaultFs(mem);
  const f = await fs.open("log", { write: true });
  await f.write(bytes(2), 1);
  fs.failNextSync();
  await assert.rejects(f.datasync(), /^Error: Cannot fsync "log": injected fault$/);
  assert.equal(mem.syncCount, 0);
  assert.equal(fs.syncCounts.get("log"), undefined);
  await f.datasync();
  assert.equal(fs.syncCounts.get("log"), 1);
  mem.crash();
  assert.deepEqual(mem.read("log"), bytes(1, 2));
});

Deno.test("FaultFs failNextRename and failNextOpen change nothing", async () => {
  const mem = new MemFs();
  mem.write("a", bytes(1));
  const fs = new FaultFs(mem);
  fs.failNextRename();
  await assert.rejects(fs.rename("a", "b"), /^Error: Cannot rename "a" to "b": injected fault$/);
  assert.deepEqual(mem.files(), ["a"]);
  fs.failNextOpen();
  await assert.rejects(fs.open("c", { write: true, create: true }), /Cannot open "c"/);
  assert.deepEqual(mem.files(), ["a"]);
  await fs.rename("a", "b");
  fs.failNextSyncDir();
  await assert.rejects(fs.syncDir(""), /Cannot fsync directory ""/);
  await fs.syncDir("");
  assert.equal(fs.dirSyncCounts.get(""), 1);
  assert.deepEqual(mem.files(), ["b"]);
});

Deno.test("FaultFs failAfterBytes writes a prefix and throws ENOSPC", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  const f = await fs.open("log", { write: true, create: true });
  fs.failAfterBytes(5);
  await f.write(bytes(1, 2, 3), 0);
  await assert.rejects(f.write(bytes(4, 5, 6, 7), 3), (err: Error & { code?: string }) => {
    assert.equal(err.message, 'Cannot write "log": No space left on device (os error 28)');
    assert.equal(err.code, "ENOSPC");
    return true;
  });
  assert.deepEqual(mem.read("log"), bytes(1, 2, 3, 4, 5));
  await assert.rejects(f.write(bytes(8), 5), { code: "ENOSPC" });
  assert.deepEqual(mem.read("log"), bytes(1, 2, 3, 4, 5));
  fs.failAfterBytes(Infinity);
  await f.write(bytes(6), 5);
  assert.deepEqual(mem.read("log"), bytes(1, 2, 3, 4, 5, 6));
});

Deno.test("FaultFs crashAt stops every step from the chosen one on", async () => {
  /** A crash-safe replace of "snap": write a temp file, fsync, rename, fsync the directory. */
  async function replace(fs: FileSystem, data: Uint8Array): Promise<void> {
    let f: FileHandle | undefined;
    try {
      f = await fs.open("snap.tmp", { write: true, create: true, truncate: true });
      await f.write(data, 0);
      await f.datasync();
    } finally {
      await f?.close();
    }
    await fs.rename("snap.tmp", "snap");
    await fs.syncDir("");
  }
  // Record a clean run to learn the steps.
  const probe = new FaultFs(new MemFs());
  await replace(probe, bytes(2));
  assert.deepEqual(probe.ops, [
    "open snap.tmp",
    "write snap.tmp 0 1",
    "datasync snap.tmp",
    "close snap.tmp",
    "rename snap.tmp snap",
    "syncDir ",
  ]);
  for (let i = 0; i <= probe.opCount; i++) {
    const mem = new MemFs();
    mem.write("snap", bytes(1));
    const fs = new FaultFs(mem);
    fs.crashAt(i);
    const outcome = await replace(fs, bytes(2)).then(() => null, (e: unknown) => e);
    assert.equal(outcome === null, i === probe.opCount, `crash at ${i}`);
    if (outcome !== null) {
      assert.ok(FaultFs.isSimulatedCrash(outcome), String(outcome));
      assert.equal(fs.crashed, true);
      assert.equal(fs.opCount, i + 1);
      await assert.rejects(fs.stat("snap"), (err) => FaultFs.isSimulatedCrash(err));
    }
    mem.crash();
    // Either the old or the new snapshot, never anything else.
    const snap = mem.read("snap");
    assert.deepEqual(snap, i < 6 ? bytes(1) : bytes(2), `crash at ${i}`);
  }
});

Deno.test("FaultFs beforeOp can fail a chosen step", async () => {
  const mem = new MemFs();
  const fs = new FaultFs(mem);
  let syncs = 0;
  fs.beforeOp = (op) => {
    if (op.startsWith("datasync ") && ++syncs === 2) throw new Error("second fsync fails");
  };
  const f = await fs.open("a", { write: true, create: true });
  await f.datasync();
  await assert.rejects(f.datasync(), /second fsync fails/);
  await f.datasync();
  assert.equal(fs.syncCounts.get("a"), 2);
  assert.equal(mem.syncCount, 2);
  await f.close();
  fs.recover();
});

Deno.test("FaultFs passes through to denoFs", async () => {
  await withTempDir(async (dir) => {
    const fs = new FaultFs(denoFs);
    const f = await fs.open(`${dir}/a`, { read: true, write: true, create: true });
    try {
      fs.failAfterBytes(2);
      await assert.rejects(f.write(bytes(1, 2, 3), 0), { code: "ENOSPC" });
      assert.deepEqual(await Deno.readFile(`${dir}/a`), bytes(1, 2));
      assert.equal(await f.tryLock(), true);
      await assert.rejects(fs.open(`${dir}/missing`, { read: true }), Deno.errors.NotFound);
    } finally {
      await f.close();
    }
    assert.deepEqual(await readAll(fs, `${dir}/a`), bytes(1, 2));
  });
});

Deno.test("path helpers: directory, last part, join, absolute, and POSIX normalization", () => {
  assert.equal(dirOf("d/s.snap"), "d");
  assert.equal(dirOf("s.snap"), ".");
  assert.equal(dirOf("/s.snap"), "/");
  assert.equal(dirOf("/a/b/s.snap"), "/a/b");
  assert.equal(baseOf("/a/b/s.snap"), "s.snap");
  assert.equal(baseOf("s.snap"), "s.snap");
  assert.equal(joinPath("/a", "s"), isWindows ? "/a\\s" : "/a/s");
  // A backslash separates only on Windows; elsewhere it is part of a name.
  assert.equal(dirOf("/a/b\\c.snap"), isWindows ? "/a/b" : "/a");
  assert.equal(baseOf("/a/b\\c.snap"), isWindows ? "c.snap" : "b\\c.snap");
  assert.equal(joinPath("/a/", "s"), "/a/s");
  assert.equal(absolutePath("/a/s"), "/a/s");
  assert.equal(absolutePath("s"), joinPath(Deno.cwd(), "s"));
  const cases: [string, string][] = [
    ["./d/../d/x", "d/x"],
    ["d//x", "d/x"],
    ["d/./x/", "d/x"],
    ["../x", "../x"],
    ["../../x/..", "../.."],
    ["/../x", "/x"],
    ["/a/b/../../..", "/"],
    ["", "."],
    [".", "."],
    ["a/..", "."],
  ];
  for (const [input, want] of cases) assert.equal(normalizePosix(input), want, input);
});

Deno.test("normalizePosix agrees with node:path's POSIX normalize (trailing slash aside), seeded", () => {
  const seed = testSeed("normalizePosix");
  const rng = new Rng(seed);
  const parts = ["a", "b", ".", "..", "", "s.snap"];
  for (let i = 0; i < fuzzIterations(500); i++) {
    const n = rng.int(7);
    const segs = Array.from({ length: n }, () => parts[rng.int(parts.length)]!);
    const path = (rng.int(2) === 0 ? "/" : "") + segs.join("/");
    let want = posix.normalize(path);
    if (want.length > 1 && want.endsWith("/")) want = want.slice(0, -1);
    assert.equal(normalizePosix(path), want, `seed ${seed}: ${JSON.stringify(path)}`);
  }
});

Deno.test({
  name: "denoFs: a name too long for the file system names no file (stat null, remove no error)",
  ignore: isWindows,
  fn: () =>
    withTempDir(async (dir) => {
      const path = `${dir}/${"n".repeat(300)}`;
      assert.equal(await denoFs.stat(path), null);
      await denoFs.remove(path);
      // Other errors still throw: a directory is not a file to remove.
      await Deno.mkdir(`${dir}/sub/inner`, { recursive: true });
      await assert.rejects(() => denoFs.remove(`${dir}/sub`));
    }),
});

Deno.test("denoFs and MemFs refuse bad positions, lengths, buffers, paths and modes before touching the file", async () => {
  // A NaN or negative truncate length emptied the file; a NaN or fractional write position
  // wrote at 0 or rounded down; a BigInt position wrote and then failed; -1 after a failed call
  // matched the handle's "cursor unknown" and wrote at the cursor; a mode of -1 created a
  // setuid, world-writable file.
  await withTempDir(async (dir) => {
    const mem = new MemFs();
    for (const [name, fs, path] of [["denoFs", denoFs, `${dir}/f`], ["MemFs", mem, "f"]] as const) {
      const h = await fs.open(path, { read: true, write: true, create: true });
      await h.write(new TextEncoder().encode("abcdef"), 0);
      await h.write(null as unknown as Uint8Array, 3).catch(() => {}); // a failed call first
      const bad: [string, () => Promise<unknown>, ErrorConstructor][] = [
        ["truncate(NaN)", () => h.truncate(NaN), RangeError],
        ["truncate(-1)", () => h.truncate(-1), RangeError],
        ["truncate(1.5)", () => h.truncate(1.5), RangeError],
        ["truncate(1n)", () => h.truncate(1n as unknown as number), TypeError],
        ["write at NaN", () => h.write(new Uint8Array(2), NaN), RangeError],
        ["write at 2.7", () => h.write(new Uint8Array(2), 2.7), RangeError],
        ["write at -1", () => h.write(new Uint8Array(2), -1), RangeError],
        ["write at 2n", () => h.write(new Uint8Array(2), 2n as unknown as number), TypeError],
        ["write a string", () => h.write("xy" as unknown as Uint8Array, 0), TypeError],
        ["read into null", () => h.read(null as unknown as Uint8Array, 0), TypeError],
        ["read at NaN", () => h.read(new Uint8Array(2), NaN), RangeError],
      ];
      for (const [what, call, cls] of bad) await assert.rejects(call(), cls, `${name}: ${what}`);
      const buf = new Uint8Array(6);
      assert.equal(await h.read(buf, 0), 6);
      assert.equal(new TextDecoder().decode(buf), "abcdef", `${name}: the file is as it was`);
      await h.close();
      for (const mode of [-1, 0o4755, 1.5, NaN]) {
        await assert.rejects(
          fs.open(`${path}-m`, { write: true, create: true, mode }),
          RangeError,
          `${name} ${mode}`,
        );
      }
      await assert.rejects(fs.open(path, null as unknown as { read: true }), TypeError, name);
      await assert.rejects(fs.open(`${path}\0x`, { read: true }), TypeError, name);
      assert.equal(await fs.stat(`${path}-m`), null, `${name}: no file made with a bad mode`);
    }
    await assert.rejects(denoFs.syncDir(`${dir}/a\0b`), TypeError);
  });
});

Deno.test("MemFs refuses bad fixture contents and crash options, and stays usable", () => {
  // A string as contents was stored, and every later read or crash failed inside MemFs.
  const mem = new MemFs();
  mem.write("a", bytes(1, 2, 3));
  assert.throws(() => mem.write("a", "hello" as unknown as Uint8Array), TypeError);
  assert.throws(() => mem.write("", bytes(1)), TypeError);
  assert.throws(() => mem.crash(null as unknown as object), TypeError);
  assert.throws(() => mem.crash({ tornWrites: "42" as unknown as number }), TypeError);
  assert.throws(() => mem.crash({ tornWrites: 5n as unknown as number }), TypeError);
  mem.crash();
  assert.deepEqual(mem.read("a"), bytes(1, 2, 3));
});
