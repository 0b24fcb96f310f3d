/**
 * The utility–protection frontier: every defense at several strengths (config
 * labels `family@strength`), the attack's clone accuracy against the defended
 * victim's accuracy and against the L1 distance of its answers, one curve per
 * family, with a verdict computed per family: the strongest protection it
 * gives at a utility cost of at most one point of accuracy.
 *
 * @module
 */
import { display, type Displayable } from "./display.ts";
import { type ExperimentReport, missingCellsNote } from "./experiment_report.ts";
import { LEGEND_BELOW, type PlotlySpec } from "./figure.ts";
import { type Interval, welchInterval } from "./stats.ts";
import { type AggregateRow, type Column, formatStat, type Stat, tableBundle } from "./table.ts";
import { paperCell } from "./paper.ts";
import { type ClaimOutcome, type ClaimVerdict, formatInterval, type TableVerdict, tableVerdict } from "./verdict.ts";

/** One defense setting of the frontier: mean ± std over seeds of its target accuracy, L1 and clone accuracy. */
export interface FrontierPoint {
  /** The defense label (`family@strength`, or `undefended`). */
  label: string;
  /** The defense family (the label before `@`). */
  family: string;
  /** The strength (the label after `@`; empty for a family of one setting). */
  strength: string;
  /** Defended test accuracy (fraction). */
  target_acc: Stat | null;
  /** Mean L1 distance of the answers from the undefended ones. */
  l1: Stat | null;
  /** The clone's test accuracy (fraction). */
  clone_acc: Stat | null;
}

/** Splits a frontier label into its family and strength. */
export function frontierLabel(label: string): { family: string; strength: string } {
  const at = label.indexOf("@");
  return at < 0 ? { family: label, strength: "" } : { family: label.slice(0, at), strength: label.slice(at + 1) };
}

/**
 * The frontier's points from a report's aggregated table (the rows of `attack`, default the table's first attack),
 * each family's settings ordered by numeric strength.
 */
export function frontierPoints(rep: ExperimentReport, attack?: string): FrontierPoint[] {
  const a = attack ?? String(rep.table[0]?.attack ?? "");
  const points = rep.table.filter((r) => r.attack === a).map((r: AggregateRow) => {
    const label = String(r.defense);
    return {
      label,
      ...frontierLabel(label),
      target_acc: r.target_acc as Stat | null,
      l1: r.l1 as Stat | null,
      clone_acc: r.clone_acc as Stat | null,
    };
  });
  const families = [...new Set(points.map((p) => p.family))];
  // Numeric strengths in order; others after them, in the table's order (a stable sort keeps it).
  const num = (s: string) => (s !== "" && Number.isFinite(Number(s)) ? Number(s) : Infinity);
  const order = (x: FrontierPoint, y: FrontierPoint) => {
    const d = num(x.strength) - num(y.strength);
    return Number.isNaN(d) ? 0 : d;
  };
  return families.flatMap((f) => points.filter((p) => p.family === f).sort(order));
}

/** A family's verdict: its strongest protection at a utility cost of at most `maxCost` accuracy points. */
export interface FamilyVerdict {
  /** The family. */
  family: string;
  /** The setting chosen (lowest mean clone accuracy among those within the cost), or undefined when none is. */
  best?: FrontierPoint;
  /** Its clone accuracy minus the undefended one, percentage points, Welch's t 95% interval. */
  interval?: Interval;
  /**
   * "lowers the clone" (the whole interval below 0), "not shown", "does not lower it" (the whole interval above 0),
   * "no setting within the cost"; with one seed on a side no interval exists: "direction agrees" (Δ < 0) or
   * "direction disagrees".
   */
  outcome:
    | "lowers the clone"
    | "not shown"
    | "does not lower it"
    | "no setting within the cost"
    | "direction agrees"
    | "direction disagrees";
}

/** The verdict of every family against the undefended point (see {@linkcode FamilyVerdict}). */
export function frontierVerdict(points: FrontierPoint[], maxCost = 1): FamilyVerdict[] {
  const base = points.find((p) => p.family === "undefended");
  if (base?.target_acc == null || base.clone_acc == null) return [];
  const pct = (s: Stat): Stat => ({ mean: 100 * s.mean, std: 100 * s.std, n: s.n });
  const families = [...new Set(points.map((p) => p.family))].filter((f) => f !== "undefended");
  return families.map((family) => {
    const within = points.filter((p) =>
      p.family === family && p.clone_acc !== null && p.target_acc !== null &&
      100 * (base.target_acc!.mean - p.target_acc.mean) <= maxCost + 1e-9 // a cost of exactly maxCost counts
    );
    if (within.length === 0) return { family, outcome: "no setting within the cost" as const };
    const best = within.reduce((x, y) => (y.clone_acc!.mean < x.clone_acc!.mean ? y : x));
    const interval = welchInterval(pct(best.clone_acc!), pct(base.clone_acc!));
    const outcome = !interval.hasInterval
      ? (interval.diff < 0 ? "direction agrees" : "direction disagrees")
      : interval.hi < 0
      ? "lowers the clone"
      : interval.lo > 0
      ? "does not lower it"
      : "not shown";
    return { family, best, interval, outcome } as FamilyVerdict;
  });
}

