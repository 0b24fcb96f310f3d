import assert from "node:assert/strict";
import { ensureCostResults } from "../../lib/bench/cost_report.ts";
import type { CostSummary } from "../../lib/bench/cost_report.ts";
import { latencyFigure, latencyTable, loadCost, memoryTable, trainingTable } from "../../lib/report/cost.ts";
import type { Displayable } from "../../lib/report/display.ts";
import {
  COST_METRICS,
  PAPER,
  paperCell,
  paperCost,
  type PaperCostMetric,
  type PaperNumbers,
  paperSource,
} from "../../lib/report/paper.ts";
import { formatDelta } from "../../lib/report/table.ts";

function row(defense: string, type: string, ms_b1: number, ms_b256: number) {
  return {
    defense,
    type,
    target_acc: 0.99,
    l1: type === "none" ? 0 : 0.5,
    ms_b1,
    ms_b256,
    reps_b1: 10,
    reps_b256: 3,
    ms_per_query_b256: ms_b256 / 256,
    peak_bytes_b256: 8 * 2 ** 20,
    peak_extra_bytes_b256: 6 * 2 ** 20,
    owned_bytes: type === "none" ? 0 : 2 ** 20,
    peak_alone_bytes_b256: type === "none" ? 6.5 * 2 ** 20 : 7.5 * 2 ** 20,
    slowdown_b1: ms_b1 / 0.2,
    slowdown_b256: ms_b256 / 25.6,
  };
}

const SUMMARY: CostSummary = {
  meta: {
    name: "defense_cost",
    commit: "0123456789abcdef",
    command: "deno task cost",
    backend: "wasm",
    profile: "local",
    config_hash: "h",
    seed: 0,
    reps: { rounds: 1, b1: 1, b256: 1 },
    memory: "tensor bytes",
    minutes: 1,
    generated: "2026-01-01T00:00:00Z",
  },
  rows: [row("undefended", "none", 0.2, 25.6), row("mad", "mad", 0.5, 51.2), row("meco", "meco", 2, 256)],
  meco_speedup: { undefended: { b1: 0.1, b256: 0.1 }, mad: { b1: 0.25, b256: 0.2 } },
  training: {
    steps: 10,
    plain_batch_size: 128,
    meco_batch_size: 128,
    plain_ms_per_step: 50,
    meco_ms_per_step: 1400,
    overhead_per_image: 28,
    plain_minutes_full: 5,
    meco_minutes_full: 14.5,
  },
};

const bundle = (d: Displayable) => d[Symbol.for("Jupyter.display")]();
const text = (d: Displayable) => String(bundle(d)["text/plain"]);
const html = (d: Displayable) => String(bundle(d)["text/html"]);

Deno.test("cost tables: ours beside the paper's column, per defense, in the units named", () => {
  const lat = latencyTable(SUMMARY);
  assert.match(html(lat), /ms\/query b1 \(paper\)/);
  const lines = text(lat).split("\n");
  const mad = lines.find((l) => l.startsWith("|mad|"))!;
  // 0.5 ms at batch 1, 51.2 / 256 = 0.2 ms per query at 256, 2.5× the undefended victim, MeCo's time over its: 0.25
  for (const v of ["0.500", "0.200", "2.50", "0.25"]) assert.ok(mad.includes(v), `${v} in ${mad}`);
  assert.ok(lines.find((l) => l.startsWith("|meco|"))!.includes("—"), "no speed-up of MeCo over itself");
  const mem = text(memoryTable(SUMMARY)).split("\n").find((l) => l.startsWith("|mad|"))!;
  for (const v of ["1.000", "6.000", "7.50"]) assert.ok(mem.includes(v), `${v} in ${mem}`);
  const tr = text(trainingTable(SUMMARY));
  assert.match(tr, /\|meco\|128\|1400\.0\|28\.0\|14\.5\|/);
  assert.match(html(trainingTable(SUMMARY)), /\(paper\)/);
  assert.match(text(trainingTable({ ...SUMMARY, training: null })), /no MeCo defense/);
});

Deno.test("cost figure: grouped bars of ms per query at batch 1 and 256 on a log axis", () => {
  const f = latencyFigure(SUMMARY) as { data: { x: string[]; y: number[] }[]; layout: { yaxis: { type: string } } };
  assert.deepEqual(f.data[0].x, ["undefended", "mad", "meco"]);
  assert.deepEqual(f.data[0].y, [0.2, 0.5, 2]);
  assert.deepEqual(f.data[1].y, [0.1, 0.2, 1]);
  assert.equal(f.layout.yaxis.type, "log");
});

