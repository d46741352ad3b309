// mulberry32: a small, fast, seeded PRNG (one u32 of state). Shared by MemFs's torn-write
// crashes, the benchmark workload and the tests, so one seed means one sequence everywhere.

/** A seeded PRNG. Not for anything that needs unpredictability. */
export class Rng {
  #s: number;
  /** @param seed Any number; its low 32 bits are the state. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform u32. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** A uniform float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
  /** A random element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}
