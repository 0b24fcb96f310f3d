/**
 * Verdicts computed from the numbers: for every cell of a results table,
 * whether it reproduced the paper's number, and for every claim a table
 * tests, whether our arms bear it out, each with a 95% confidence interval
 * over seeds, summed up in one generated sentence.
 *
 * **When a cell counts as reproduced.** Δ = ours − paper (accuracies in
 * percentage points, L1 raw). Its 95% interval is Student's t over our seeds
 * (n − 1 degrees of freedom; the paper's number is taken as fixed); with one
 * seed it is the point Δ. The tolerance τ is the paper's printed std where it
 * prints one, otherwise 1 point for an accuracy and 10% of the paper's value
 * (at least 0.001) for an L1 distance or a cost. The cell is *reproduced* when
 * the interval meets [−τ, τ] (the data are consistent with lying within the
 * paper's own spread of its number), *not reproduced* when the whole interval
 * lies outside it, and *not comparable* when the paper gives no number for the
 * cell's setting, ours is missing, or the run is at the `smoke` profile (a
 * pipeline check, not a measurement).
 *
 * **When a claim holds.** A claim compares two of our arms on one metric (e.g.
 * MeCo's clone accuracy against the undefended one's): Δ = A − B with Welch's
 * t 95% interval. "A below B" *holds* when the interval lies below 0, *does not
 * hold* when it lies above 0, and is *not shown* when it contains 0; "A not
 * more than m below B" holds when the interval lies above −m, does not hold
 * when it lies below −m. With fewer than 2 seeds in an arm there is no
 * interval and only the direction of Δ is reported.
 *
 * @module
 */
import { display, type Displayable } from "./display.ts";
import {
  PAPER,
  type PaperCell,
  paperCell,
  type PaperCostMetric,
  type PaperMetric,
  type PaperNumbers,
} from "./paper.ts";
import { type Interval, meanInterval, welchInterval } from "./stats.ts";
import { type AggregateRow, type Column, type Stat, tableBundle } from "./table.ts";

/** The rule, as the verdict output states it. */
export const VERDICT_RULE: string =
  "Cell: Δ = ours − paper with a 95% Student's t interval over our seeds (a point for one seed); reproduced when " +
  "the interval meets ±τ, τ = the paper's printed std, else 1 point (accuracy) or 10% of the paper's value (L1, " +
  "cost); not comparable without a paper number for the setting or at the smoke profile. Claim: Δ = A − B with " +
  "Welch's t 95% interval; holds when the interval lies on the claimed side, does not hold when it lies on the " +
  "other, not shown when it straddles; direction only with one seed in an arm.";

/** Outcome of one cell. */
export type CellOutcome = "reproduced" | "not reproduced" | "not comparable";

/** Outcome of one claim. */
export type ClaimOutcome =
  | "holds"
  | "does not hold"
  | "not shown"
  | "direction agrees"
  | "direction disagrees"
  | "not testable";

/** One number of ours to compare with the paper's. */
export interface CellInput {
  /** Defense label of the row. */
  defense: string;
  /** Attack label of the row ("none" without an attack). */
  attack: string;
  /** Metric key. */
  metric: PaperMetric | PaperCostMetric;
  /** Column header, e.g. "clone acc %". */
  header: string;
  /** Ours in the paper's unit (percent for accuracies), or null when missing. */
  ours: Stat | null;
  /** The paper's number for the setting, if any. */
  paper: PaperCell | undefined;
}

/** A cell's verdict. */
export interface CellVerdict extends CellInput {
  /** Tolerance τ (paper's unit), when comparable. */
  tolerance?: number;
  /** Δ and its interval, when comparable. */
  interval?: Interval;
  /** The outcome. */
  outcome: CellOutcome;
  /** Why not comparable, when not. */
  reason?: string;
}

/** One arm of a claim: the rows of a defense (and attack, unless any attack will do). */
export interface Arm {
  /** Defense label. */
  defense: string;
  /** Attack label; absent: the defense's first row (for metrics that do not depend on the attack). */
  attack?: string;
}

