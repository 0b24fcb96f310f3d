/**
 * The report of one experiment: its results table (mean ± std over seeds,
 * the paper's numbers beside ours) and its clone-accuracy-vs-queries figure,
 * read from results/<name>/ and written back as figure.html / figure.png.
 *
 * @module
 */
import type { Summary } from "../experiments/runner.ts";
import { groupCells } from "../experiments/rows.ts";
import { display, type Displayable } from "./display.ts";
import { barFigure, curveFigure, figureBundle, type PlotlySpec, writeFigureFiles } from "./figure.ts";
import { formatPaperCell, paperCell, paperSource } from "./paper.ts";
import { aggregate, type AggregateRow, type Column, formatDelta, formatStat, type Stat, tableBundle } from "./table.ts";
import { type TableVerdict, tableVerdict, unavailableVerdict, verdictDisplay } from "./verdict.ts";

/** A loaded experiment result. */
export interface ExperimentReport {
  /** summary.json. */
  summary: Summary;
  /** Aggregated rows (mean ± std per defense × attack). */
  table: AggregateRow[];
  /** The curve figure. */
  figure: PlotlySpec;
  /** The learning curves, one per (defense, attack, seed). */
  curves: CurvesFile["curves"];
}

/** Curves file written by the runner. */
export interface CurvesFile {
  /** One learning curve per (defense, attack, seed). */
  curves: {
    defense: string;
    attack: string;
    seed: number;
    /** Clone accuracy along the budget; DFME points also carry the run's diagnostics (see diagnostics.ts). */
    points: { queries: number; cloneAcc: number; diagnostics?: Record<string, number> }[];
  }[];
}

/** Reads results/<name>/ and aggregates it. */
export async function loadReport(dir: string): Promise<ExperimentReport> {
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`)) as Summary;
  const curves = JSON.parse(await Deno.readTextFile(`${dir}/curves.json`)) as CurvesFile;
  const table = aggregate(summary.rows, ["defense", "attack"], ["target_acc", "l1", "clone_acc"]);
  const figure = curveFigure(
    curves.curves.map((c) => ({ label: `${c.defense} / ${c.attack}`, points: c.points })),
    `${summary.meta.name}: clone accuracy vs queries (${summary.meta.profile} profile)`,
  );
  return { summary, table, figure, curves: curves.curves };
}

/** The metrics of a results row that tables show. */
export type Metric = "target_acc" | "l1" | "clone_acc";

const METRIC_HEADERS: Record<Metric, { header: string; percent: boolean; digits: number }> = {
  target_acc: { header: "target acc %", percent: true, digits: 2 },
  l1: { header: "L1", percent: false, digits: 4 },
  clone_acc: { header: "clone acc %", percent: true, digits: 2 },
};

function paperValue(name: string, r: AggregateRow, key: Metric): number | undefined {
  return paperCell(name, String(r.defense), String(r.attack), key)?.value;
}

/**
 * The columns of a defense × attack table: per metric ours (mean ± std), the
 * paper's (± its std where printed), and ours − paper (means); "—" where the
 * paper gives no number for the row's setting.
 */
export function reportColumns(name: string, metrics: Metric[] = ["target_acc", "l1", "clone_acc"]): Column[] {
  const stat = (k: string) => (r: AggregateRow) => r[k] as Stat | null;
  const cols: Column[] = [
    { header: "defense", cell: (r) => String(r.defense) },
    { header: "attack", cell: (r) => String(r.attack) },
    { header: "seeds", cell: (r) => String((r[metrics[0]] as Stat | null)?.n ?? 0) },
  ];
  for (const m of metrics) {
    const { header, percent, digits } = METRIC_HEADERS[m];
    const k = percent ? 100 : 1;
    cols.push(
      { header: `${header} (ours)`, cell: (r) => formatStat(stat(m)(r), percent, digits) },
      {
        header: `${header} (paper)`,
        cell: (r) => formatPaperCell(paperCell(name, String(r.defense), String(r.attack), m), digits),
      },
      {
        header: `Δ ${header}`,
        cell: (r) => {
          const s = stat(m)(r);
          return formatDelta(s === null ? null : s.mean * k, paperValue(name, r, m), digits);
        },
      },
    );
  }
  return cols;
}

/**
 * What a summary lacks of its config, for a caption: empty when complete (or written before it was recorded), else
 * the cells not yet stored and the command that computes them (the cached ones are gathered, not recomputed).
 */
export function missingCellsNote(meta: Summary["meta"]): string {
  const missing = meta.missing_cells ?? [];
  if (missing.length === 0) return "";
  return `. Not stored yet: ${missing.length} cell${missing.length === 1 ? "" : "s"} of the config, ${
    groupCells(missing)
  }; \`deno task repro configs/${meta.name}.yaml --profile ${meta.profile}\` computes them`;
}

