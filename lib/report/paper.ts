/**
 * Numbers the paper reports, keyed by experiment, so that tables show ours
 * beside theirs. Only numbers we could verify are listed; a missing entry is
 * shown as "—", never guessed.
 *
 * @module
 */

/** A paper number for one (defense, attack) row: accuracies in percent, L1 as a raw distance. */
export interface PaperRow {
  /** Target (defended) test accuracy, %. */
  target_acc?: number;
  /** Mean L1 distance of defended from clean outputs. */
  l1?: number;
  /** Clone test accuracy, %. */
  clone_acc?: number;
}

/** Where a table's numbers come from. */
export interface PaperTable {
  /** Citation of the table. */
  source: string;
  /** Rows by "defense/attack". */
  rows: Record<string, PaperRow>;
}

/** The paper's numbers per experiment name. */
export const PAPER: Record<string, PaperTable> = {
  mnist_dfme: {
    source: "MeCo (Wang et al., NeurIPS 2023), Table 3, MNIST, score-based DFME, 2M queries",
    rows: {
      "undefended/dfme": { target_acc: 98.91 },
      "meco/dfme": { target_acc: 98.6, l1: 0.0126 },
    },
  },
};

/** The paper's row for (experiment, defense, attack), if known. */
export function paperRow(experiment: string, defense: string, attack: string): PaperRow | undefined {
  return PAPER[experiment]?.rows[`${defense}/${attack}`];
}
