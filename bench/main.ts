// `deno task bench [--short] [--json FILE] [--filter REGEX]`: the whole benchmark suite.
import { parseArgs } from "node:util";
import { printRows, runSuite } from "./_harness.ts";
import { registerCoreBenches } from "./core_bench.ts";
import { registerPhysicalBenches } from "./physical_bench.ts";
import { registerSnapshotBenches } from "./snapshot_bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    short: { type: "boolean", default: false },
    json: { type: "string" },
    filter: { type: "string" },
  },
});

const opts = { short: values.short ?? false };
// Each layer adds one register call here, in the order the report should show them.
registerCoreBenches(opts);
registerPhysicalBenches(opts);
registerSnapshotBenches(opts);

const rows = await runSuite({
  json: values.json !== undefined,
  ...(values.filter ? { filter: new RegExp(values.filter) } : {}),
});
printRows(rows);
if (values.json !== undefined) {
  const doc = { date: new Date().toISOString(), deno: Deno.version, rows };
  await Deno.writeTextFile(values.json, JSON.stringify(doc, null, 2) + "\n");
  console.log(`wrote ${values.json}`);
}