/** A claim two of our arms can test. */
export interface ClaimSpec {
  /** The claim in words. */
  statement: string;
  /** Where the paper makes it. */
  source: string;
  /** The metric compared: a key of the aggregated rows ("clone_acc", "target_acc", "l1", "ms_b1", …). */
  metric: string;
  /** Arm A. */
  a: Arm;
  /** Arm B. */
  b: Arm;
  /** "below": A < B; "above": A > B; "not_below": A ≥ B − margin. */
  kind: "below" | "above" | "not_below";
  /** Margin of "not_below", in display units (points for accuracies). */
  margin?: number;
}

/** A claim's verdict. */
export interface ClaimVerdict {
  /** The claim. */
  claim: ClaimSpec;
  /** Arm A's statistic (display units), null when absent. */
  a: Stat | null;
  /** Arm B's statistic. */
  b: Stat | null;
  /** Δ = A − B and its Welch interval, when both arms exist. */
  interval?: Interval;
  /** The outcome. */
  outcome: ClaimOutcome;
}

/** The verdict under one table. */
export interface TableVerdict {
  /** Experiment name. */
  experiment: string;
  /** Profile of the results. */
  profile: string;
  /** Cells. */
  cells: CellVerdict[];
  /** Claims. */
  claims: ClaimVerdict[];
  /** One generated sentence. */
  sentence: string;
}

const ROW_HEADERS: Record<string, { header: string; scale: number }> = {
  target_acc: { header: "target acc %", scale: 100 },
  l1: { header: "L1", scale: 1 },
  clone_acc: { header: "clone acc %", scale: 100 },
  ms_b1: { header: "ms/query b1", scale: 1 },
  ms_per_query_b256: { header: "ms/query b256", scale: 1 },
};
const scaleOf = (metric: string) => ROW_HEADERS[metric]?.scale ?? 1;

/** A stat scaled by `k` (fractions to percent), or null. */
function scaled(s: Stat | null | undefined, k: number): Stat | null {
  if (s === null || s === undefined || !Number.isFinite(s.mean)) return null;
  return { mean: s.mean * k, std: s.std * k, n: s.n };
}

/** The tolerance τ of a paper cell (see the module's rule). */
export function tolerance(c: PaperCell): number {
  if (c.std !== undefined) return c.std;
  if (c.unit === "%") return 1;
  return Math.max(0.1 * Math.abs(c.value), 0.001);
}

/** The verdict of one cell (see the module's rule); `profile` "smoke" makes every cell not comparable. */
export function cellVerdict(input: CellInput, profile: string): CellVerdict {
  if (profile === "smoke") {
    return { ...input, outcome: "not comparable", reason: "smoke profile (a pipeline check, not a measurement)" };
  }
  if (input.paper === undefined) {
    return { ...input, outcome: "not comparable", reason: "no paper number for this setting" };
  }
  if (input.ours === null) return { ...input, outcome: "not comparable", reason: "no result of ours" };
  const tau = tolerance(input.paper);
  const interval = meanInterval(input.ours, input.paper.value);
  const meets = interval.hi >= -tau && interval.lo <= tau;
  return { ...input, tolerance: tau, interval, outcome: meets ? "reproduced" : "not reproduced" };
}

/** The cells of an aggregated defense × attack table: one per row and metric. */
export function rowCells(
  experiment: string,
  table: AggregateRow[],
  metrics: ("target_acc" | "l1" | "clone_acc")[] = ["target_acc", "l1", "clone_acc"],
  paper: PaperNumbers = PAPER,
): CellInput[] {
  return table.flatMap((r) =>
    metrics.map((m) => {
      const defense = String(r.defense), attack = String(r.attack);
      return {
        defense,
        attack,
        metric: m,
        header: ROW_HEADERS[m].header,
        ours: scaled(r[m] as Stat | null, ROW_HEADERS[m].scale),
        paper: paperCell(experiment, defense, attack, m, paper),
      };
    })
  );
}

function armStat(table: AggregateRow[], arm: Arm, metric: string): Stat | null {
  const row = table.find((r) => r.defense === arm.defense && (arm.attack === undefined || r.attack === arm.attack));
  return row === undefined ? null : scaled(row[metric] as Stat | null, scaleOf(metric));
}

