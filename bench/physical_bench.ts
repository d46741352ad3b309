// The physical ceilings every snapshot number is read against: how many write+fdatasync
// round trips the disk under the temp directory does per second (no log can commit more
// often than that with one appender), and how fast the page cache takes and gives bytes
// (no buffered append or replay can beat that). Measured in the same run as the rest.
import {
  type BenchGen,
  suiteBench,
  suiteGroup,
  type SuiteOptions,
  suiteTempDir,
  type SyncBenchGen,
} from "./_harness.ts";

/** Bytes per fsync'd write: one 4 KiB page, the unit the disk and the page cache move. */
const FSYNC_WRITE_BYTES = 4096;
/** Page-cache file size: far above the CPU caches, small enough to stay cached on a 2 GiB box. */
const CACHE_FILE_BYTES = 64 << 20;
/** Read/write chunk: what snaplog's replay reads per call (src/serf/binary.ts REPLAY_CHUNK_BYTES). */
const CACHE_CHUNK_BYTES = 1 << 20;

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/**
 * Measures write+fdatasync round trips per second for `durationMs` on a file in `dir`,
 * appending `bytes` per round (the file grows, as a log does). For the comparison report.
 */
export async function measureFsyncRate(
  dir: string,
  opts: { durationMs?: number; bytes?: number } = {},
): Promise<{ fsyncsPerSec: number; avgUs: number; rounds: number }> {
  const durationMs = opts.durationMs ?? 2000;
  const data = new Uint8Array(opts.bytes ?? 64).fill(0x61);
  const path = `${dir}/fsync-rate.bin`;
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, data);
    await file.syncData(); // first one pays for allocating the inode's first block
    let rounds = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < durationMs) {
      await writeAll(file, data);
      await file.syncData();
      rounds++;
    }
    const ms = performance.now() - t0;
    return { fsyncsPerSec: rounds / (ms / 1000), avgUs: (ms * 1000) / rounds, rounds };
  } finally {
    file.close();
    await Deno.remove(path).catch(() => {});
  }
}

/** Measures page-cache write and read bandwidth (bytes/s) over a 64 MiB file in `dir`. */
export async function measurePageCache(
  dir: string,
): Promise<{ writeBytesPerSec: number; readBytesPerSec: number }> {
  const path = `${dir}/page-cache.bin`;
  const chunk = new Uint8Array(CACHE_CHUNK_BYTES).fill(0x5a);
  const file = await Deno.open(path, { read: true, write: true, create: true, truncate: true });
  try {
    const best = { w: Infinity, r: Infinity };
    for (let run = 0; run < 5; run++) {
      await file.seek(0, Deno.SeekMode.Start);
      let t0 = performance.now();
      for (let off = 0; off < CACHE_FILE_BYTES; off += CACHE_CHUNK_BYTES) await writeAll(file, chunk);
      best.w = Math.min(best.w, performance.now() - t0);
      await file.seek(0, Deno.SeekMode.Start);
      t0 = performance.now();
      let n = 0;
      while (n < CACHE_FILE_BYTES) {
        const r = await file.read(chunk);
        if (r === null) break;
        n += r;
      }
      best.r = Math.min(best.r, performance.now() - t0);
    }
    return {
      writeBytesPerSec: CACHE_FILE_BYTES / (best.w / 1000),
      readBytesPerSec: CACHE_FILE_BYTES / (best.r / 1000),
    };
  } finally {
    file.close();
    await Deno.remove(path).catch(() => {});
  }
}

/** Registers the fsync-rate and page-cache bandwidth groups. */
export function registerPhysicalBenches(_opts: SuiteOptions): void {
  suiteGroup("disk: write + fsync round trip", () => {
    for (
      const [name, bytes, how] of [
        ["append 64 B + fdatasync", 64, "append"],
        ["append 4 KiB + fdatasync", FSYNC_WRITE_BYTES, "append"],
        ["overwrite 4 KiB at 0 + fdatasync", FSYNC_WRITE_BYTES, "overwrite"],
        ["append 4 KiB + fsync", FSYNC_WRITE_BYTES, "fsync"],
      ] as const
    ) {
      suiteBench(name, { bytes, records: 1 }, async function* (): BenchGen {
        const path = `${await suiteTempDir()}/fsync-${how}-${bytes}.bin`;
        const data = new Uint8Array(bytes).fill(0x61);
        const file = await Deno.open(path, { read: true, write: true, create: true, truncate: true });
        await writeAll(file, data);
        await file.syncData();
        yield async () => {
          if (how === "overwrite") await file.seek(0, Deno.SeekMode.Start);
          await writeAll(file, data);
          if (how === "fsync") await file.sync();
          else await file.syncData();
        };
        file.close();
        await Deno.remove(path);
      }, { baseline: name === "append 64 B + fdatasync" });
    }
  });

  suiteGroup(`page cache: ${CACHE_FILE_BYTES >> 20} MiB in ${CACHE_CHUNK_BYTES >> 20} MiB chunks`, () => {
    const chunk = new Uint8Array(CACHE_CHUNK_BYTES).fill(0x5a);
    suiteBench(
      "memory copy (Uint8Array.set), no file",
      { bytes: CACHE_FILE_BYTES },
      function* (): SyncBenchGen {
        const big = new Uint8Array(CACHE_FILE_BYTES);
        yield () => {
          for (let off = 0; off < CACHE_FILE_BYTES; off += CACHE_CHUNK_BYTES) big.set(chunk, off);
        };
      },
      { baseline: true },
    );
    for (const op of ["write (overwrite, no sync)", "read"] as const) {
      suiteBench(op, { bytes: CACHE_FILE_BYTES }, async function* (): BenchGen {
        const path = `${await suiteTempDir()}/page-cache-${op.startsWith("read") ? "r" : "w"}.bin`;
        const file = await Deno.open(path, { read: true, write: true, create: true, truncate: true });
        for (let off = 0; off < CACHE_FILE_BYTES; off += CACHE_CHUNK_BYTES) await writeAll(file, chunk);
        const buf = new Uint8Array(CACHE_CHUNK_BYTES);
        yield async () => {
          await file.seek(0, Deno.SeekMode.Start);
          if (op === "read") {
            let n = 0;
            while (n < CACHE_FILE_BYTES) {
              const r = await file.read(buf);
              if (r === null) throw new Error("page-cache file is short");
              n += r;
            }
          } else {
            for (let off = 0; off < CACHE_FILE_BYTES; off += CACHE_CHUNK_BYTES) await writeAll(file, chunk);
          }
        };
        file.close();
        await Deno.remove(path);
      });
    }
  });
}
