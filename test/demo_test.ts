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
  assert.match(text, /5\. refused: Cannot write alive record: name contains "\\n"/);
});
