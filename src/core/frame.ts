// The record frame codec, host side. The byte work is in assembly/frame.ts; this module
// checks arguments, owns the Wasm memory regions and exposes zero-copy batches.
//
// File header (24 bytes, once at offset 0):
//
//   0      1      2      3      4      5      6      7      8
//   +------+------+------+------+------+------+------+------+
//   | magic "SNLG" (53 4E 4C 47)| version u16 | kind u16    |
//   +------+------+------+------+------+------+------+------+
//   | base u64 (raft segments: first index; otherwise 0)    |
//   +------+------+------+------+------+------+------+------+
//   | salt u32 (v1: 0)          | crc32c of bytes 0..20     |
//   +------+------+------+------+------+------+------+------+
//
// Frames (8-byte aligned, repeated to the end of the file):
//
//   0      1      2      3      4      5      6      7      8
//   +------+------+------+------+------+------+------+------+
//   | type | flags| reserved    | length (u32 LE)           |
//   +------+------+------+------+------+------+------+------+
//   | crc32c (u32 LE)           | payload (length bytes) ...
//   +------+------+------+------+------ ... ------+----------+
//   | ... payload              | zero padding to 8 bytes    |
//   +------ ... ---------------+----------------------------+
//
// The crc32c covers the whole frame (padding included) with its own field read as zero, and
// is stored XOR the file's salt (version 2; version 1 files have none, that is, salt 0).
import type { WasmCore } from "../_wasm/core.ts";
import { crc32c } from "./crc32c.ts";

/** Bytes of the file header. */
export const FILE_HEADER_BYTES = 24;
/** Bytes of a frame header (type, flags, reserved, length, crc32c). */
export const FRAME_HEADER_BYTES = 12;
/** "SNLG" read as a little-endian u32. */
export const MAGIC = 0x474c4e53;
/** The format version this code writes: 2, with a salt in the header. It reads 1 and 2. */
export const FORMAT_VERSION = 2;
/** The first format version, without a salt (frames checksummed as with salt 0): still read. */
export const FORMAT_VERSION_UNSALTED = 1;
/** Largest payload the format allows; layers choose a smaller `recordSizeMax`. */
export const RECORD_SIZE_MAX_LIMIT = 64 * 1024 * 1024;

/** What a file holds; stored in the header so a serf snapshot is never opened as a raft segment. */
export const FileKind = {
  serfSnapshot: 1,
  raftSegment: 2,
} as const;
/** A {@link FileKind} value. */
export type FileKind = (typeof FileKind)[keyof typeof FileKind];

/** Bytes a frame with `length` payload bytes takes in the file, padding included. */
export function frameSize(length: number): number {
  return (FRAME_HEADER_BYTES + length + 7) & ~7;
}

/** Why a scan stopped. Values match assembly/frame.ts. */
export const ScanStatus = {
  /** Consumed the whole buffer, stopped on a frame boundary. */
  end: 0,
  /** The frame at the stop offset runs past the buffer (read more, or a torn tail at EOF). */
  incomplete: 1,
  /** Type 0 at the stop offset: end of log if only zeros follow, else a zeroed region. */
  zero: 2,
  /** Checksum mismatch. */
  badCrc: 3,
  /** Length above the maximum record size. */
  badLength: 4,
  /** Type not allowed by the caller's type mask. */
  badType: 5,
  /** Non-zero flags or reserved bytes. */
  badHeader: 6,
  /** The index is full; call again from the stop offset. */
  indexFull: 7,
} as const;
/** A {@link ScanStatus} value. */
export type ScanStatus = (typeof ScanStatus)[keyof typeof ScanStatus];

/** Human words for a scan status, for error messages and reports. */
export function scanStatusReason(status: ScanStatus): string {
  switch (status) {
    case ScanStatus.end:
      return "end of buffer";
    case ScanStatus.incomplete:
      return "incomplete frame";
    case ScanStatus.zero:
      return "zeroed frame header";
    case ScanStatus.badCrc:
      return "checksum mismatch";
    case ScanStatus.badLength:
      return "length above the maximum record size";
    case ScanStatus.badType:
      return "unknown record type";
    case ScanStatus.badHeader:
      return "non-zero reserved header bits";
    case ScanStatus.indexFull:
      return "index full";
  }
}

