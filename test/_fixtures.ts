// The Go serf fixtures: snapshot files and what the real serf v0.9.4 replay recovered from
// each (../shared/fixtures/serf-go/README.md). Tests load every file in the folder, not a
// fixed list, so fixtures added later are checked too.

/** The fixture folder, relative to this repository. */
export const FIXTURES: URL = new URL("../../shared/fixtures/serf-go/", import.meta.url);

/** Names of every `*.snapshot` in the folder, sorted. */
export function fixtureNames(): string[] {
  return [...Deno.readDirSync(FIXTURES)]
    .filter((e) => e.isFile && e.name.endsWith(".snapshot"))
    .map((e) => e.name)
    .sort();
}

/** The file-system path of fixture `name`. */
export function fixturePath(name: string): string {
  return new URL(name, FIXTURES).pathname;
}