/** The verdict of one claim on an aggregated table (see the module's rule). */
export function claimVerdict(claim: ClaimSpec, table: AggregateRow[]): ClaimVerdict {
  const a = armStat(table, claim.a, claim.metric), b = armStat(table, claim.b, claim.metric);
  if (a === null || b === null) return { claim, a, b, outcome: "not testable" };
  const interval = welchInterval(a, b);
  const bound = claim.kind === "not_below" ? -(claim.margin ?? 0) : 0;
  // Distance of Δ above the bound: positive supports "above"/"not_below", negative supports "below".
  const want = claim.kind === "below" ? -1 : 1;
  if (!interval.hasInterval) {
    const side = Math.sign(interval.diff - bound);
    return { claim, a, b, interval, outcome: side === want ? "direction agrees" : "direction disagrees" };
  }
  const lo = interval.lo - bound, hi = interval.hi - bound;
  const outcome: ClaimOutcome = want > 0
    ? (lo > 0 ? "holds" : hi < 0 ? "does not hold" : "not shown")
    : (hi < 0 ? "holds" : lo > 0 ? "does not hold" : "not shown");
  return { claim, a, b, interval, outcome };
}

const ABSTRACT = 'abstract: MeCo "can significantly reduce the effectiveness of existing DFME methods"';
const UTILITY = 'section 1: "minimally sacrifice the classification accuracy on the test set"';

/**
 * The claims an experiment's table tests: for every attack with an
 * undefended and a MeCo row, that MeCo lowers the clone's accuracy; that MeCo
 * costs at most 1 point of target accuracy; and the claims particular to the
 * experiment's paper table (baselines, γ, Q, DRO).
 */
export function claimsFor(experiment: string, table: AggregateRow[]): ClaimSpec[] {
  const has = (d: string, a?: string) => table.some((r) => r.defense === d && (a === undefined || r.attack === a));
  const attacks = [...new Set(table.map((r) => String(r.attack)))].filter((a) => a !== "none");
  const claims: ClaimSpec[] = [];
  for (const meco of ["meco", "meco_official"]) {
    for (const attack of attacks) {
      if (!has(meco, attack) || !has("undefended", attack)) continue;
      claims.push({
        statement: `${meco} lowers the ${attack} clone's accuracy vs undefended`,
        source: ABSTRACT,
        metric: "clone_acc",
        a: { defense: meco, attack },
        b: { defense: "undefended", attack },
        kind: "below",
      });
    }
  }
  if (has("meco") && has("undefended")) {
    claims.push({
      statement: "meco's target accuracy is at most 1 point below undefended",
      source: UTILITY,
      metric: "target_acc",
      a: { defense: "meco" },
      b: { defense: "undefended" },
      kind: "not_below",
      margin: 1,
    });
  }
  // The decisive table's claims, per protocol (MNIST and its Fashion-MNIST mirror).
  const threatModel: ClaimSpec[] = [
    ...["meco", "meco_official"].map((d) => ({
      statement: `${d} lowers the DFME clone's accuracy vs undefended under the official protocol`,
      source: `${ABSTRACT} (as the official code evaluates it: the zeroth-order estimate sees the undefended target)`,
      metric: "clone_acc",
      a: { defense: d, attack: "dfme_official" },
      b: { defense: "undefended", attack: "dfme" },
      kind: "below" as const,
    })),
    {
      statement: "DFME's learning generator gives a more accurate clone than the frozen-generator control",
      source: "DFME (Truong et al. 2021): the generator's zeroth-order training is what makes the clone",
      metric: "clone_acc",
      a: { defense: "undefended", attack: "dfme" },
      b: { defense: "undefended", attack: "dfme_frozen_generator" },
      kind: "above",
    },
  ];
  const extra: Record<string, ClaimSpec[]> = {
    mnist_threat_model: threatModel,
    fashion_mnist_threat_model: threatModel,
    mnist_baselines: ["randp", "mad", "grad"].map((d) => ({
      statement: `meco's DFME clone is less accurate than ${d}'s`,
      source: 'section 5: MeCo "is substantially more effective than the compared methods"',
      metric: "clone_acc" as const,
      a: { defense: "meco", attack: "dfme" },
      b: { defense: d, attack: "dfme" },
      kind: "below" as const,
    })),
    mnist_meco_gamma: [{
      statement: "target accuracy is higher at γ = 10 than at γ = 0.1",
      source: 'section 5: "model utility increases as γ increases"',
      metric: "target_acc",
      a: { defense: "meco gamma=10" },
      b: { defense: "meco gamma=0.1" },
      kind: "above",
    }, {
      statement: "the clone is more accurate at γ = 10 than at γ = 0.1",
      source: 'section 5: "with a trade-off of a decrease in defense performance"',
      metric: "clone_acc",
      a: { defense: "meco gamma=10", attack: "dfme" },
      b: { defense: "meco gamma=0.1", attack: "dfme" },
      kind: "above",
    }],
    mnist_meco_q: ["meco Q=0", "meco Q=1"].map((d) => ({
      statement: `the clone is less accurate at Q = 2 than at ${d.slice(5)}`,
      source: 'section 5: "Q = 2 performs the best"',
      metric: "clone_acc" as const,
      a: { defense: "meco Q=2", attack: "dfme" },
      b: { defense: d, attack: "dfme" },
      kind: "below" as const,
    })),
    mnist_meco_dro: [{
      statement: "DRO raises the target's accuracy over MeCo without DRO",
      source: 'section 5: "with DRO, our method significantly improves the model utility by 5.3% - 5.6%"',
      metric: "target_acc",
      a: { defense: "meco" },
      b: { defense: "meco w/o DRO" },
      kind: "above",
    }, {
      statement: "DRO lowers the DFME clone's accuracy over MeCo without DRO",
      source: "Table 12 (the ablation's protection column)",
      metric: "clone_acc",
      a: { defense: "meco", attack: "dfme" },
      b: { defense: "meco w/o DRO", attack: "dfme" },
      kind: "below",
    }],
  };
  return [...claims, ...(extra[experiment] ?? [])];
}

