import assert from "node:assert/strict";
import { processProvenance, type RunProvenance, stamp, summariseProvenance } from "../../lib/experiments/provenance.ts";
import { toCsv } from "../../lib/experiments/results.ts";

const base = (over: Partial<RunProvenance>): RunProvenance => ({
  commit: "a".repeat(40),
  command: "deno task repro configs/x.yaml",
  date: "2026-01-01T00:00:00.000Z",
  backend: "wasm",
  onednn: "2.6.3",
  onednn_isa: "avx512_core",
  deno: "2.0.0",
  tfjs: "4.22.0",
  cpu: "Some CPU",
  cpus: 2,
  load: [1, 1, 1],
  ...over,
});

Deno.test("meta names the fields on which the rows' runs disagree, and counts rows without provenance", () => {
  const rows = [
    { provenance: base({}) },
    { provenance: base({ date: "2026-01-02T00:00:00.000Z", load: [3, 2, 1] }) },
    { provenance: base({ commit: "b".repeat(40), onednn_isa: "avx2", date: "2026-01-03T00:00:00.000Z" }) },
    {},
  ];
  const s = summariseProvenance(rows);
  assert.deepEqual(s.disagree, ["commit", "onednn_isa"], "dates and loads differ by nature and are not compared");
  assert.equal(s.runs, 2);
  assert.equal(s.rows_without, 1);
  assert.deepEqual(s.values.onednn_isa, ["avx512_core", "avx2"]);
  assert.deepEqual(s.dates, ["2026-01-01T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
  assert.deepEqual(summariseProvenance([{ provenance: base({}) }]).disagree, []);
});

Deno.test("this process's provenance: oneDNN only where the wasm backend ran its kernels", async () => {
  const p = await processProvenance("wasm", { ok: true, version: "2.6.3", isa: "avx2" }, "cmd");
  assert.equal(p.onednn, "2.6.3");
  assert.equal(p.onednn_isa, "avx2");
  assert.equal(p.command, "cmd");
  const cpu = await processProvenance("cpu", { ok: true, version: "2.6.3", isa: "avx2" }, "cmd");
  assert.equal(cpu.onednn, null);
  assert.equal(cpu.onednn_isa, null);
  const off = await processProvenance("wasm", { ok: false }, "cmd");
  assert.equal(off.onednn, null);
  const s = stamp(p);
  assert.ok(Math.abs(Date.parse(s.date) - Date.now()) < 60_000);
  assert.equal(s.load.length, 3);
});

Deno.test("rows.csv: the union of every row's fields, provenance as run_* columns", () => {
  const csv = toCsv([
    { defense: "undefended", clone_acc: 0.9, provenance: base({}) },
    { defense: "meco", clone_acc: 0.8, svgd_rms: 0.05 },
  ]);
  const [header, first, second] = csv.trim().split("\n");
  assert.equal(header, "defense,clone_acc,run_commit,run_date,run_backend,run_onednn_isa,run_cpu,svgd_rms");
  assert.match(first, /^undefended,0\.9,a{40},2026-01-01T00:00:00\.000Z,wasm,avx512_core,Some CPU,$/);
  assert.equal(second, "meco,0.8,,,,,,0.05");
});
