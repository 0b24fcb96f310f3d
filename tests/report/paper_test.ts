import assert from "node:assert/strict";
import {
  budgetTable,
  type ExperimentReport,
  metricBars,
  PAPER,
  paperRow,
  paperSource,
  reportColumns,
} from "../../lib/report/mod.ts";
import { aggregate } from "../../lib/report/table.ts";

Deno.test("paper_numbers.json is well formed: known tables, metrics and experiments only", () => {
  const metrics = new Set(["target_acc", "l1", "clone_acc"]);
  for (const [id, t] of Object.entries(PAPER.tables)) {
    assert.ok(t.title.length > 0 && t.status.length > 0, `table ${id}`);
    for (const c of t.cells ?? []) {
      assert.ok(metrics.has(c.metric), `table ${id}: metric ${c.metric}`);
      assert.ok(Number.isFinite(c.value), `table ${id}: value ${c.value}`);
      if (c.metric !== "l1") assert.ok(c.value >= 0 && c.value <= 100, `table ${id}: ${c.value} is not a percentage`);
    }
    if (t.status === "unavailable") assert.equal(t.cells?.length ?? 0, 0, `table ${id} is unavailable but has cells`);
  }
  for (const [name, e] of Object.entries(PAPER.experiments)) {
    for (const t of e.tables) assert.ok(PAPER.tables[t] !== undefined, `${name} mirrors unknown table ${t}`);
  }
});

Deno.test("paper rows: utility numbers apply to every attack; unknown rows and experiments give nothing", () => {
  assert.deepEqual(paperRow("mnist_dfme", "meco", "dfme"), { target_acc: 98.6, l1: 0.0126 });
  assert.deepEqual(paperRow("mnist_utility", "meco", "none"), { target_acc: 98.6, l1: 0.0126 });
  assert.equal(paperRow("mnist_dfme", "randp", "dfme"), undefined);
  assert.equal(paperRow("no_such_experiment", "meco", "dfme"), undefined);
  assert.match(paperSource("mnist_dfme"), /^Table 7 \(unavailable\); Table 3 \(partial/);
  assert.match(paperSource("no_such_experiment"), /no table/);
});

const report: ExperimentReport = {
  summary: {
    meta: {
      name: "mnist_dfme",
      commit: "c",
      command: "x",
      backend: "wasm",
      profile: "local",
      config_hash: "h",
      cache_version: 1,
      budget: 400,
      seeds: [0, 1],
      minutes: 1,
      generated: "",
    },
    rows: [],
  },
  table: aggregate(
    [
      { defense: "meco", attack: "dfme", target_acc: 0.99, l1: 0.01, clone_acc: 0.5 },
      { defense: "meco", attack: "dfme", target_acc: 0.98, l1: 0.02, clone_acc: 0.7 },
    ],
    ["defense", "attack"],
    ["target_acc", "l1", "clone_acc"],
  ),
  figure: { data: [], layout: {} },
  curves: [
    {
      defense: "meco",
      attack: "dfme",
      seed: 0,
      points: [{ queries: 100, cloneAcc: 0.2 }, { queries: 400, cloneAcc: 0.5 }],
    },
    {
      defense: "meco",
      attack: "dfme",
      seed: 1,
      points: [{ queries: 100, cloneAcc: 0.4 }, { queries: 400, cloneAcc: 0.7 }],
    },
  ],
};

Deno.test("report columns put the paper's number and ours − paper beside ours", () => {
  const cols = reportColumns("mnist_dfme");
  const cell = (h: string) => cols.find((c) => c.header === h)!.cell(report.table[0]);
  assert.equal(cell("target acc % (ours)"), "98.50 ± 0.71");
  assert.equal(cell("target acc % (paper)"), "98.60");
  assert.equal(cell("Δ target acc %"), "-0.10");
  assert.equal(cell("L1 (paper)"), "0.0126");
  assert.equal(cell("Δ L1"), "+0.0024");
  assert.equal(cell("clone acc % (paper)"), "—");
  assert.equal(cell("Δ clone acc %"), "—");
  assert.deepEqual(reportColumns("mnist_dfme", ["l1"]).map((c) => c.header).slice(3), [
    "L1 (ours)",
    "L1 (paper)",
    "Δ L1",
  ]);
});

Deno.test("the budget table takes each curve's last point at or below each budget", () => {
  const { rows, columns } = budgetTable(report, [50, 100, 399, 400]);
  const cells = columns.map((c) => c.cell(rows[0]));
  assert.deepEqual(cells, ["meco", "dfme", "—", "30.00 ± 14.14", "30.00 ± 14.14", "60.00 ± 14.14"]);
});

Deno.test("metric bars show percentages with the std as error bars", () => {
  const fig = metricBars(report, "clone_acc");
  assert.deepEqual(fig.data[0].x, ["meco / dfme"]);
  const y = fig.data[0].y as number[];
  assert.equal(y.length, 1);
  assert.ok(Math.abs(y[0] - 60) < 1e-9, `bar at ${y[0]}`);
  assert.ok(Math.abs((fig.data[0].error_y as { array: number[] }).array[0] - 14.142) < 1e-3);
});