/** The decoded file header. */
export interface FileHeader {
  version: number;
  kind: number;
  base: bigint;
  /** XORed into every frame's checksum (0 in version 1). */
  salt: number;
}

/**
 * A fresh random salt for a new file: never 0, which stands for version 1's frames. Each file
 * snaplog writes (a new log, a compaction's, a conversion's) draws its own, so a stale frame of
 * another file, or one a node name holds, fails against it.
 */
export function newSalt(): number {
  const v = new Uint32Array(1);
  do crypto.getRandomValues(v); while (v[0] === 0);
  return v[0]!;
}

/**
 * Encodes a file header for `kind` with `base` (0 unless the layer uses it) and `salt`:
 * version 2, or version 1 for salt 0 (the header of a version 1 file, whose frames have none).
 */
export function encodeFileHeader(kind: FileKind, salt: number, base: bigint = 0n): Uint8Array<ArrayBuffer> {
  checkInt("encode a file header with salt", salt, 0, 0xffffffff);
  const out = new Uint8Array(FILE_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, salt === 0 ? FORMAT_VERSION_UNSALTED : FORMAT_VERSION, true);
  view.setUint16(6, kind, true);
  view.setBigUint64(8, base, true);
  view.setUint32(16, salt, true);
  view.setUint32(20, crc32c(out.subarray(0, 20)), true);
  return out;
}

/**
 * Decodes and checks a file header. Returns a string saying what is wrong instead of a header
 * when the bytes are not a valid header, so the caller can build its error with path and offset.
 */
export function decodeFileHeader(bytes: Uint8Array): FileHeader | string {
  if (bytes.length < FILE_HEADER_BYTES) {
    return `file header is ${bytes.length} bytes, need ${FILE_HEADER_BYTES}`;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, FILE_HEADER_BYTES);
  if (view.getUint32(0, true) !== MAGIC) {
    return "bad magic number (not a snaplog file, or its header is damaged)";
  }
  if (view.getUint32(20, true) !== crc32c(bytes.subarray(0, 20))) return "file header checksum mismatch";
  const version = view.getUint16(4, true);
  if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_UNSALTED) {
    return `unsupported format version ${version} (this build reads ${FORMAT_VERSION_UNSALTED} and ${FORMAT_VERSION})`;
  }
  const salt = view.getUint32(16, true);
  if (version === FORMAT_VERSION_UNSALTED && salt !== 0) return "non-zero reserved header field";
  if (version === FORMAT_VERSION && salt === 0) return "zero salt in a version 2 header";
  return { version, kind: view.getUint16(6, true), base: view.getBigUint64(8, true), salt };
}

/** Limits a scanner or encoder checks every frame against. */
export interface FrameLimits {
  /** Bit `t` set allows record type `t` (1..31). */
  typeMask: number;
  /** Largest payload accepted, in bytes. */
  recordSizeMax: number;
}

/** Throws RangeError unless `from` and `end` are integers with 0 <= from <= end <= cap. */
function checkSpan(what: string, from: number, end: number, cap: number): void {
  if (!Number.isInteger(from) || !Number.isInteger(end) || from < 0 || from > end || end > cap) {
    throw new RangeError(`Cannot ${what} [${from}, ${end}): outside the ${cap}-byte buffer`);
  }
}

/** Throws RangeError unless `n` is an integer in `min..max`. */
function checkInt(what: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`Cannot ${what}: ${n} is not an integer in ${min}..${max}`);
  }
}

