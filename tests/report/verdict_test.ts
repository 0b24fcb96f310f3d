import assert from "node:assert/strict";
import {
  aggregate,
  type CellInput,
  cellVerdict,
  claimsFor,
  claimVerdict,
  meanInterval,
  type PaperCell,
  studentTCdf,
  studentTQuantile,
  tableVerdict,
  verdictDisplay,
  welchInterval,
} from "../../lib/report/mod.ts";

const close = (a: number, b: number, eps = 1e-4) => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

Deno.test("Student t quantiles and CDF match published tables", () => {
  close(studentTQuantile(0.975, 1), 12.7062);
  close(studentTQuantile(0.975, 2), 4.3027);
  close(studentTQuantile(0.975, 4), 2.7764);
  close(studentTQuantile(0.975, 30), 2.0423);
  close(studentTQuantile(0.025, 5), -2.5706);
  close(studentTCdf(0, 3), 0.5, 1e-12);
  close(studentTCdf(2.3534, 3), 0.95, 1e-4);
});

Deno.test("Welch's interval matches a hand computation (df by Welch–Satterthwaite)", () => {
  // a = {1, 2, 3}: mean 2, s 1; b = {2, 4, 6, 8}: mean 5, s² 20/3.
  const i = welchInterval({ mean: 2, std: 1, n: 3 }, { mean: 5, std: Math.sqrt(20 / 3), n: 4 });
  const va = 1 / 3, vb = 20 / 3 / 4;
  const df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3);
  close(i.df, df, 1e-9);
  const half = studentTQuantile(0.975, df) * Math.sqrt(va + vb);
  close(i.lo, -3 - half, 1e-9);
  close(i.hi, -3 + half, 1e-9);
  assert.ok(i.hasInterval);
  const one = welchInterval({ mean: 2, std: 0, n: 1 }, { mean: 5, std: 1, n: 3 });
  assert.equal(one.hasInterval, false);
  assert.equal(one.lo, one.hi);
});

Deno.test("meanInterval is Student's t with n − 1 df around ours − reference", () => {
  const i = meanInterval({ mean: 10, std: 2, n: 4 }, 9);
  close(i.diff, 1, 1e-12);
  close(i.hi - i.diff, 3.1824 * 2 / 2, 1e-3);
});

const paper = (value: number, std?: number, unit = "%"): PaperCell => ({
  table: "3",
  row: "r",
  column: "c",
  metric: "target_acc",
  unit,
  value,
  std,
  printed: String(value),
});
const input = (ours: CellInput["ours"], p: PaperCell | undefined): CellInput => ({
  defense: "meco",
  attack: "none",
  metric: "target_acc",
  header: "target acc %",
  ours,
  paper: p,
});

Deno.test("a cell is reproduced when ours' 95% interval meets the paper's ±τ, not otherwise", () => {
  // Interval of Δ: 0.5 ± 4.303·0.1/√3 = [0.25, 0.75]; τ = printed std.
  assert.equal(cellVerdict(input({ mean: 99.5, std: 0.1, n: 3 }, paper(99, 0.3)), "local").outcome, "reproduced");
  assert.equal(cellVerdict(input({ mean: 99.5, std: 0.1, n: 3 }, paper(99, 0.2)), "local").outcome, "not reproduced");
  // No printed std: τ = 1 point for an accuracy, 10% for L1.
  assert.equal(cellVerdict(input({ mean: 90.9, std: 0, n: 1 }, paper(90)), "local").outcome, "reproduced");
  assert.equal(cellVerdict(input({ mean: 91.1, std: 0, n: 1 }, paper(90)), "local").outcome, "not reproduced");
  const l1 = cellVerdict(input({ mean: 0.0112, std: 0, n: 1 }, paper(0.0126, undefined, "l1")), "local");
  assert.equal(l1.outcome, "not reproduced");
  close(l1.tolerance!, 0.00126, 1e-12);
  const nc = cellVerdict(input({ mean: 1, std: 0, n: 1 }, undefined), "local");
  assert.equal(nc.outcome, "not comparable");
  assert.equal(cellVerdict(input({ mean: 99, std: 0, n: 1 }, paper(99)), "smoke").outcome, "not comparable");
  assert.equal(cellVerdict(input(null, paper(99)), "local").outcome, "not comparable");
});

