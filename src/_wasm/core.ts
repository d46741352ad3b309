// The host side of the WebAssembly core: compiles the embedded module once per
// process, instantiates it per owner, and hands out regions of its memory.
//
// Each open log owns its own instance, so two logs never share scratch state,
// scan results or memory growth. Instantiating the compiled module costs
// microseconds; compiling it happens once.
import { WASM_BASE64 } from "./wasm.generated.ts";

/** The raw exports of `assembly/index.ts`. Pointers and lengths are byte offsets. */
export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  mem_alloc(size: number): number;
  mem_free(ptr: number, size: number): void;
  mem_used(): number;
  crc32c_update(crc: number, ptr: number, len: number): number;
  frames_scan(
    ptr: number,
    len: number,
    typeMask: number,
    recordSizeMax: number,
    indexPtr: number,
    indexCap: number,
    salt: number,
  ): number;
  frames_resync(
    ptr: number,
    len: number,
    from: number,
    typeMask: number,
    recordSizeMax: number,
    salt: number,
  ): number;
  frame_salt_of(ptr: number, off: number, len: number, typeMask: number, recordSizeMax: number): number;
  resync_cut(): number;
  frames_encode(
    descPtr: number,
    count: number,
    srcBase: number,
    outPtr: number,
    outCap: number,
    recordSizeMax: number,
    salt: number,
  ): number;
  frames_seal(ptr: number, len: number, recordSizeMax: number, salt: number): number;
  all_zero(ptr: number, len: number): number;
  all_ascii(ptr: number, len: number): number;
  scan_offset(): number;
  scan_count(): number;
  scan_frame_end(): number;
  encode_count(): number;
  encode_bytes(): number;
  /** Keys the alive set's hash (assembly/serf_state.ts); u64 values cross as signed BigInt. */
  hash_key(seed: bigint, s1: bigint, s2: bigint): void;
}

/**
 * Wasm memory could not grow (an instance has at most 2 GiB): a `RangeError`, told apart from
 * other ones (a stack overflow is one too) where a log must poison itself for it.
 */
export class WasmMemoryError extends RangeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RangeError";
  }
}

let compiled: WebAssembly.Module | undefined;

/** `Uint8Array` with `fromBase64` (TC39, in Deno's V8) where the runtime has it. */
const U8 = Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array<ArrayBuffer> };

/**
 * Decodes base64 (the embedded module). Native where the runtime has it (0.03 ms for the
 * module, against 2-3 ms for atob and a copy loop run once per process in V8's interpreter,
 * on the way to the first replay); `native: false` takes the portable path (tests).
 */
export function decodeBase64(b64: string, native = true): Uint8Array<ArrayBuffer> {
  if (native && typeof U8.fromBase64 === "function") return U8.fromBase64(b64);
  // With JSR reachable, @std/encoding/base64 decodeBase64 would do this.
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Makes `module` (the core module compiled by another thread, sent with postMessage) this
 * thread's: V8 shares its compiled code, optimized functions included, so a Worker neither
 * compiles the module again nor starts in the baseline tier.
 */
export function adoptCoreModule(module: WebAssembly.Module): void {
  compiled ??= module;
}

/** The compiled core module, compiled on first use and then shared by the process. */
export function coreModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(decodeBase64(WASM_BASE64));
  return compiled;
}

/**
 * One instance of the core with its own memory and allocator. Views of memory are
 * recreated after growth, so read {@link WasmCore.u8} again after any call that may
 * allocate (host `alloc`, or a Wasm call that grows a table).
 */
export class WasmCore {
  readonly exports: CoreExports;
  #u8: Uint8Array<ArrayBuffer>;
  #view: DataView<ArrayBuffer>;
  #hashKey: BigInt64Array;

  constructor() {
    const instance = new WebAssembly.Instance(coreModule(), {});
    this.exports = instance.exports as unknown as CoreExports;
    // The alive set's hash takes secret keys, so that names a cluster member picks cannot be
    // made to collide (hash flooding); each instance draws its own.
    this.#hashKey = crypto.getRandomValues(new BigInt64Array(3));
    this.#setHashKey(this.#hashKey);
    this.#u8 = new Uint8Array(this.exports.memory.buffer as ArrayBuffer);
    this.#view = new DataView(this.exports.memory.buffer as ArrayBuffer);
  }

  #setHashKey(key: BigInt64Array): void {
    this.exports.hash_key(key[0]!, key[1]!, key[2]!);
  }

  /**
   * Takes `other`'s hash key, so that a table copied from it as it is (its slots keep their
   * hashes) can be searched here. Only while this instance's alive set is empty or about to
   * be replaced: a table built under the old key cannot be searched under the new one.
   */
  useHashKeyOf(other: WasmCore): void {
    this.#hashKey = other.#hashKey;
    this.#setHashKey(this.#hashKey);
  }

  /** A byte view of the whole memory, valid until the memory next grows. */
  get u8(): Uint8Array<ArrayBuffer> {
    // memory.grow detaches the old buffer, which then reads as length 0. Checking that is
    // far cheaper than the `memory.buffer` accessor on every call.
    if (this.#u8.byteLength === 0) this.#refresh();
    return this.#u8;
  }

  /** A DataView of the whole memory, valid until the memory next grows. */
  get view(): DataView<ArrayBuffer> {
    // (A DataView throws on a detached buffer; the typed array reads 0, so test that.)
    if (this.#u8.byteLength === 0) this.#refresh();
    return this.#view;
  }

  #refresh(): void {
    // memory.grow detaches every earlier view of the memory.
    this.#u8 = new Uint8Array(this.exports.memory.buffer as ArrayBuffer);
    this.#view = new DataView(this.exports.memory.buffer as ArrayBuffer);
  }

  /**
   * Allocates `bytes` bytes (64-byte aligned from 64 bytes up) from the instance's allocator.
   *
   * @throws {RangeError} if the instance's memory cannot grow that far.
   */
  alloc(bytes: number): number {
    const ptr = this.exports.mem_alloc(bytes);
    if (ptr === 0) {
      throw new WasmMemoryError(
        `Cannot allocate ${bytes} bytes of Wasm memory: the memory cannot grow further`,
      );
    }
    return ptr;
  }

  /** Returns a block from {@link alloc} (pass the same size). */
  free(ptr: number, bytes: number): void {
    this.exports.mem_free(ptr, bytes);
  }
}

let shared: WasmCore | undefined;
/**
 * A process-wide instance for stateless calls (`crc32c`). Safe because every such call
 * copies its input in and finishes synchronously before returning.
 */
export function sharedCore(): WasmCore {
  shared ??= new WasmCore();
  return shared;
}