function num(x: number, digits: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
}

function digitsOf(metric: string): number {
  return metric === "l1" ? 4 : metric.startsWith("ms") ? 3 : 2;
}

/** "+0.29 [+0.04, +0.54]" or "+0.29 (n = 1, no CI)". */
export function formatInterval(i: Interval | undefined, digits: number): string {
  if (i === undefined) return "—";
  return i.hasInterval
    ? `${num(i.diff, digits)} [${num(i.lo, digits)}, ${num(i.hi, digits)}]`
    : `${num(i.diff, digits)} (n = 1, no CI)`;
}

/** The one summary sentence of a verdict. */
export function verdictSentence(
  experiment: string,
  profile: string,
  cells: CellVerdict[],
  claims: ClaimVerdict[],
): string {
  const comparable = cells.filter((c) => c.outcome !== "not comparable");
  const reproduced = comparable.filter((c) => c.outcome === "reproduced");
  const missed = comparable.filter((c) => c.outcome === "not reproduced");
  const parts: string[] = [];
  if (profile === "smoke") parts.push("at the smoke profile no cell is compared with the paper");
  else if (comparable.length === 0) parts.push("no cell has a paper number to compare with");
  else {
    const worst = missed.slice(0, 3).map((c) =>
      `${c.defense}${c.attack === "none" ? "" : `/${c.attack}`} ${c.header} Δ ${
        formatInterval(c.interval, digitsOf(c.metric))
      }`
    );
    parts.push(
      `${reproduced.length} of ${comparable.length} comparable cells reproduced the paper` +
        (missed.length > 0 ? ` (not: ${worst.join("; ")}${missed.length > 3 ? "; …" : ""})` : ""),
    );
  }
  for (const c of claims) {
    const digits = digitsOf(c.claim.metric);
    parts.push(
      `"${c.claim.statement}" ${c.outcome}` +
        (c.interval === undefined
          ? ""
          : ` (Δ ${formatInterval(c.interval, digits)}${c.interval.hasInterval ? ", Welch's t 95%" : ""})`),
    );
  }
  return `${experiment} (${profile} profile): ${parts.join("; ")}.`;
}

/** Verdicts of the cells and claims of an aggregated defense × attack table. */
export function tableVerdict(
  experiment: string,
  profile: string,
  table: AggregateRow[],
  metrics: ("target_acc" | "l1" | "clone_acc")[] = ["target_acc", "l1", "clone_acc"],
  paper: PaperNumbers = PAPER,
): TableVerdict {
  const cells = rowCells(experiment, table, metrics, paper).map((c) => cellVerdict(c, profile));
  const claims = claimsFor(experiment, table).filter((c) => (metrics as string[]).includes(c.metric)).map((c) =>
    claimVerdict(c, table)
  );
  return { experiment, profile, cells, claims, sentence: verdictSentence(experiment, profile, cells, claims) };
}

