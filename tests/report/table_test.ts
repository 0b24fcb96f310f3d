import assert from "node:assert/strict";
import {
  aggregate,
  csvTable,
  curveFigure,
  formatStat,
  htmlTableOf,
  markdownTable,
  type Stat,
  tableBundle,
} from "../../lib/report/mod.ts";
import { toCsv } from "../../lib/experiments/results.ts";

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
  assert.equal(formatStat(g[0].clone as Stat, true), "20.00", "no ± for a single seed");
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
  const band = (f.data[0].error_y as { array: number[] }).array;
  assert.ok(Math.abs(band[0] - 100 * Math.sqrt(0.02)) < 1e-9, "sample std over the two seeds");
  assert.equal((f.data[1].error_y as { visible: boolean }).visible, false, "no band for one seed");
});

Deno.test("curveFigure fits the accuracy axis to the curves, so close curves stay apart", () => {
  const f = curveFigure([
    { label: "a", points: [{ queries: 10, cloneAcc: 0.95 }, { queries: 20, cloneAcc: 0.96 }] },
    { label: "b", points: [{ queries: 10, cloneAcc: 0.94 }, { queries: 20, cloneAcc: 0.955 }] },
  ], "t");
  const [lo, hi] = (f.layout.yaxis as { range: [number, number] }).range;
  assert.ok(lo > 90 && lo < 94 && hi > 96 && hi <= 100, `range ${lo}..${hi}`);
});

Deno.test("tables render through arquero: HTML escaped, Markdown pipes escaped, CSV quoted", () => {
  const rows = [{ k: "<b>&", v: "a|b" }, { k: "x,y", v: 'say "hi"' }];
  const cols = [{ header: "k", cell: (r: Record<string, unknown>) => String(r.k) }, {
    header: "v",
    cell: (r: Record<string, unknown>) => String(r.v),
  }];
  const html = htmlTableOf(rows, cols);
  assert.ok(html.includes("&lt;b&gt;&amp;"));
  assert.ok(!html.includes("<b>&"));
  assert.match(html, /<table>.*<th[^>]*>k<\/th>/s);
  const md = markdownTable(rows, cols).split("\n");
  assert.equal(md[0], "|k|v|");
  assert.equal(md[2], "|<b>&|a\\|b|");
  assert.equal(csvTable(rows, cols), 'k,v\n<b>&,a|b\n"x,y","say ""hi"""\n');
  const bundle = tableBundle(rows, cols, "cap <1>");
  assert.ok(bundle["text/html"].startsWith("<p><b>cap &lt;1&gt;</b></p><table>"));
  assert.ok(bundle["text/plain"].startsWith("cap <1>\n|k|v|"));
  assert.throws(() => htmlTableOf(rows, [cols[0], cols[0]]), /appears twice/);
});

Deno.test("toCsv writes every column of the first row, empty for null, quoting as needed", () => {
  const csv = toCsv([{ a: 1, b: null, c: "x,y" }, { a: 2, b: 0.5, c: 'q"' }]);
  assert.equal(csv, 'a,b,c\n1,,"x,y"\n2,0.5,"q"""\n');
  assert.equal(toCsv([]), "");
});
