/**
 * DFME's diagnostics in a report: per arm, how well the zeroth-order estimate
 * still points along the true generator gradient (cosine) and how often the
 * defense changes the top-1 answer on the generator's images, from the
 * diagnostics the runner records at every curve point (measured on side
 * batches, outside the attack and its query count; see `dfmeDiagnostics`).
 *
 * @module
 */
import { display, type Displayable } from "./display.ts";
import type { ExperimentReport } from "./experiment_report.ts";
import { LEGEND_BELOW, meanTraces, type PlotlySpec, pointStats } from "./figure.ts";
import { aggregate, type AggregateRow, type Column, formatStat, type Stat, tableBundle } from "./table.ts";

/** What a curve point's diagnostics hold. */
export interface PointDiagnostics {
  /** Cosine of the estimated and the true generator-parameter gradient. */
  estimateCosine: number;
  /** The same cosine at the generated images. */
  imageCosine: number;
  /** Fraction of the side batch's images whose top-1 answer the defense changes. */
  top1Changed: number;
}

type DiagnosedPoint = { queries: number; diagnostics?: PointDiagnostics };

/** One row per (defense, attack, seed) with diagnostics: their means over the run's curve points. */
export function diagnosticsRows(rep: ExperimentReport): Record<string, string | number>[] {
  return rep.curves.flatMap((c) => {
    const pts = (c.points as unknown as DiagnosedPoint[]).filter((p) => p.diagnostics !== undefined);
    if (pts.length === 0) return [];
    const mean = (f: (d: PointDiagnostics) => number) => pts.reduce((s, p) => s + f(p.diagnostics!), 0) / pts.length;
    return [{
      defense: c.defense,
      attack: c.attack,
      seed: c.seed,
      estimate_cosine: mean((d) => d.estimateCosine),
      image_cosine: mean((d) => d.imageCosine),
      top1_changed: mean((d) => d.top1Changed),
    }];
  });
}

/** {@linkcode diagnosticsRows} as mean ± std over seeds per (defense, attack). */
export function diagnosticsTable(rep: ExperimentReport): AggregateRow[] {
  return aggregate(diagnosticsRows(rep), ["defense", "attack"], ["estimate_cosine", "image_cosine", "top1_changed"]);
}

const stat = (k: string) => (r: AggregateRow) => r[k] as Stat | null;

const COLUMNS: Column[] = [
  { header: "defense", cell: (r) => String(r.defense) },
  { header: "attack", cell: (r) => String(r.attack) },
  { header: "n", cell: (r) => String(stat("estimate_cosine")(r)?.n ?? 0) },
  { header: "cos(estimate, true), generator", cell: (r) => formatStat(stat("estimate_cosine")(r), false, 3) },
  { header: "cos(estimate, true), images", cell: (r) => formatStat(stat("image_cosine")(r), false, 3) },
  { header: "top-1 changed %", cell: (r) => formatStat(stat("top1_changed")(r), true, 2) },
];

/**
 * The diagnostics table as a notebook display (mean ± std over seeds of each run's mean over its curve points), or
 * a line saying that the rows were computed before diagnostics were recorded.
 */
export function diagnosticsDisplay(rep: ExperimentReport): Displayable {
  const rows = diagnosticsTable(rep);
  if (rows.length === 0) {
    const text = `${rep.summary.meta.name}: no DFME diagnostics in these results (no DFME run, or every run ` +
      "was computed before the runner recorded them)";
    return display({ "text/plain": text, "text/markdown": text });
  }
  const caption = `${rep.summary.meta.name}: DFME diagnostics, mean over each run's evaluation points, then ` +
    "mean ± std over seeds. Cosines compare the zeroth-order estimate with the exact gradient through the " +
    "target's logits on a side batch (outside the query count); top-1 changed: the defense's answers against " +
    "the target's own.";
  return display(tableBundle(rows, COLUMNS, caption));
}

/**
 * The estimate's cosine with the true generator gradient along the query budget, one line per arm (mean ± std
 * over seeds): a defense that disturbs the estimate pulls its line towards 0.
 */
export function diagnosticsFigure(rep: ExperimentReport): PlotlySpec {
  const flat = rep.curves.flatMap((c) =>
    (c.points as unknown as DiagnosedPoint[]).flatMap((p) =>
      p.diagnostics === undefined
        ? []
        : [{ label: `${c.defense} / ${c.attack}`, queries: p.queries, value: p.diagnostics.estimateCosine }]
    )
  );
  const labels = [...new Set(flat.map((f) => f.label))];
  const stats = pointStats(flat);
  const lo = Math.min(0, ...stats.map((s) => s.mean - s.std)), hi = Math.max(0, ...stats.map((s) => s.mean + s.std));
  const pad = Math.max(0.02, (hi - lo) * 0.08);
  return {
    data: meanTraces(labels, stats, (label) => Math.max(0, ...stats.filter((p) => p.label === label).map((p) => p.n))),
    layout: {
      title: { text: `${rep.summary.meta.name}: cosine of the zeroth-order estimate with the true gradient` },
      xaxis: { title: { text: "queries" } },
      yaxis: { title: { text: "cosine (generator parameters)" }, range: [lo - pad, hi + pad], zeroline: true },
      legend: LEGEND_BELOW,
      width: 760,
      height: 500,
    },
  };
}