const statText = (s: Stat | null, digits: number) =>
  s === null ? "—" : s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}` : s.mean.toFixed(digits);

/**
 * A verdict as a notebook display: the sentence, the cells (ours, paper, Δ
 * with its 95% interval, τ, outcome), the claims (A, B, Δ with Welch's
 * interval, outcome) and the rule. Its text starts with "Verdict".
 */
export function verdictDisplay(v: TableVerdict): Displayable {
  const cellCols: Column[] = [
    { header: "defense", cell: (r) => String(r.defense) },
    { header: "attack", cell: (r) => String(r.attack) },
    { header: "metric", cell: (r) => String(r.header) },
    { header: "n", cell: (r) => String((r.ours as Stat | null)?.n ?? 0) },
    { header: "ours", cell: (r) => statText(r.ours as Stat | null, digitsOf(String(r.metric))) },
    { header: "paper", cell: (r) => String(r.paper ?? "—") },
    { header: "Δ [95% CI]", cell: (r) => String(r.delta) },
    { header: "τ", cell: (r) => String(r.tau) },
    { header: "verdict", cell: (r) => String(r.outcome) },
  ];
  const cellRows: AggregateRow[] = v.cells.map((c) => ({
    defense: c.defense,
    attack: c.attack,
    header: c.header,
    metric: c.metric,
    ours: c.ours,
    paper: c.paper?.printed ?? null,
    delta: c.outcome === "not comparable" ? "—" : formatInterval(c.interval, digitsOf(c.metric)),
    tau: c.tolerance === undefined ? "—" : c.tolerance.toFixed(digitsOf(c.metric)),
    outcome: c.outcome === "not comparable" ? `not comparable: ${c.reason}` : c.outcome,
  }));
  const claimCols: Column[] = [
    { header: "claim", cell: (r) => String(r.statement) },
    { header: "A", cell: (r) => String(r.a) },
    { header: "B", cell: (r) => String(r.b) },
    { header: "Δ = A − B [95% CI]", cell: (r) => String(r.delta) },
    { header: "method", cell: (r) => String(r.method) },
    { header: "verdict", cell: (r) => String(r.outcome) },
    { header: "paper", cell: (r) => String(r.source) },
  ];
  const armText = (arm: Arm, s: Stat | null, metric: string) =>
    `${arm.defense}${arm.attack === undefined ? "" : `/${arm.attack}`}: ${statText(s, digitsOf(metric))}${
      s === null ? "" : ` (n = ${s.n})`
    }`;
  const claimRows: AggregateRow[] = v.claims.map((c) => ({
    statement: c.claim.statement,
    a: armText(c.claim.a, c.a, c.claim.metric),
    b: armText(c.claim.b, c.b, c.claim.metric),
    delta: formatInterval(c.interval, digitsOf(c.claim.metric)),
    method: c.interval === undefined ? "—" : c.interval.hasInterval ? c.interval.method : "none (n = 1)",
    outcome: c.outcome,
    source: c.claim.source,
  }));
  const head = `Verdict — ${v.sentence}`;
  const cells = v.cells.length > 0
    ? tableBundle(cellRows, cellCols, `Cells of ${v.experiment} against the paper`)
    : { "text/html": "", "text/plain": "" };
  const claims = v.claims.length > 0
    ? tableBundle(claimRows, claimCols, `Claims tested on ${v.experiment}`)
    : { "text/html": "<p>No claim of the paper is tested by this table.</p>", "text/plain": "No claim tested." };
  const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  return display({
    "text/html": `<p><b>Verdict.</b> ${esc(v.sentence)}</p>${cells["text/html"]}${claims["text/html"]}<p><i>Rule.</i> ${
      esc(VERDICT_RULE)
    }</p>`,
    "text/plain": [head, cells["text/plain"], claims["text/plain"], `Rule: ${VERDICT_RULE}`].filter((t) => t !== "")
      .join("\n\n"),
  });
}

/** The verdict of a table nothing of which can be compared, `why` saying why (e.g. "no results on this machine"). */
export function unavailableVerdict(experiment: string, why: string): TableVerdict {
  return {
    experiment,
    profile: "—",
    cells: [],
    claims: [],
    sentence: `${experiment}: not comparable (${why}).`,
  };
}
