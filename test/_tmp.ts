// Temporary directories for tests, and the salt of binary snapshots.
import { decodeFileHeader, encodeFileHeader, type FileKind } from "../src/core/frame.ts";

/** Runs `fn` with a fresh temporary directory, removed afterwards (also when `fn` throws). */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix = "snaplog_test_"): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The salt in a binary snapshot's header (bytes 16..20: 0 in a version 1 file): frames a test
 * builds for that file must be checksummed under it (`FrameEncoder.useSalt`).
 */
export function saltOf(file: Uint8Array): number {
  return new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(16, true);
}

/** {@link saltOf} the file at `path`. */
export async function fileSalt(path: string): Promise<number> {
  const f = await Deno.open(path);
  try {
    const head = new Uint8Array(24);
    let n = 0;
    while (n < head.length) {
      const r = await f.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
    return saltOf(head);
  } finally {
    f.close();
  }
}

/**
 * `file` (a whole binary snapshot, version 2) as version 1 would have written it: the header
 * without a salt, and each frame's checksum field without it (the field is the checksum XOR the
 * salt). For tests of how version 1 files, which have no salt, are read.
 */
export function asVersion1(file: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = Uint8Array.from(file);
  const view = new DataView(out.buffer);
  const header = decodeFileHeader(out);
  if (typeof header === "string") throw new TypeError(`Cannot make a version 1 file: ${header}`);
  const salt = header.salt;
  out.set(encodeFileHeader(header.kind as FileKind, 0, header.base)); // salt 0: a version 1 header
  for (let at = 24; at + 12 <= out.length;) {
    const size = (12 + view.getUint32(at + 4, true) + 7) & ~7;
    if (out[at] === 0 || at + size > out.length) break;
    view.setUint32(at + 8, (view.getUint32(at + 8, true) ^ salt) >>> 0, true);
    at += size;
  }
  return out;
}