function checkLimits(limits: FrameLimits): void {
  if (
    !Number.isInteger(limits.typeMask) || (limits.typeMask & 1) !== 0 ||
    limits.typeMask >>> 0 !== limits.typeMask
  ) {
    throw new RangeError(`Cannot use type mask ${limits.typeMask}: it must be a u32 with bit 0 clear`);
  }
  if (
    !Number.isInteger(limits.recordSizeMax) || limits.recordSizeMax < 0 ||
    limits.recordSizeMax > RECORD_SIZE_MAX_LIMIT
  ) {
    throw new RangeError(
      `Cannot use record size limit ${limits.recordSizeMax}: it must be an integer in 0..${RECORD_SIZE_MAX_LIMIT}`,
    );
  }
}

/** The result of one {@link FrameScanner.scan} call. */
export interface ScanResult {
  /** Why the scan stopped. */
  status: ScanStatus;
  /** Offset in the buffer where it stopped: the end of the last good frame. */
  offset: number;
  /** Good frames found; read them with the scanner's entry accessors. */
  count: number;
  /** For `badCrc` and `incomplete`: where the damaged frame claims to end. */
  frameEnd: number;
}

/**
 * Validates frames in a buffer that lives in Wasm memory: the host reads file chunks straight
 * into {@link FrameScanner.buffer}, scans, and reads payloads in place (zero-copy).
 */
export class FrameScanner {
  readonly #core: WasmCore;
  readonly #limits: FrameLimits;
  #bufPtr: number;
  #bufCap: number;
  readonly #indexPtr: number;
  readonly #indexCap: number;
  #salt = 0;

  /**
   * @param core The Wasm instance that owns the buffers (one per log).
   * @param bufferBytes Capacity of the input buffer; grows with {@link ensureCapacity}.
   */
  constructor(core: WasmCore, limits: FrameLimits, bufferBytes: number, indexEntries = 8192) {
    checkLimits(limits);
    checkInt("create a frame scanner with a buffer of that size", bufferBytes, 0, 2 ** 31);
    checkInt("create a frame scanner with that many index entries", indexEntries, 0, 2 ** 26);
    this.#core = core;
    this.#limits = { ...limits };
    this.#bufCap = Math.max(bufferBytes, 64);
    this.#bufPtr = core.alloc(this.#bufCap);
    this.#indexCap = indexEntries;
    this.#indexPtr = core.alloc(indexEntries * 12);
  }