/** The table as a notebook display (HTML + text); `metrics` picks the metric columns. */
export function tableDisplay(rep: ExperimentReport, metrics?: Metric[]): Displayable {
  const m = rep.summary.meta;
  const cols = reportColumns(m.name, metrics);
  const seeds = [...new Set(rep.summary.rows.map((r) => r.seed))].length;
  const caption = `${m.name} — profile ${m.profile}, ${seeds} seed${seeds === 1 ? "" : "s"}, budget ${
    m.budget ?? "none"
  }, backend ${m.backend}, commit ${m.commit.slice(0, 12)}, ${
    m.minutes.toFixed(1)
  } attack-minutes (wall minutes of the attacks, summed over rows); paper: ${paperSource(m.name)}${
    missingCellsNote(m)
  }`;
  return display(tableBundle(rep.table, cols, caption));
}

/** The verdict of a report's table (cells against the paper, claims on our arms); `metrics` as in the table. */
export function reportVerdict(rep: ExperimentReport, metrics?: Metric[]): TableVerdict {
  return tableVerdict(rep.summary.meta.name, rep.summary.meta.profile, rep.table, metrics);
}

/** The verdict under a report's table, as a notebook display. */
export function verdictOf(rep: ExperimentReport, metrics?: Metric[]): Displayable {
  return verdictDisplay(reportVerdict(rep, metrics));
}

/**
 * A figure as a notebook display: the Plotly MIME bundle, and the PNG when
 * {@linkcode writeFigure} rendered one (`base`: file name without extension).
 */
export async function figureDisplay(
  rep: ExperimentReport,
  dir: string,
  figure: PlotlySpec = rep.figure,
  base = "figure",
): Promise<Displayable> {
  return display(await figureBundle(figure, dir, base));
}

/**
 * Writes `<base>.html` (plotly.js inlined, with the commit and command under
 * the plot) and, when Chromium is installed, `<base>.png` into `dir`.
 */
export async function writeFigure(
  rep: ExperimentReport,
  dir: string,
  figure: PlotlySpec = rep.figure,
  base = "figure",
): Promise<{ html: string; png?: string }> {
  const m = rep.summary.meta;
  return await writeFigureFiles(figure, dir, base, `commit ${m.commit} — ${m.command}`);
}

/**
 * Bars of one metric per table row (mean ± std over seeds): percent for
 * accuracies, raw for L1; rows without the metric are left out. The value
 * axis is fitted to the bars (see {@linkcode barFigure}), so that a
 * difference of a few tenths of a point shows.
 */
export function metricBars(rep: ExperimentReport, metric: Metric, title?: string): PlotlySpec {
  const { header, percent } = METRIC_HEADERS[metric];
  const k = percent ? 100 : 1;
  const bars = rep.table.flatMap((r) => {
    const s = r[metric] as Stat | null;
    if (s === null || !Number.isFinite(s.mean)) return [];
    const label = r.attack === "none" ? String(r.defense) : `${r.defense} / ${r.attack}`;
    return [{ label, mean: s.mean * k, std: s.std * k }];
  });
  const m = rep.summary.meta;
  return barFigure(
    bars,
    title ?? `${m.name}: ${header} (${m.profile} profile, mean ± std over seeds)`,
    header,
  );
}

/**
 * Clone accuracy at given query counts (mean ± std over seeds), one row per
 * (defense, attack): the table behind a clone-accuracy-vs-budget figure.
 * Each budget takes the curve point at the largest query count not above it.
 */
export function budgetTable(rep: ExperimentReport, budgets: number[]): { rows: AggregateRow[]; columns: Column[] } {
  const flat: Record<string, unknown>[] = rep.curves.map((c) => {
    const r: Record<string, unknown> = { defense: c.defense, attack: c.attack, seed: c.seed };
    for (const b of budgets) {
      const at = c.points.filter((p) => p.queries <= b).at(-1);
      r[`q${b}`] = at === undefined ? null : at.cloneAcc;
    }
    return r;
  });
  const keys = budgets.map((b) => `q${b}`);
  const rows = aggregate(flat, ["defense", "attack"], keys);
  const columns: Column[] = [
    { header: "defense", cell: (r) => String(r.defense) },
    { header: "attack", cell: (r) => String(r.attack) },
    { header: "n", cell: (r) => String((r[keys[keys.length - 1]] as Stat | null)?.n ?? 0) },
    ...budgets.map((b, i) => ({
      header: `clone acc % @ ${b.toLocaleString("en-US")} queries`,
      cell: (r: AggregateRow) => formatStat(r[keys[i]] as Stat | null, true),
    })),
  ];
  return { rows, columns };
}

/** A table of any rows and columns as a notebook display (HTML, Markdown and text, through arquero). */
export function rowsDisplay(rows: AggregateRow[], columns: Column[], caption: string): Displayable {
  return display(tableBundle(rows, columns, caption));
}

/**
 * What a notebook shows when its config's results are not here (its data is
 * absent, or nothing was computed): the reason, and the verdict that nothing
 * could be compared.
 */
export function missingDisplay(name: string, missing: string): Displayable {
  const v = unavailableVerdict(name, "no results on this machine");
  const text = `${name}: not run here. ${missing}\nVerdict — ${v.sentence}`;
  return display({
    "text/markdown": `**${name}: not run on this machine.** ${
      missing.replaceAll("<", "&lt;")
    }\n\n**Verdict.** ${v.sentence}`,
    "text/plain": text,
  });
}
