// Temporary directories for tests.

/** Runs `fn` with a fresh temporary directory, removed afterwards (also when `fn` throws). */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix = "snaplog_test_"): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