const CLAIM_OUTCOME: Record<FamilyVerdict["outcome"], ClaimOutcome> = {
  "lowers the clone": "holds",
  "does not lower it": "does not hold",
  "not shown": "not shown",
  "no setting within the cost": "not testable",
  "direction agrees": "direction agrees",
  "direction disagrees": "direction disagrees",
};

/**
 * The frontier's verdict in the form of any table's ({@linkcode TableVerdict}): the paper's Table 3 cells at the
 * paper's settings, and one claim per family ("lowers the clone at a cost of at most one point of accuracy") from
 * {@linkcode frontierVerdict}; what the README's results at a glance show for a frontier.
 */
export function frontierTableVerdict(name: string, profile: string, table: AggregateRow[], maxCost = 1): TableVerdict {
  const rep = { table } as ExperimentReport;
  const points = frontierPoints(rep);
  const attack = String(table[0]?.attack ?? "");
  const paperRows = points.filter(atPaperSetting).map((p) => ({
    defense: p.family,
    attack,
    target_acc: p.target_acc,
    l1: p.l1,
    clone_acc: p.clone_acc,
  }));
  const cells = tableVerdict(name, profile, paperRows as AggregateRow[], ["target_acc", "l1"]).cells;
  const base = points.find((p) => p.family === "undefended");
  const pct = (
    s: Stat | null | undefined,
  ): Stat | null => (s == null ? null : { ...s, mean: 100 * s.mean, std: 100 * s.std });
  const claims: ClaimVerdict[] = frontierVerdict(points, maxCost).map((v) => ({
    claim: {
      statement: `${v.family} lowers the DFME clone's accuracy at a cost of at most ${maxCost} point of accuracy`,
      source: "the utility-protection frontier (no paper shows it)",
      metric: "clone_acc",
      a: { defense: v.best?.label ?? v.family, attack },
      b: { defense: "undefended", attack },
      kind: "below",
    },
    a: pct(v.best?.clone_acc),
    b: pct(base?.clone_acc),
    ...(v.interval !== undefined ? { interval: v.interval } : {}),
    outcome: CLAIM_OUTCOME[v.outcome],
  }));
  return {
    experiment: name,
    profile,
    cells,
    claims,
    sentence: frontierSentence(name, frontierVerdict(points, maxCost), maxCost),
  };
}

/** One generated sentence of the frontier's verdicts. */
export function frontierSentence(name: string, verdicts: FamilyVerdict[], maxCost = 1): string {
  if (verdicts.length === 0) return `${name}: no undefended row to compare with.`;
  const parts = verdicts.map((v) =>
    v.best === undefined
      ? `${v.family}: no setting keeps accuracy within ${maxCost} point`
      : `${v.family}${v.best.strength ? ` (${v.best.strength})` : ""}: ${v.outcome}, Δ ${formatInterval(v.interval, 2)}`
  );
  return `${name}, the strongest protection of each defense at a cost of at most ${maxCost} point of accuracy ` +
    `(clone accuracy minus undefended, points, Welch's t 95%): ${parts.join("; ")}.`;
}

/**
 * The strength of each family at the paper's own setting (Table 3 on MNIST: the baselines at L1 budget 1.0; MeCo at
 * the bound configs/mnist_dfme.yaml uses), where the paper's utility numbers sit on the frontier.
 */
export const PAPER_SETTING: Record<string, string> = { undefended: "", randp: "1", mad: "1", grad: "1", meco: "1" };

/** Whether a point is a family's paper setting (see {@linkcode PAPER_SETTING}). */
function atPaperSetting(p: FrontierPoint): boolean {
  return PAPER_SETTING[p.family] !== undefined && PAPER_SETTING[p.family] === p.strength;
}

/** The paper's number for a point at its paper setting (percent for accuracy), else undefined. */
function paperValue(name: string, p: FrontierPoint, attack: string, metric: "target_acc" | "l1"): number | undefined {
  return atPaperSetting(p) ? paperCell(name, p.family, attack, metric)?.value : undefined;
}

const stat = (k: keyof FrontierPoint) => (r: AggregateRow) => r[k] as Stat | null;
const COLUMNS: Column[] = [
  { header: "defense", cell: (r) => String(r.family) },
  { header: "strength", cell: (r) => String(r.strength) || "—" },
  { header: "n", cell: (r) => String(stat("clone_acc")(r)?.n ?? 0) },
  { header: "target acc %", cell: (r) => formatStat(stat("target_acc")(r), true, 2) },
  { header: "target acc % (paper)", cell: (r) => (r.paper_target_acc === null ? "—" : String(r.paper_target_acc)) },
  { header: "L1", cell: (r) => formatStat(stat("l1")(r), false, 4) },
  { header: "L1 (paper)", cell: (r) => (r.paper_l1 === null ? "—" : String(r.paper_l1)) },
  { header: "clone acc %", cell: (r) => formatStat(stat("clone_acc")(r), true, 2) },
];

