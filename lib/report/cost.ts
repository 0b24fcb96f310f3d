/**
 * The deployment-cost report (the paper's Tables 13–15): per-query latency,
 * tensor memory and MeCo's training overhead of every defense, read from
 * results/defense_cost/summary.json (written by `deno task cost`), as notebook
 * tables with the paper's column beside ours and a latency figure.
 *
 * @module
 */
import type { CostRow, CostSummary } from "../bench/cost_report.ts";
import { display, type Displayable } from "./display.ts";
import { figureBundle, type PlotlySpec, writeFigureFiles } from "./figure.ts";
import { formatPaperCell, paperCell, paperCost, type PaperCostMetric, type PaperMetric, paperSource } from "./paper.ts";
import { type AggregateRow, type Column, formatDelta, htmlTable, textTable } from "./table.ts";

/** Reads a cost experiment's summary.json from `dir`. */
export async function loadCost(dir: string): Promise<CostSummary> {
  const s = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`)) as CostSummary;
  if (!Array.isArray(s.rows) || s.meta === undefined) {
    throw new Error(`${dir}/summary.json is not a cost summary (no meta or rows): written by 'deno task cost'?`);
  }
  return s;
}

const fmt = (x: number | null | undefined, digits: number) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);
const mib = (bytes: number | null | undefined) => bytes === null || bytes === undefined ? null : bytes / 2 ** 20;

/** Ours, the paper's number ("—" when it gives none) and ours − paper, for one metric. */
function withPaper(
  experiment: string,
  header: string,
  metric: PaperCostMetric,
  ours: (r: AggregateRow) => number | null,
  digits: number,
): Column[] {
  const paper = (r: AggregateRow) => paperCost(experiment, String(r.defense), metric);
  return [
    { header: `${header} (ours)`, cell: (r) => fmt(ours(r), digits) },
    { header: `${header} (paper)`, cell: (r) => fmt(paper(r), digits) },
    { header: `Δ ${header}`, cell: (r) => formatDelta(ours(r), paper(r), digits) },
  ];
}

/** Ours, the paper's utility number (Table 3, ± its std) and ours − paper, for target accuracy or L1. */
function withPaperUtility(
  experiment: string,
  header: string,
  metric: PaperMetric,
  scale: number,
  digits: number,
): Column[] {
  const ours = (r: AggregateRow) => (typeof r[metric] === "number" ? (r[metric] as number) * scale : null);
  const paper = (r: AggregateRow) => paperCell(experiment, String(r.defense), "none", metric);
  return [
    { header: `${header} (ours)`, cell: (r) => fmt(ours(r), digits) },
    { header: `${header} (paper)`, cell: (r) => formatPaperCell(paper(r), digits) },
    { header: `Δ ${header}`, cell: (r) => formatDelta(ours(r), paper(r)?.value, digits) },
  ];
}

function tableOf(rows: AggregateRow[], cols: Column[], caption: string): Displayable {
  return display({ "text/html": htmlTable(rows, cols, caption), "text/plain": `${caption}\n${textTable(rows, cols)}` });
}

function caption(s: CostSummary, what: string): string {
  const m = s.meta;
  return `${what} — ${m.name}, profile ${m.profile}, backend ${m.backend}, seed ${m.seed}, commit ${
    m.commit.slice(0, 12)
  }; paper: ${paperSource(m.name)}`;
}

const num = (k: keyof CostRow) => (r: AggregateRow) => (typeof r[k] === "number" ? r[k] as number : null);

/** Table 13: latency per query at batch 1 and batch 256, slowdown over the undefended victim, MeCo's speed-up. */
export function latencyTable(s: CostSummary): Displayable {
  const name = s.meta.name;
  const rows = s.rows.map((r) => ({
    ...r,
    meco_speedup_b1: s.meco_speedup[r.defense]?.b1 ?? null,
    meco_speedup_b256: s.meco_speedup[r.defense]?.b256 ?? null,
  })) as unknown as AggregateRow[];
  const cols: Column[] = [
    { header: "defense", cell: (r) => String(r.defense) },
    ...withPaperUtility(name, "target acc %", "target_acc", 100, 2),
    ...withPaperUtility(name, "L1", "l1", 1, 4),
    ...withPaper(name, "ms/query b1", "ms_b1", num("ms_b1"), 3),
    ...withPaper(name, "ms/query b256", "ms_per_query_b256", num("ms_per_query_b256"), 3),
    { header: "× undefended b1", cell: (r) => fmt(r.slowdown_b1 as number, 2) },
    { header: "× undefended b256", cell: (r) => fmt(r.slowdown_b256 as number, 2) },
    { header: "its time / MeCo's b1", cell: (r) => fmt(r.meco_speedup_b1 as number | null, 2) },
    { header: "its time / MeCo's b256", cell: (r) => fmt(r.meco_speedup_b256 as number | null, 2) },
  ];
  return tableOf(rows, cols, caption(s, "Table 13 (inference speed)"));
}

/** Table 14: tensor memory (MiB) a deployed defense holds and needs at batch 256. */
export function memoryTable(s: CostSummary): Displayable {
  const rows = s.rows as unknown as AggregateRow[];
  const cols: Column[] = [
    { header: "defense", cell: (r) => String(r.defense) },
    { header: "held besides the victim MiB", cell: (r) => fmt(mib(r.owned_bytes as number), 3) },
    { header: "activations b256 MiB", cell: (r) => fmt(mib(r.peak_extra_bytes_b256 as number | null), 3) },
    ...withPaper(
      s.meta.name,
      "peak MiB b256",
      "peak_mib_b256",
      (r) => mib(r.peak_alone_bytes_b256 as number | null),
      2,
    ),
  ];
  return tableOf(rows, cols, caption(s, `Table 14 (memory; ${s.meta.memory})`));
}

/** Table 15: MeCo's training cost over plain training of the victim. */
export function trainingTable(s: CostSummary): Displayable {
  const t = s.training;
  if (t === null) return display({ "text/plain": "Table 15: the config has no MeCo defense, so no training cost." });
  const rows: AggregateRow[] = [
    { defense: "undefended", ms: t.plain_ms_per_step, batch: t.plain_batch_size, minutes: t.plain_minutes_full },
    { defense: "meco", ms: t.meco_ms_per_step, batch: t.meco_batch_size, minutes: t.meco_minutes_full },
  ];
  const cols: Column[] = [
    { header: "training", cell: (r) => String(r.defense) },
    { header: "batch", cell: (r) => String(r.batch) },
    { header: "ms/step", cell: (r) => fmt(r.ms as number, 1) },
    {
      header: "× plain per image",
      cell: (r) => r.defense === "meco" ? fmt(t.overhead_per_image, 1) : "1.0",
    },
    ...withPaper(s.meta.name, "minutes (full run)", "train_minutes", (r) => r.minutes as number, 1),
  ];
  return tableOf(rows, cols, caption(s, `Table 15 (training cost; ${t.steps} timed steps each, minutes extrapolated)`));
}

/** Latency per query of every defense at batch 1 and 256 (log scale). */
export function latencyFigure(s: CostSummary): PlotlySpec {
  const x = s.rows.map((r) => r.defense);
  return {
    data: [
      { type: "bar", name: "batch 1", x, y: s.rows.map((r) => r.ms_b1) },
      { type: "bar", name: "batch 256 (per query)", x, y: s.rows.map((r) => r.ms_per_query_b256) },
    ],
    layout: {
      title: { text: `${s.meta.name}: latency per query (${s.meta.profile} profile, ${s.meta.backend})` },
      barmode: "group",
      yaxis: { title: { text: "ms per query (log scale)" }, type: "log" },
      width: 820,
      height: 480,
    },
  };
}

/**
 * Writes `<base>.html` (plotly.js inlined, commit and command under the plot)
 * and, with Chromium, `<base>.png` into `dir`; returns the notebook display
 * (Plotly MIME bundle, plus the PNG when rendered).
 */
export async function costFigure(s: CostSummary, dir: string, base = "figure"): Promise<Displayable> {
  const spec = latencyFigure(s);
  await writeFigureFiles(spec, dir, base, `commit ${s.meta.commit} — ${s.meta.command}`);
  return display(await figureBundle(spec, dir, base));
}
