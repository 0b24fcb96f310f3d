/**
 * Result tables through arquero end to end: rows grouped into mean ± std and
 * n per setting (`groupby` + `rollup`), display columns derived from them
 * (`derive`), rendered by arquero's `toHTML`, `toMarkdown` and `toCSV`.
 *
 * @module
 */
import * as aq from "arquero";

/** Mean, sample standard deviation and count of one metric in one group. */
export interface Stat {
  /** Mean over seeds. */
  mean: number;
  /** Sample standard deviation (0 for a single seed). */
  std: number;
  /** Number of seeds. */
  n: number;
}

/** One aggregated group: the key columns and a {@linkcode Stat} per metric. */
export type AggregateRow = Record<string, string | number | Stat | null>;

/**
 * Groups `rows` by `keys` and computes mean ± std of each metric (nulls are
 * skipped), keeping first-appearance order of groups.
 *
 * @example
 * ```ts ignore
 * aggregate(summary.rows, ["defense", "attack"], ["target_acc", "l1", "clone_acc"]);
 * ```
 */
export function aggregate(
  rows: Record<string, unknown>[],
  keys: string[],
  metrics: string[],
): AggregateRow[] {
  if (rows.length === 0) return [];
  const table = aq.from(rows.map((r, i) => ({ ...r, __order: i })));
  const rollups: Record<string, unknown> = { __order: aq.op.min("__order") };
  for (const m of metrics) {
    rollups[`${m}__mean`] = aq.op.mean(m);
    rollups[`${m}__std`] = aq.op.stdev(m);
    rollups[`${m}__n`] = aq.op.valid(m);
  }
  const grouped = table.groupby(...keys).rollup(rollups as Record<string, string>).orderby("__order");
  return (grouped.objects() as Record<string, unknown>[]).map((g) => {
    const out: AggregateRow = {};
    for (const k of keys) out[k] = g[k] as string | number;
    for (const m of metrics) {
      const n = Number(g[`${m}__n`] ?? 0);
      out[m] = n === 0 ? null : {
        mean: Number(g[`${m}__mean`]),
        std: n > 1 ? Number(g[`${m}__std`]) : 0,
        n,
      };
    }
    return out;
  });
}

/** Ours − the paper's as "+1.23" / "-0.40", or "—" when either is missing or ours is not finite. */
export function formatDelta(ours: number | null | undefined, paper: number | undefined, digits: number): string {
  if (ours === null || ours === undefined || paper === undefined || !Number.isFinite(ours)) return "—";
  const d = ours - paper;
  return `${d >= 0 ? "+" : ""}${d.toFixed(digits)}`;
}

/**
 * "98.91 ± 0.05" (percent when `percent`); a single seed shows its value
 * alone (no ± for n = 1); "—" for a missing stat.
 */
export function formatStat(s: Stat | null | undefined, percent: boolean, digits = 2): string {
  if (s === null || s === undefined || !Number.isFinite(s.mean)) return "—";
  const k = percent ? 100 : 1;
  return s.n > 1 ? `${(s.mean * k).toFixed(digits)} ± ${(s.std * k).toFixed(digits)}` : (s.mean * k).toFixed(digits);
}

/** A rendered column: header and how to format a row's cell. */
export interface Column {
  /** Header text. */
  header: string;
  /** Cell text for a row. */
  cell: (row: AggregateRow) => string;
}

/**
 * The rows as an arquero table of display text: one column per
 * {@linkcode Column}, derived from the rows by its `cell` function. Headers
 * must be unique.
 */
export function displayTable(rows: AggregateRow[], cols: Column[]): aq.ColumnTable {
  const headers = cols.map((c) => c.header);
  const dup = headers.find((h, i) => headers.indexOf(h) !== i);
  if (dup !== undefined) throw new Error(`displayTable: column header "${dup}" appears twice`);
  const base = aq.from(rows.map((_, i) => ({ __row: i })));
  const source = rows;
  const derived: Record<string, unknown> = {};
  for (const c of cols) derived[c.header] = aq.escape((d: { __row: number }) => c.cell(source[d.__row]));
  return base.derive(derived as Record<string, string>).select(...headers);
}

function escapeText(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** The rows as GitHub-flavoured Markdown (arquero's `toMarkdown`, which escapes pipes in cells). */
export function markdownTable(rows: AggregateRow[], cols: Column[]): string {
  return displayTable(rows, cols).toMarkdown();
}

/** The rows as an HTML table (arquero's `toHTML`, which escapes the cell text). */
export function htmlTableOf(rows: AggregateRow[], cols: Column[]): string {
  return displayTable(rows, cols).toHTML();
}

/** The rows as CSV (arquero's `toCSV`), as displayed. */
export function csvTable(rows: AggregateRow[], cols: Column[]): string {
  return displayTable(rows, cols).toCSV();
}

/**
 * A captioned table as a notebook MIME bundle: HTML (the caption as a
 * paragraph above arquero's table), Markdown and plain text (the caption,
 * then the Markdown table).
 */
export function tableBundle(rows: AggregateRow[], cols: Column[], caption: string): Record<string, string> {
  const md = markdownTable(rows, cols);
  return {
    "text/html": `<p><b>${escapeText(caption)}</b></p>${htmlTableOf(rows, cols)}`,
    "text/markdown": `**${caption.replaceAll("*", "\\*")}**\n\n${md}`,
    "text/plain": `${caption}\n${md}`,
  };
}

/** The table as text for terminals and notebooks' text/plain (arquero's Markdown). */
export function textTable(rows: AggregateRow[], cols: Column[]): string {
  return markdownTable(rows, cols);
}
