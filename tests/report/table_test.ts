import assert from "node:assert/strict";
import { aggregate, curveFigure, formatStat, htmlTable, type Stat } from "../../lib/report/mod.ts";

Deno.test("aggregate gives mean and sample std per group, skipping nulls, in first-seen order", () => {
  const rows = [
    { defense: "meco", attack: "dfme", seed: 0, acc: 0.9, clone: null },
    { defense: "undefended", attack: "dfme", seed: 0, acc: 0.99, clone: 0.8 },
    { defense: "meco", attack: "dfme", seed: 1, acc: 0.8, clone: 0.2 },
    { defense: "undefended", attack: "dfme", seed: 1, acc: 0.97, clone: 0.9 },
  ];
  const g = aggregate(rows, ["defense", "attack"], ["acc", "clone"]);
  assert.deepEqual(g.map((r) => r.defense), ["meco", "undefended"]);
  const acc = g[0].acc as Stat;
  assert.ok(Math.abs(acc.mean - 0.85) < 1e-12);
  assert.ok(Math.abs(acc.std - Math.sqrt(0.005)) < 1e-12); // sample std of {0.9, 0.8}
  assert.equal(acc.n, 2);
  assert.deepEqual(g[0].clone, { mean: 0.2, std: 0, n: 1 });
  assert.equal(formatStat(g[1].clone as Stat, true), "85.00 ± 7.07");
  assert.equal(formatStat(null, true), "—");
});

Deno.test("curveFigure averages seeds point-wise with a std band", () => {
  const f = curveFigure([
    { label: "a", points: [{ queries: 10, cloneAcc: 0.2 }, { queries: 20, cloneAcc: 0.4 }] },
    { label: "a", points: [{ queries: 10, cloneAcc: 0.4 }, { queries: 20, cloneAcc: 0.6 }] },
    { label: "b", points: [{ queries: 10, cloneAcc: 0.1 }] },
  ], "t");
  assert.equal(f.data.length, 2);
  assert.deepEqual(f.data[0].x, [10, 20]);
  const y = f.data[0].y as number[];
  assert.ok(Math.abs(y[0] - 30) < 1e-9 && Math.abs(y[1] - 50) < 1e-9);
  assert.match(String(f.data[0].name), /n=2/);
});

Deno.test("htmlTable escapes cell text", () => {
  const html = htmlTable([{ k: "<b>&" }], [{ header: "k", cell: (r) => String(r.k) }]);
  assert.ok(html.includes("&lt;b&gt;&amp;"));
  assert.ok(!html.includes("<b>&"));
});
