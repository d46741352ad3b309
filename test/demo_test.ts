import assert from "node:assert/strict";

Deno.test("deno task demo runs end to end and shows each step", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(text, /1\. 200,000 serf events handled/);
  assert.match(text, /torn tail of \d+ bytes cut off; evidence kept in serf\.snapshot\.broken/);
  assert.match(text, /alive set intact: true/);
  assert.match(text, /3\. compaction: /);
  assert.match(text, /replayed as go-text: \d+ alive, same set: true/);
  assert.match(
    text,
    /5\. refused: Cannot write alive record to ".*serf-text\.snapshot": name contains "\\n"/,
  );
  assert.match(text, /the file's last entry \(readSnapshotRecords\): offset \d+: torn tail: 35 bytes/);
  assert.match(text, /3\. compaction: ([\d,]+) → ([\d,]+) bytes/);
  const [, from, to] = /3\. compaction: ([\d,]+) → ([\d,]+) bytes/.exec(text)!;
  assert.ok(
    Number(to!.replaceAll(",", "")) < Number(from!.replaceAll(",", "")),
    "the compaction shrinks the file",
  );
  assert.match(
    text,
    /6\. refused: Cannot write "serf\.snapshot": "serf\.snapshot" is no longer the file this log writes/,
  );
});
