// Seeded randomness for tests and fuzzers: every run prints its seed, and
// SNAPLOG_SEED=<n> replays it exactly.

/** A small, fast, seeded PRNG (mulberry32). */
export class Rng {
  #s: number;
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
  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
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

/** The seed for test `name`: SNAPLOG_SEED if set, else a fresh one. Printed so a failure can be replayed. */
export function testSeed(name: string): number {
  const env = Deno.env.get("SNAPLOG_SEED");
  const seed = env !== undefined ? Number(env) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  console.log(`${name}: seed ${seed} (replay with SNAPLOG_SEED=${seed})`);
  return seed;
}

/** Iterations for fuzz loops: small by default, SNAPLOG_FUZZ_ITERATIONS to run longer. */
export function fuzzIterations(defaultCount: number): number {
  const env = Deno.env.get("SNAPLOG_FUZZ_ITERATIONS");
  return env !== undefined ? Number(env) : defaultCount;
}