  /**
   * Returns the buffers to the instance's allocator (an open log's instance outlives its
   * replay's scanner). The scanner must not be used afterwards.
   */
  free(): void {
    if (this.#bufPtr === 0) return;
    this.#core.free(this.#bufPtr, this.#bufCap);
    this.#core.free(this.#indexPtr, this.#indexCap * 12);
    this.#bufPtr = 0;
    this.#bufCap = 0;
  }

  /** Capacity of the input buffer in bytes. */
  get capacity(): number {
    return this.#bufCap;
  }

  /** The file's salt, which frames' checksums are checked under (0 until set: version 1). */
  get salt(): number {
    return this.#salt;
  }
  set salt(salt: number) {
    checkInt("check frames under salt", salt, 0, 0xffffffff);
    this.#salt = salt;
  }

  /**
   * The salt under which a frame at `at` in `[0, end)` of the buffer checks out, or -1 where
   * no salt makes a frame (see assembly/frame.ts, frame_salt_of).
   */
  saltOf(at: number, end: number): number {
    checkSpan("read a frame in", at, end, this.#bufCap);
    return this.#core.exports.frame_salt_of(
      this.#bufPtr,
      at,
      end,
      this.#limits.typeMask,
      this.#limits.recordSizeMax,
    );
  }

  /** Address of the input buffer in Wasm memory (for Wasm calls on scanned frames). */
  get pointer(): number {
    return this.#bufPtr;
  }

  /** The input buffer (a view into Wasm memory; take it again after anything that allocates). */
  buffer(): Uint8Array<ArrayBuffer> {
    return this.#core.u8.subarray(this.#bufPtr, this.#bufPtr + this.#bufCap);
  }

  /** Grows the buffer to at least `bytes`, keeping its first `keep` bytes. */
  ensureCapacity(bytes: number, keep = 0): void {
    if (bytes <= this.#bufCap) return;
    let cap = this.#bufCap;
    while (cap < bytes) cap *= 2;
    const ptr = this.#core.alloc(cap);
    const u8 = this.#core.u8;
    u8.copyWithin(ptr, this.#bufPtr, this.#bufPtr + keep);
    this.#core.free(this.#bufPtr, this.#bufCap);
    this.#bufPtr = ptr;
    this.#bufCap = cap;
  }

  /** Moves `[from, from + len)` of the buffer to its start (the unconsumed remainder of a chunk). */
  compact(from: number, len: number): void {
    checkSpan("move", from, from + len, this.#bufCap);
    const p = this.#bufPtr;
    this.#core.u8.copyWithin(p, p + from, p + from + len);
  }

  /**
   * Scans `[start, end)` of the buffer. `start` must be where a frame begins. With `index`
   * false only validates; otherwise up to the index capacity of frames are recorded. A lower
   * `recordSizeMax` than the scanner's stops at longer frames (as a bad length).
   */
  scan(start: number, end: number, index = true, recordSizeMax = this.#limits.recordSizeMax): ScanResult {
    if (!(0 <= start && start <= end && end <= this.#bufCap) || (start & 7) !== 0) {
      throw new RangeError(
        `Cannot scan [${start}, ${end}): outside the ${this.#bufCap}-byte buffer or unaligned`,
      );
    }
    const x = this.#core.exports;
    const status = x.frames_scan(
      this.#bufPtr + start,
      end - start,
      this.#limits.typeMask,
      Math.min(recordSizeMax, this.#limits.recordSizeMax),
      this.#indexPtr,
      index ? this.#indexCap : 0,
      this.#salt,
    ) as ScanStatus;
    return {
      status,
      offset: start + x.scan_offset(),
      count: x.scan_count(),
      frameEnd: start + x.scan_frame_end(),
    };
  }

  /**
   * Finds the first 8-aligned offset in `[from, end)` where a complete, valid frame starts,
   * or -1. A valid frame after damage means corruption in the middle; none means a torn tail.
   */
  resync(from: number, end: number): number {
    checkSpan("resync in", from, end, this.#bufCap);
    const r = this.#core.exports.frames_resync(
      this.#bufPtr,
      end,
      from,
      this.#limits.typeMask,
      this.#limits.recordSizeMax,
      this.#salt,
    );
    return r;
  }

  /**
   * After {@link resync}: the first offset it skipped because a frame there would run past
   * `end` (read on from there before taking a later hit), or -1.
   */
  resyncCut(): number {
    return this.#core.exports.resync_cut();
  }

  /** True if `[from, end)` of the buffer is all zero bytes. */
  allZero(from: number, end: number): boolean {
    checkSpan("check", from, end, this.#bufCap);
    return this.#core.exports.all_zero(this.#bufPtr + from, end - from) === 1;
  }

  /** Type of good frame `i` of the last scan. */
  type(i: number): number {
    return this.#core.view.getUint32(this.#indexPtr + i * 12 + 8, true);
  }
  /** Buffer offset of the payload of good frame `i` of the last scan (relative to the scanned start). */
  payloadOffset(i: number): number {
    return this.#core.view.getUint32(this.#indexPtr + i * 12, true);
  }
  /** Payload length of good frame `i` of the last scan. */
  payloadLength(i: number): number {
    return this.#core.view.getUint32(this.#indexPtr + i * 12 + 4, true);
  }
  /** Payload of good frame `i` of the last scan scanned from `start`, as a view into Wasm memory. */
  payload(i: number, start = 0): Uint8Array<ArrayBuffer> {
    checkInt("read the payload of frame", i, 0, this.#indexCap - 1);
    const at = start + this.payloadOffset(i);
    const len = this.payloadLength(i);
    checkSpan("read a payload at", at, at + len, this.#bufCap);
    const off = this.#bufPtr + at;
    return this.#core.u8.subarray(off, off + len);
  }
}

/**
 * Builds a batch of sealed frames in Wasm memory. Payloads are written once, in place:
 * {@link FrameEncoder.reserve} returns the payload's final location, and
 * {@link FrameEncoder.seal} computes every pending CRC in one Wasm call.
 */
export class FrameEncoder {
  readonly #core: WasmCore;
  readonly #limits: FrameLimits;
  #ptr: number;
  #cap: number;
  #len = 0;
  #sealed = 0;
  #salt = 0;

  constructor(core: WasmCore, limits: FrameLimits, capacityBytes: number) {
    checkLimits(limits);
    checkInt("create a frame encoder of that capacity", capacityBytes, 0, 2 ** 31);
    this.#core = core;
    this.#limits = { ...limits };
    this.#cap = Math.max(64, (capacityBytes + 7) & ~7);
    this.#ptr = core.alloc(this.#cap);
  }

  /** Bytes in the batch, sealed or not. */
  get length(): number {
    return this.#len;
  }
  /** Capacity in bytes. */
  get capacity(): number {
    return this.#cap;
  }
  /** Bytes left before the batch is full. */
  get free(): number {
    return this.#cap - this.#len;
  }
  /** Address of the batch in Wasm memory (for Wasm-side writers). */
  get pointer(): number {
    return this.#ptr;
  }

  /** The salt frames are sealed under: the file's they are written to (0: version 1). */
  get salt(): number {
    return this.#salt;
  }

  /**
   * Seals frames under `salt` from now on, and seals again the frames already sealed under
   * the old one (they have not reached a file: a compaction moved the log to a new file).
   */
  useSalt(salt: number): void {
    checkInt("seal frames under salt", salt, 0, 0xffffffff);
    if (salt === this.#salt) return;
    this.#salt = salt;
    if (this.#sealed === 0) return;
    const status = this.#core.exports.frames_seal(this.#ptr, this.#sealed, this.#limits.recordSizeMax, salt);
    if (status !== 0) {
      throw new Error(`Cannot seal frames again: encoder state is inconsistent (status ${status})`);
    }
  }

  /**
   * Appends a frame header for a payload of `length` bytes and returns the payload's address
   * in Wasm memory, or -1 if the batch has no room. The caller writes the payload there
   * before the next {@link seal}.
   */
  reserve(type: number, length: number): number {
    if (!Number.isInteger(type) || !Number.isInteger(length) || length < 0) {
      throw new RangeError(`Cannot encode a record of type ${type} and length ${length}: not integers`);
    }
    if (type < 1 || type > 31 || ((this.#limits.typeMask >>> type) & 1) === 0) {
      throw new RangeError(`Cannot encode record type ${type}: not allowed by this log`);
    }
    if (length > this.#limits.recordSizeMax) {
      throw new RangeError(
        `Cannot encode a ${length}-byte record: the limit is ${this.#limits.recordSizeMax} bytes`,
      );
    }
    const size = frameSize(length);
    if (this.#len + size > this.#cap) return -1;
    const at = this.#ptr + this.#len;
    const view = this.#core.view;
    view.setUint32(at, type, true); // type, flags = 0, reserved = 0
    view.setUint32(at + 4, length, true);
    this.#len += size;
    return at + FRAME_HEADER_BYTES;
  }

  /** Takes back the frame added by the last {@link reserve} (before the next seal). */
  unreserve(payloadAt: number): void {
    this.truncate(payloadAt - FRAME_HEADER_BYTES - this.#ptr);
  }

  /** Appends a frame with a copy of `payload`; returns false if the batch has no room. */
  append(type: number, payload: Uint8Array): boolean {
    const at = this.reserve(type, payload.length);
    if (at < 0) return false;
    this.#core.u8.set(payload, at);
    return true;
  }

  /**
   * Appends frames that are already sealed (another encoder's {@link bytes}, moved to this
   * one) as they are; returns false if the batch has no room. The frames are trusted: they
   * are not checked again.
   *
   * @throws {RangeError} If `frames` is not a whole number of 8-byte words, or frames
   *   reserved here are not sealed yet (sealed frames cannot follow them).
   */
  appendSealed(frames: Uint8Array): boolean {
    if ((frames.length & 7) !== 0) {
      throw new RangeError(
        `Cannot append ${frames.length} bytes of sealed frames: not a whole number of frames`,
      );
    }
    if (this.#sealed !== this.#len) {
      throw new RangeError(`Cannot append sealed frames after frames that are not sealed yet`);
    }
    if (this.#len + frames.length > this.#cap) return false;
    this.#core.u8.set(frames, this.#ptr + this.#len);
    this.#len += frames.length;
    this.#sealed = this.#len;
    return true;
  }

  /** Computes the CRCs and padding of every frame appended since the last seal. */
  seal(): void {
    if (this.#sealed === this.#len) return;
    const x = this.#core.exports;
    const status = x.frames_seal(
      this.#ptr + this.#sealed,
      this.#len - this.#sealed,
      this.#limits.recordSizeMax,
      this.#salt,
    );
    if (status !== 0) throw new Error(`Cannot seal frames: encoder state is inconsistent (status ${status})`);
    this.#sealed = this.#len;
  }

  /** Bytes of the batch already sealed: the pending frames start here. */
  get sealedLength(): number {
    return this.#sealed;
  }

  /**
   * Records that a Wasm pass of the caller's sealed the pending frames up to `length` (a
   * fused pass that seals and also applies each frame, assembly/serf_binary.ts).
   */
  markSealed(length: number): void {
    if (!Number.isInteger(length) || (length & 7) !== 0 || length < this.#sealed || length > this.#len) {
      throw new RangeError(`Cannot mark ${length} bytes of the batch sealed: not a pending frame boundary`);
    }
    this.#sealed = length;
  }

  /** The sealed bytes of the batch (seals first), as a view into Wasm memory. */
  bytes(): Uint8Array<ArrayBuffer> {
    this.seal();
    return this.#core.u8.subarray(this.#ptr, this.#ptr + this.#len);
  }

  /** Drops the first `n` bytes of the batch (they reached the file), keeping the rest. */
  consume(n: number): void {
    // Whole frames only (frames start 8-aligned; which offsets are frame starts is the caller's to know).
    if (!Number.isInteger(n) || n < 0 || n > this.#len || (n & 7) !== 0) {
      throw new RangeError(`Cannot consume ${n} bytes of a ${this.#len}-byte batch: not a frame boundary`);
    }
    if (n >= this.#len) {
      this.#len = 0;
      this.#sealed = 0;
      return;
    }
    // What was written had been sealed (take the bytes with bytes()); frames staged since keep
    // their place in the order: still pending, for the next seal.
    if (n > this.#sealed) this.seal();
    this.#core.u8.copyWithin(this.#ptr, this.#ptr + n, this.#ptr + this.#len);
    this.#len -= n;
    this.#sealed -= n;
  }

  /** Drops the frames after the first `length` bytes of the batch (not yet sealed). */
  truncate(length: number): void {
    if (!Number.isInteger(length) || (length & 7) !== 0 || length < this.#sealed || length > this.#len) {
      throw new RangeError(
        `Cannot truncate the batch to ${length} bytes: it is not a pending frame boundary`,
      );
    }
    this.#len = length;
  }

  /** Empties the batch. */
  clear(): void {
    this.#len = 0;
    this.#sealed = 0;
  }

  /** Grows capacity to at least `bytes`, keeping the batch. */
  grow(bytes: number): void {
    checkInt("grow a frame encoder to that size", bytes, 0, 2 ** 31);
    if (bytes <= this.#cap) return;
    let cap = this.#cap;
    while (cap < bytes) cap *= 2;
    const ptr = this.#core.alloc(cap);
    this.#core.u8.copyWithin(ptr, this.#ptr, this.#ptr + this.#len);
    this.#core.free(this.#ptr, this.#cap);
    this.#ptr = ptr;
    this.#cap = cap;
  }
}
