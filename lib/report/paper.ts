/**
 * Numbers the paper reports, so that tables show ours beside theirs. They
 * live in one data file, `paper_numbers.json`: each number with its table,
 * dataset, row (defense, and attack where the table has several) and metric;
 * each experiment names the tables it mirrors. A number that is not in the
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

const ROW_METRICS: readonly string[] = ["target_acc", "l1", "clone_acc"];

/** One number of the paper. */
export interface PaperCell {
  /** Dataset of the row. */
  dataset: string;
  /** Defense label of the row (as our configs label it). */
  defense: string;
  /** Attack label; absent when the number does not depend on the attack (utility). */
  attack?: string;
  /** Which metric. */
  metric: PaperMetric | PaperCostMetric;
  /** The number as printed (%, or a raw L1 distance). */
  value: number;
}

/** A table of the paper: title, how much of it is here, its cells. */
export interface PaperTable {
  /** The table's subject. */
  title: string;
  /** "complete", "partial: …" or "unavailable". */
  status: string;
  /** Its numbers (none when unavailable). */
  cells?: PaperCell[];
}

/** The whole data file. */
export interface PaperNumbers {
  /** Citation. */
  paper: string;
  /** How the numbers were gathered. */
  note: string;
  /** Tables by number ("3", "10", …, "fig5"). */
  tables: Record<string, PaperTable>;
  /** Experiment name → the tables it mirrors and its dataset. */
  experiments: Record<string, { tables: string[]; dataset: string }>;
}

/** The paper's numbers, as loaded from `paper_numbers.json`. */
export const PAPER: PaperNumbers = numbers as PaperNumbers;

/** The paper's row for (experiment, defense, attack), if any number of it is known. */
export function paperRow(experiment: string, defense: string, attack: string): PaperRow | undefined {
  const exp = PAPER.experiments[experiment];
  if (exp === undefined) return undefined;
  const row: PaperRow = {};
  let found = false;
  for (const t of exp.tables) {
    for (const c of PAPER.tables[t]?.cells ?? []) {
      if (c.dataset !== exp.dataset || c.defense !== defense) continue;
      if (c.attack !== undefined && c.attack !== attack) continue;
      if (!ROW_METRICS.includes(c.metric)) continue;
      const metric = c.metric as PaperMetric;
      if (row[metric] === undefined) {
        row[metric] = c.value;
        found = true;
      }
    }
  }
  return found ? row : undefined;
}

/** The paper's cost number (Tables 13–15) of `defense` for `metric`, if the data file has it. */
export function paperCost(experiment: string, defense: string, metric: PaperCostMetric): number | undefined {
  const exp = PAPER.experiments[experiment];
  for (const t of exp?.tables ?? []) {
    const hit = (PAPER.tables[t]?.cells ?? []).find((c) =>
      c.dataset === exp.dataset && c.defense === defense && c.metric === metric
    );
    if (hit !== undefined) return hit.value;
  }
  return undefined;
}

/** What the paper's column of `experiment` holds, e.g. "Table 3 (partial: MNIST row only); Table 7 (unavailable)". */
export function paperSource(experiment: string): string {
  const exp = PAPER.experiments[experiment];
  if (exp === undefined) return "no table of the paper is mapped to this experiment";
  return exp.tables.map((t) => {
    const table = PAPER.tables[t];
    const name = t.startsWith("fig") ? `Figure ${t.slice(3)}` : `Table ${t}`;
    return table === undefined ? `${name} (not in paper_numbers.json)` : `${name} (${table.status})`;
  }).join("; ");
}