Deno.test("paper cost numbers: Tables 13–15 are mapped to defense_cost; a lookup returns exactly the file's number", () => {
  assert.match(paperSource("defense_cost"), /Table 13 .*Table 14 .*Table 15/);
  // Every cost number in the data file is what paperCost returns for its defense and metric; none is made up.
  for (const c of PAPER.numbers.filter((c) => ["13", "14", "15"].includes(c.table))) {
    assert.equal(paperCost("defense_cost", c.defense!, c.metric as PaperCostMetric), c.value, `${c.row} ${c.column}`);
  }
  for (const m of COST_METRICS) {
    const listed = PAPER.numbers.some((c) =>
      ["13", "14", "15"].includes(c.table) && c.defense === "meco" && c.metric === m
    );
    if (!listed) assert.equal(paperCost("defense_cost", "meco", m), undefined, `${m} is not in the file`);
  }
  assert.equal(paperCost("no_such_experiment", "meco", "ms_b1"), undefined);
  // With a Table 13 number in the file, the latency table shows it and ours − paper.
  const withCost: PaperNumbers = {
    ...PAPER,
    numbers: [...PAPER.numbers, {
      table: "13",
      row: "MeCo",
      column: "MNIST / batch 1",
      dataset: "mnist",
      defense: "meco",
      metric: "ms_b1",
      unit: "ms",
      value: 1.5,
      printed: "1.5",
    }],
  };
  assert.equal(paperCost("defense_cost", "meco", "ms_b1", withCost), 1.5);
  assert.equal(paperCost("defense_cost", "mad", "ms_b1", withCost), paperCost("defense_cost", "mad", "ms_b1"));
});

Deno.test("cost tables: target accuracy and L1 beside the paper's Table 3 (MNIST) where the defense is in it", () => {
  const lines = text(latencyTable(SUMMARY)).split("\n");
  const head = lines.find((l) => l.startsWith("|defense|"))!;
  assert.match(head, /target acc % \(ours\)\|target acc % \(paper\)\|Δ target acc %\|L1 \(ours\)\|L1 \(paper\)/);
  const cell = (defense: string, m: "target_acc" | "l1") => paperCell("defense_cost", defense, "none", m)!;
  const mad = lines.find((l) => l.startsWith("|mad|"))!;
  const p = cell("mad", "target_acc");
  assert.ok(mad.includes(`${p.value.toFixed(2)} ± ${p.std!.toFixed(2)}`), mad);
  assert.ok(mad.includes(formatDelta(99, p.value, 2)), mad);
  assert.ok(mad.includes(formatDelta(0.5, cell("mad", "l1").value, 4)), mad);
  const meco = lines.find((l) => l.startsWith("|meco|"))!;
  assert.ok(meco.includes(formatDelta(0.5, cell("meco", "l1").value, 4)), meco);
});

Deno.test("ensureCostResults measures once, then reuses the stored results of the same config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "meco-cost-" });
  const cache = await Deno.makeTempDir({ prefix: "meco-cost-cache-" });
  const saved = Deno.env.get("MECO_CACHE_DIR");
  Deno.env.set("MECO_CACHE_DIR", cache);
  try {
    const lines: string[] = [];
    const notAsked = await ensureCostResults("defense_cost.yaml", {
      profile: "smoke",
      resultsDir: dir,
      recompute: false,
    });
    assert.ok(
      !notAsked.recomputed &&
        /no stored cost results.*deno task cost configs\/defense_cost.yaml/.test(notAsked.missing!),
    );
    const first = await ensureCostResults("defense_cost.yaml", {
      profile: "smoke",
      resultsDir: dir,
      log: (m) => lines.push(m),
      recompute: true,
    });
    assert.ok(first.recomputed);
    const s = await loadCost(dir);
    assert.equal(s.meta.config_hash, first.loaded.hash);
    assert.equal(s.meta.command, "deno task cost configs/defense_cost.yaml --profile smoke");
    assert.deepEqual(s.rows.map((r) => r.defense), ["undefended", "randp", "mad", "grad", "top1", "meco"]);
    assert.ok(s.training !== null && s.training.meco_ms_per_step > 0);
    const csv = await Deno.readTextFile(`${dir}/rows.csv`);
    assert.equal(csv.trim().split("\n").length, 1 + s.rows.length);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["rows.csv", "summary.json"],
      "no temp files",
    );
    const again = await ensureCostResults("defense_cost.yaml", { profile: "smoke", resultsDir: dir, log: () => {} });
    assert.ok(!again.recomputed);
    await Deno.writeTextFile(`${dir}/summary.json`, JSON.stringify({ meta: {} }));
    await assert.rejects(() => loadCost(dir), /not a cost summary/);
  } finally {
    if (saved === undefined) Deno.env.delete("MECO_CACHE_DIR");
    else Deno.env.set("MECO_CACHE_DIR", saved);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
});
