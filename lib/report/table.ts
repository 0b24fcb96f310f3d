/**
 * Result tables: rows grouped into mean ± std per setting (arquero), and
 * rendered as HTML or text, with the paper's numbers beside ours.
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

/** "98.91 ± 0.05" (percent when `percent`), or "—" for a missing stat. */
export function formatStat(s: Stat | null | undefined, percent: boolean, digits = 2): string {
  if (s === null || s === undefined || !Number.isFinite(s.mean)) return "—";
  const k = percent ? 100 : 1;
  return `${(s.mean * k).toFixed(digits)} ± ${(s.std * k).toFixed(digits)}`;
}

/** A rendered column: header and how to format a row's cell. */
export interface Column {
  /** Header text. */
  header: string;
  /** Cell text for a row. */
  cell: (row: AggregateRow) => string;
}

function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** An HTML table. */
export function htmlTable(rows: AggregateRow[], cols: Column[], caption?: string): string {
  const head = cols.map((c) => `<th>${escapeHtml(c.header)}</th>`).join("");
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${escapeHtml(c.cell(r))}</td>`).join("")}</tr>`).join(
    "\n",
  );
  const cap = caption ? `<caption>${escapeHtml(caption)}</caption>` : "";
  return `<table>${cap}<thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** A fixed-width text table (for terminals and notebooks' text/plain). */
export function textTable(rows: AggregateRow[], cols: Column[]): string {
  const cells = [cols.map((c) => c.header), ...rows.map((r) => cols.map((c) => c.cell(r)))];
  const widths = cols.map((_, j) => Math.max(...cells.map((row) => row[j].length)));
  return cells.map((row) => row.map((v, j) => v.padEnd(widths[j])).join("  ")).join("\n");
}