/**
 * The frontier's table (with the paper's Table 3 utility beside the settings it reports) and its verdict as a
 * notebook display: the per-family verdict, then the paper cells' verdict.
 */
export function frontierDisplay(rep: ExperimentReport, maxCost = 1): Displayable {
  const points = frontierPoints(rep);
  const m = rep.summary.meta;
  const seeds = new Set(rep.summary.rows.map((r) => r.seed)).size;
  const caption = `${m.name} — profile ${m.profile}, ${seeds} seed${seeds === 1 ? "" : "s"}, budget ${
    m.budget ?? "mixed"
  }; mean ± std over seeds${missingCellsNote(m)}`;
  const attack = String(rep.table[0]?.attack ?? "");
  const rows = points.map((p) => ({
    ...p,
    paper_target_acc: paperValue(m.name, p, attack, "target_acc") ?? null,
    paper_l1: paperValue(m.name, p, attack, "l1") ?? null,
  }));
  const table = tableBundle(rows as unknown as AggregateRow[], COLUMNS, caption);
  // The paper-setting points as the paper's rows (defense = family), for the usual per-cell verdict.
  const paperRows = points.filter(atPaperSetting).map((p) => ({
    defense: p.family,
    attack,
    target_acc: p.target_acc,
    l1: p.l1,
    clone_acc: p.clone_acc,
  }));
  const cells = tableVerdict(m.name, m.profile, paperRows as AggregateRow[], ["target_acc", "l1"]);
  const sentence = `Verdict — ${frontierSentence(m.name, frontierVerdict(points, maxCost), maxCost)} At the ` +
    `paper's settings (Table 3): ${cells.sentence}`;
  return display({
    "text/html": `${table["text/html"]}<p>${sentence.replaceAll("&", "&amp;").replaceAll("<", "&lt;")}</p>`,
    "text/markdown": `${table["text/markdown"]}\n\n${sentence}`,
    "text/plain": `${table["text/plain"]}\n${sentence}`,
  });
}

/**
 * The frontier as a figure: clone accuracy (%) against the defended victim's accuracy (`x: "target_acc"`, %) or
 * the L1 distance of its answers (`x: "l1"`, log axis), one curve per family ordered by strength and labelled with
 * it, error bars of one std over seeds on both axes; the undefended clone's accuracy as a dashed line.
 */
export function frontierFigure(rep: ExperimentReport, x: "target_acc" | "l1"): PlotlySpec {
  const points = frontierPoints(rep);
  const kx = x === "target_acc" ? 100 : 1;
  const families = [...new Set(points.map((p) => p.family))].filter((f) => f !== "undefended");
  const usable = (p: FrontierPoint) => p.clone_acc !== null && p[x] !== null && (x !== "l1" || p[x]!.mean > 0);
  const data: Record<string, unknown>[] = families.map((f) => {
    const pts = points.filter((p) => p.family === f && usable(p));
    return {
      type: "scatter",
      mode: pts.length > 1 ? "lines+markers+text" : "markers+text",
      name: f,
      x: pts.map((p) => p[x]!.mean * kx),
      y: pts.map((p) => p.clone_acc!.mean * 100),
      text: pts.map((p) => p.strength),
      textposition: "top center",
      error_x: { type: "data", array: pts.map((p) => p[x]!.std * kx), visible: pts.some((p) => p[x]!.n > 1) },
      error_y: {
        type: "data",
        array: pts.map((p) => p.clone_acc!.std * 100),
        visible: pts.some((p) => p.clone_acc!.n > 1),
      },
    };
  });
  const base = points.find((p) => p.family === "undefended");
  const shapes = base?.clone_acc == null ? [] : [{
    type: "line",
    xref: "paper",
    x0: 0,
    x1: 1,
    y0: base.clone_acc.mean * 100,
    y1: base.clone_acc.mean * 100,
    line: { dash: "dash", color: "#555" },
  }];
  const ys = points.filter((p) => p.clone_acc !== null).flatMap((p) => [
    100 * (p.clone_acc!.mean - p.clone_acc!.std),
    100 * (p.clone_acc!.mean + p.clone_acc!.std),
  ]);
  const lo = Math.max(0, Math.min(...ys) - 3), hi = Math.min(100, Math.max(...ys) + 5);
  const m = rep.summary.meta;
  return {
    data,
    layout: {
      title: {
        text: `${m.name}: clone accuracy vs ${x === "target_acc" ? "defended accuracy" : "L1 of the answers"}` +
          (base?.clone_acc == null ? "" : ` (dashed: undefended clone)`),
      },
      xaxis: x === "l1"
        ? { title: { text: "L1 distance of the defended answers (log)" }, type: "log" }
        : { title: { text: "defended victim's test accuracy (%)" } },
      yaxis: { title: { text: "clone test accuracy (%)" }, ...(ys.length > 0 ? { range: [lo, hi] } : {}) },
      shapes,
      legend: LEGEND_BELOW,
      width: 760,
      height: 520,
    },
  };
}
