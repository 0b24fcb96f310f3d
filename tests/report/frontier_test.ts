import assert from "node:assert/strict";
import {
  aggregate,
  type ExperimentReport,
  frontierDisplay,
  frontierFigure,
  frontierLabel,
  frontierPoints,
  frontierSentence,
  frontierVerdict,
  glanceVerdict,
  storedVerdict,
} from "../../lib/report/mod.ts";
import type { Summary } from "../../lib/experiments/rows.ts";

function report(name = "frontier_x"): ExperimentReport {
  const settings: [string, number, number, number][] = [
    // label, target acc, L1, clone acc (seed 0; seeds 1 and 2 add ±0.005 on the clone)
    ["undefended", 0.99, 0, 0.9],
    ["randp@1", 0.985, 0.9, 0.85],
    ["randp@0.25", 0.99, 0.25, 0.89],
    ["randp@0.5", 0.988, 0.5, 0.88],
    ["mad@1", 0.5, 1, 0.3], // strong but costs half the accuracy
    ["meco@1", 0.986, 0.01, 0.95],
  ];
  const rows = settings.flatMap(([label, t, l1, c]) =>
    [0, 1, 2].map((seed) => ({
      defense: label,
      attack: "dfme",
      seed,
      target_acc: t,
      l1,
      clone_acc: c + (seed - 1) * 0.005,
      queries: 1,
      minutes: 1,
    }))
  );
  const summary = { meta: { name, profile: "local", budget: 500000 }, rows } as unknown as Summary;
  return {
    summary,
    table: aggregate(rows, ["defense", "attack"], ["target_acc", "l1", "clone_acc"]),
    figure: { data: [], layout: {} },
    curves: [],
  };
}

Deno.test("frontier labels split into family and strength", () => {
  assert.deepEqual(frontierLabel("randp@0.5"), { family: "randp", strength: "0.5" });
  assert.deepEqual(frontierLabel("top1"), { family: "top1", strength: "" });
});

Deno.test("frontier points: families in order of appearance, settings by numeric strength", () => {
  const p = frontierPoints(report());
  assert.deepEqual(p.map((x) => x.label), ["undefended", "randp@0.25", "randp@0.5", "randp@1", "mad@1", "meco@1"]);
});

Deno.test("frontier verdict: the strongest setting within one point of accuracy, against the undefended clone", () => {
  const v = frontierVerdict(frontierPoints(report()));
  const by = Object.fromEntries(v.map((x) => [x.family, x]));
  assert.equal(by.randp.best?.label, "randp@1", "randp@1 costs 0.5 point and protects most");
  assert.equal(by.randp.outcome, "lowers the clone");
  assert.ok(Math.abs(by.randp.interval!.diff - -5) < 1e-9);
  assert.equal(by.mad.outcome, "no setting within the cost", "mad@1 costs 49 points");
  assert.equal(by.meco.outcome, "does not lower it");
  const s = frontierSentence("frontier_x", v);
  assert.match(s, /randp \(1\): lowers the clone, Δ -5\.00 \[/);
  assert.match(s, /mad: no setting keeps accuracy within 1 point/);
});

Deno.test("frontier figures: one curve per family with strengths as labels, L1 on a log axis, the undefended line", () => {
  const acc = frontierFigure(report(), "target_acc");
  assert.deepEqual(acc.data.map((d) => d.name), ["randp", "mad", "meco"]);
  assert.deepEqual(acc.data[0].text, ["0.25", "0.5", "1"]);
  assert.equal((acc.layout.shapes as { y0: number }[])[0].y0, 90);
  const l1 = frontierFigure(report(), "l1");
  assert.equal((l1.layout.xaxis as { type: string }).type, "log");
  assert.deepEqual(l1.data[2].x, [0.01]);
});

Deno.test("frontier table: the paper's Table 3 utility beside the settings it reports, with the cells' verdict", () => {
  const d = frontierDisplay(report("mnist_frontier"));
  const bundle = (d as unknown as { [k: symbol]: () => Record<string, string> })[Symbol.for("Jupyter.display")]();
  const md = bundle["text/markdown"];
  assert.match(md, /\|randp\|1\|3\|98\.50 ± 0\.00\|98\.52\|0\.9000 ± 0\.0000\|1\|/);
  assert.match(md, /\|randp\|0\.25\|3\|99\.00 ± 0\.00\|—\|/, "settings the paper does not report have no paper number");
  assert.match(md, /\|undefended\|—\|3\|99\.00 ± 0\.00\|98\.91\|/);
  assert.match(
    md,
    /At the paper's settings \(Table 3\): mnist_frontier \(local profile\): \d+ of \d+ comparable cells/,
  );
  assert.match(bundle["text/html"], /target acc % \(paper\)/);
});

Deno.test("a frontier's stored verdict (the README glance) is its own: paper cells and one claim per family", () => {
  const rep = report("mnist_frontier");
  const v = storedVerdict(rep.summary);
  assert.deepEqual(v.claims.map((c) => [c.claim.a.defense, c.outcome]), [
    ["randp@1", "holds"],
    ["mad", "not testable"],
    ["meco@1", "does not hold"],
  ]);
  assert.ok(v.cells.some((c) => c.outcome !== "not comparable"), "the paper's Table 3 cells are compared");
  assert.match(v.sentence, /^mnist_frontier, the strongest protection of each defense/);
  assert.match(
    glanceVerdict(v, 3),
    /"randp lowers the DFME clone's accuracy at a cost of at most 1 point of accuracy": holds/,
  );
});

Deno.test("frontier verdict: a cost of exactly one point counts; one seed gives a direction only", () => {
  const points = frontierPoints(report());
  const base = points.find((p) => p.family === "undefended")!;
  const one = (mean: number) => ({ mean, std: 0, n: 1 });
  const v = frontierVerdict([
    { ...base, target_acc: one(0.99), clone_acc: one(0.9) },
    { label: "x@1", family: "x", strength: "1", target_acc: one(0.98), l1: one(0.5), clone_acc: one(0.8) },
  ]);
  assert.equal(v[0].best?.label, "x@1", "0.99 − 0.98 is one point (up to rounding)");
  assert.equal(v[0].outcome, "direction agrees");
});

Deno.test("a summary gathered before every cell was computed says which cells it lacks, under the table", () => {
  const rep = report("mnist_frontier");
  const bundle = (r: ExperimentReport) =>
    (frontierDisplay(r) as unknown as { [k: symbol]: () => Record<string, string> })[Symbol.for("Jupyter.display")]();
  assert.doesNotMatch(bundle(rep)["text/plain"], /Not stored yet/);
  rep.summary.meta.missing_cells = ["top1/dfme seed 0", "top1/dfme seed 1", "meco@2/dfme seed 2"];
  const partial = bundle(rep)["text/markdown"];
  assert.match(
    partial,
    /Not stored yet: 3 cells of the config, top1\/dfme \(seeds 0, 1\), meco@2\/dfme \(seed 2\); `deno task repro configs\/mnist_frontier\.yaml --profile local` computes them/,
  );
});
