/**
 * Numbers the paper reports, so that tables show ours beside theirs. They
 * live in one data file, `paper_numbers.json`: every number of the paper's
 * text with its table, row and column as printed, the setting it belongs to in
 * our labels (dataset, defense, attack, victim and clone architecture), its
 * metric and the text it was read from; each experiment names the tables it
 * mirrors and the setting its rows stand for. A number that is not in the
 * file is shown as "—", never guessed.
 *
 * @module
 */
import numbers from "./paper_numbers.json" with { type: "json" };

/** A paper number for one (defense, attack) row: accuracies in percent, L1 as a raw distance. */
export interface PaperRow {
  /** Target (defended) test accuracy, %. */
  target_acc?: number;
  /** Mean L1 distance of defended from clean outputs. */
  l1?: number;
  /** Clone test accuracy, %. */
  clone_acc?: number;
}

/** The attack/utility metrics a paper cell may give. */
export type PaperMetric = keyof PaperRow;

/**
 * The deployment-cost metrics (Tables 13–15): ms per query at batch 1 and at
 * batch 256, peak MiB at batch 256, minutes of a full training run.
 */
export type PaperCostMetric = "ms_b1" | "ms_per_query_b256" | "peak_mib_b256" | "train_minutes";

/** The metrics a results row can be compared on. */
export const ROW_METRICS: readonly PaperMetric[] = ["target_acc", "l1", "clone_acc"];

/** The cost metrics of Tables 13–15. */
export const COST_METRICS: readonly PaperCostMetric[] = [
  "ms_b1",
  "ms_per_query_b256",
  "peak_mib_b256",
  "train_minutes",
];

/** One number of the paper. */
export interface PaperCell {
  /** Table id ("1", …, "15", "fig5"), or "text" for a number stated in the running text. */
  table: string;
  /** The row as printed (for the text: the section it is stated in). */
  row: string;
  /** The column as printed (for the text: what the number measures). */
  column: string;
  /** Dataset of the setting (our name), when the number belongs to one. */
  dataset?: string;
  /** Defense label of the row (as our configs label it: undefended, randp, mad, grad, meco). */
  defense?: string;
  /** Attack label; absent when the number does not depend on the attack (utility). */
  attack?: string;
  /** Target (victim) architecture of the setting. */
  victim_arch?: string;
  /** Clone architecture of the setting. */
  clone_arch?: string;
  /** Which metric: a row metric, a cost metric, or a named quantity of the text. */
  metric: string;
  /** Unit: "%", "l1", "×", "queries", "count", "weight", "ms", "MiB", "minutes". */
  unit: string;
  /** The number as printed (%, raw L1, …). */
  value: number;
  /** The printed standard deviation, in the unit of `value`. */
  std?: number;
  /** The number exactly as the text prints it, e.g. "98.63 ± 0.28%". */
  printed: string;
  /** For a number of the running text: the sentence fragment it is stated in. */
  quote?: string;
  /** A remark on the number, e.g. where another table prints a different value for the same setting. */
  note?: string;
}

/** A table of the paper: title and how much of it is here. */
export interface PaperTable {
  /** The table's subject (its caption). */
  title: string;
  /** "complete", "complete: …", "partial: …" or "unavailable: …". */
  status: string;
}

/** What one experiment's rows stand for in the paper's tables. */
export interface PaperExperiment {
  /** The tables it mirrors, in order of precedence. */
  tables: string[];
  /** Its dataset. */
  dataset: string;
  /** Its victim's architecture. */
  victim_arch?: string;
  /** The clone architecture of its attacks, unless `attacks` says otherwise. */
  clone_arch?: string;
  /** Attack labels of its rows that stand for another attack or clone architecture of the paper. */
  attacks?: Record<string, { attack: string; clone_arch?: string }>;
}

/** The whole data file. */
export interface PaperNumbers {
  /** Citation. */
  paper: string;
  /** How the numbers were gathered. */
  note: string;
  /** Tables by id ("3", "10", …, "fig5", "text"). */
  tables: Record<string, PaperTable>;
  /** Every number. */
  numbers: PaperCell[];
  /** Experiment name → the tables it mirrors and its setting. */
  experiments: Record<string, PaperExperiment>;
}

/** The paper's numbers, as loaded from `paper_numbers.json`. */
export const PAPER: PaperNumbers = numbers as PaperNumbers;

/** The numbers of one table (all numbers without `table`). */
export function paperCells(table?: string, paper: PaperNumbers = PAPER): PaperCell[] {
  return table === undefined ? paper.numbers : paper.numbers.filter((c) => c.table === table);
}

/**
 * The paper's cell for one metric of the row (experiment, defense, attack):
 * the first of the experiment's tables holding a number for the row's
 * setting (dataset, defense, attack and clone architecture when the number
 * depends on them, victim architecture).
 */
export function paperCell(
  experiment: string,
  defense: string,
  attack: string,
  metric: PaperMetric | PaperCostMetric,
  paper: PaperNumbers = PAPER,
): PaperCell | undefined {
  const exp = paper.experiments[experiment];
  if (exp === undefined) return undefined;
  const alias = exp.attacks?.[attack];
  const att = alias?.attack ?? attack;
  const clone = alias?.clone_arch ?? exp.clone_arch;
  for (const t of exp.tables) {
    const hit = paper.numbers.find((c) =>
      c.table === t && c.metric === metric && c.dataset === exp.dataset && c.defense === defense &&
      (c.attack === undefined || c.attack === att) &&
      (c.clone_arch === undefined || c.clone_arch === clone) &&
      (c.victim_arch === undefined || exp.victim_arch === undefined || c.victim_arch === exp.victim_arch)
    );
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** The paper's row for (experiment, defense, attack), if any number of it is known. */
export function paperRow(
  experiment: string,
  defense: string,
  attack: string,
  paper: PaperNumbers = PAPER,
): PaperRow | undefined {
  const row: PaperRow = {};
  let found = false;
  for (const m of ROW_METRICS) {
    const c = paperCell(experiment, defense, attack, m, paper);
    if (c !== undefined) {
      row[m] = c.value;
      found = true;
    }
  }
  return found ? row : undefined;
}

/** The paper's cost number (Tables 13–15) of `defense` for `metric`, if the data file has it. */
export function paperCost(
  experiment: string,
  defense: string,
  metric: PaperCostMetric,
  paper: PaperNumbers = PAPER,
): number | undefined {
  const exp = paper.experiments[experiment];
  if (exp === undefined) return undefined;
  return paper.numbers.find((c) =>
    exp.tables.includes(c.table) && c.dataset === exp.dataset && c.defense === defense && c.metric === metric
  )?.value;
}

/** What the paper's column of `experiment` holds, e.g. "Table 7 (unavailable: …); Table 3 (complete)". */
export function paperSource(experiment: string, paper: PaperNumbers = PAPER): string {
  const exp = paper.experiments[experiment];
  if (exp === undefined) return "no table of the paper is mapped to this experiment";
  return exp.tables.map((t) => {
    const table = paper.tables[t];
    const name = t.startsWith("fig") ? `Figure ${t.slice(3)}` : `Table ${t}`;
    return table === undefined ? `${name} (not in paper_numbers.json)` : `${name} (${table.status.split(":")[0]})`;
  }).join("; ");
}

/** A paper cell's value as a table shows it: "98.63 ± 0.28" (std when printed), or "—". */
export function formatPaperCell(c: PaperCell | undefined, digits: number): string {
  if (c === undefined) return "—";
  return c.std === undefined ? c.value.toFixed(digits) : `${c.value.toFixed(digits)} ± ${c.std.toFixed(digits)}`;
}
