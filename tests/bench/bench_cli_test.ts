import assert from "node:assert/strict";
import { cpuName } from "../../lib/experiments/provenance.ts";

Deno.test("deno task bench: each line names the workload, its median and the machine it ran on", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/bench/main.ts", "--only", "defense_none_b1"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines.length, 1);
  const row = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(row), ["name", "ms", "backend", "cpu", "onednn", "onednn_isa"]);
  assert.equal(row.name, "defense_none_b1");
  assert.ok(row.ms > 0, lines[0]);
  assert.equal(row.cpu, cpuName());
  // oneDNN's version and ISA together, or neither (not loaded).
  assert.equal(row.onednn === null, row.onednn_isa === null, lines[0]);
  if (row.onednn !== null) assert.match(row.onednn_isa, /^[a-z0-9_]+$/);
});
