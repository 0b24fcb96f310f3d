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
import { figureBundle, LEGEND_BELOW, type PlotlySpec, writeFigureFiles } from "./figure.ts";
import { formatPaperCell, paperCell, paperCost, type PaperCostMetric, type PaperMetric, paperSource } from "./paper.ts";
import { type AggregateRow, type Column, formatDelta, tableBundle } from "./table.ts";
import {
  type CellInput,
  cellVerdict,
  type ClaimSpec,
  claimVerdict,
  type TableVerdict,
  verdictSentence,
} from "./verdict.ts";

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
  return display(tableBundle(rows, cols, caption));
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
    { header: "n (timed calls b1 / b256)", cell: (r) => `${r.reps_b1} / ${r.reps_b256}` },
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
      legend: LEGEND_BELOW,
      width: 820,
      height: 500,
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

/**
 * The verdict under the cost tables: every utility, latency and memory
 * number against the paper's (one measurement per defense, so each Δ is a
 * point), and the paper's efficiency claim that MeCo answers faster than the
 * output-perturbation defenses that optimise each answer (MAD, GRAD), as a
 * direction (one timing per defense gives no interval over seeds).
 */
export function costVerdict(s: CostSummary): TableVerdict {
  const name = s.meta.name;
  const one = (x: number | null | undefined) =>
    x === null || x === undefined || !Number.isFinite(x) ? null : { mean: x, std: 0, n: 1 };
  const inputs: CellInput[] = s.rows.flatMap((r) => {
    const cell = (metric: CellInput["metric"], header: string, ours: number | null): CellInput => ({
      defense: r.defense,
      attack: "none",
      metric,
      header,
      ours: one(ours),
      paper: paperCell(name, r.defense, "none", metric),
    });
    return [
      cell("target_acc", "target acc %", r.target_acc * 100),
      cell("l1", "L1", r.l1),
      cell("ms_b1", "ms/query b1", r.ms_b1),
      cell("ms_per_query_b256", "ms/query b256", r.ms_per_query_b256),
      cell("peak_mib_b256", "peak MiB b256", mib(r.peak_alone_bytes_b256)),
    ];
  });
  const cells = inputs.map((c) => cellVerdict(c, s.meta.profile));
  const table: AggregateRow[] = s.rows.map((r) => ({
    defense: r.defense,
    attack: "none",
    ms_b1: one(r.ms_b1),
    ms_per_query_b256: one(r.ms_per_query_b256),
  }));
  const claims: ClaimSpec[] = ["mad", "grad"].filter((d) => s.rows.some((r) => r.defense === d)).flatMap((d) =>
    (["ms_b1", "ms_per_query_b256"] as const).map((metric) => ({
      statement: `meco answers faster than ${d} (${metric === "ms_b1" ? "batch 1" : "batch 256"})`,
      source: 'section 5: "MeCo substantially improves the test time running efficiency"',
      metric,
      a: { defense: "meco" },
      b: { defense: d },
      kind: "below" as const,
    }))
  );
  const verdicts = s.rows.some((r) => r.defense === "meco") ? claims.map((c) => claimVerdict(c, table)) : [];
  return {
    experiment: name,
    profile: s.meta.profile,
    cells,
    claims: verdicts,
    sentence: verdictSentence(name, s.meta.profile, cells, verdicts),
  };
}
