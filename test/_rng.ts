// Seeded randomness for tests and fuzzers: every run prints its seed, and
// SNAPLOG_SEED=<n> replays it exactly.

export { Rng } from "../src/_rng.ts";

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