const rows = [0, 1, 2].flatMap((seed) => [
  { defense: "undefended", attack: "dfme", seed, target_acc: 0.99 + seed * 0.001, l1: 0, clone_acc: 0.9 + seed * 0.01 },
  { defense: "meco", attack: "dfme", seed, target_acc: 0.985 + seed * 0.001, l1: 0.01, clone_acc: 0.5 + seed * 0.02 },
  { defense: "randp", attack: "dfme", seed, target_acc: 0.98, l1: 1, clone_acc: 0.45 + seed * 0.01 },
]);
const table = aggregate(rows, ["defense", "attack"], ["target_acc", "l1", "clone_acc"]);

Deno.test("claims follow the sign of Welch's interval: holds, does not hold, not shown", () => {
  const claims = claimsFor("mnist_baselines", table);
  const byText = (t: RegExp) => claimVerdict(claims.find((c) => t.test(c.statement))!, table);
  assert.equal(byText(/lowers the dfme clone/).outcome, "holds"); // 50–54 vs 90–92
  assert.equal(byText(/at most 1 point below/).outcome, "holds"); // −0.5 points
  assert.equal(byText(/than randp/).outcome, "does not hold"); // meco 52 vs randp 46
  const straddle = aggregate(
    [
      ...[0.5, 0.7, 0.3].map((c, seed) => ({ defense: "meco", attack: "dfme", seed, clone_acc: c })),
      ...[0.55, 0.45, 0.6].map((c, seed) => ({ defense: "undefended", attack: "dfme", seed, clone_acc: c })),
    ],
    ["defense", "attack"],
    ["clone_acc"],
  );
  const c = claimsFor("x", straddle).find((c) => c.metric === "clone_acc")!;
  assert.equal(claimVerdict(c, straddle).outcome, "not shown");
  const missing = claimVerdict({ ...c, a: { defense: "absent", attack: "dfme" } }, straddle);
  assert.equal(missing.outcome, "not testable");
});

Deno.test("the verdict sentence and display are generated from the numbers", () => {
  const v = tableVerdict("mnist_baselines", "local", table);
  const reproduced = v.cells.filter((c) => c.outcome === "reproduced").length;
  const comparable = v.cells.filter((c) => c.outcome !== "not comparable").length;
  assert.ok(comparable > 0);
  assert.ok(v.sentence.includes(`${reproduced} of ${comparable} comparable cells`), v.sentence);
  assert.match(v.sentence, /"meco's DFME clone is less accurate than randp's" does not hold \(Δ \+[0-9.]+ \[/);
  const bundle = verdictDisplay(v)[Symbol.for("Jupyter.display")]();
  assert.ok(String(bundle["text/plain"]).startsWith("Verdict — mnist_baselines (local profile)"));
  assert.match(String(bundle["text/html"]), /Welch's t, 95%/);
  const smoke = tableVerdict("mnist_baselines", "smoke", table);
  assert.ok(smoke.cells.every((c) => c.outcome === "not comparable"));
  assert.match(smoke.sentence, /smoke profile/);
});

Deno.test("threat-model claims: each protocol's MeCo arm against the undefended DFME clone, and the frozen control", () => {
  const tm = aggregate(
    [0, 1, 2, 3, 4].flatMap((seed) => [
      { defense: "undefended", attack: "dfme", seed, clone_acc: 0.97 + seed * 0.002 },
      { defense: "undefended", attack: "dfme_frozen_generator", seed, clone_acc: 0.93 + seed * 0.003 },
      { defense: "meco", attack: "dfme", seed, clone_acc: 0.965 + seed * 0.004 }, // no effect on a real black box
      { defense: "meco", attack: "dfme_official", seed, clone_acc: 0.6 + seed * 0.02 }, // a large one officially
    ]),
    ["defense", "attack"],
    ["clone_acc"],
  );
  const claims = claimsFor("mnist_threat_model", tm);
  const verdict = (t: RegExp) => claimVerdict(claims.find((c) => t.test(c.statement))!, tm);
  assert.equal(verdict(/^meco lowers the DFME clone's accuracy vs undefended under the official/).outcome, "holds");
  assert.equal(verdict(/learning generator/).outcome, "holds");
  const real = verdict(/^meco lowers the dfme clone's accuracy vs undefended$/);
  assert.notEqual(real.outcome, "holds", "no effect on a real black box is not a protection");
  // meco_official has no rows here: its claim cannot be shown.
  assert.ok(claims.some((c) => /meco_official .*official protocol/.test(c.statement)));
});
