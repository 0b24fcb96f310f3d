/**
 * The attacker's own data, for the data-based attacks: natural images of a
 * surrogate dataset (Knockoff Nets) and a small seed pool (JBDA). Loading
 * them is not querying the victim; only the BlackBox answers about the
 * victim, and it counts every query.
 *
 * @module
 */
import { type Dataset, type DatasetName, loadDataset, toSignedRange } from "../data/mod.ts";
import type { ExperimentData } from "./data.ts";

/** Data an attack may use besides the black box. */
export interface AttackerData {
  /** The train split of a registered dataset, in [-1, 1], with its own labels (loaded once, then shared). */
  surrogate(name: DatasetName | "miniimagenet"): Promise<Dataset>;
  /** The seed pool: the experiment's test split, in [-1, 1] (JBDA draws its seed set from it; labels unused). */
  seedPool(): Promise<Dataset>;
}

/**
 * The attacker data of an experiment: surrogate sets loaded on first use
 * (with the registry's default locations) and cached for the process; the
 * seed pool is the experiment's (possibly subset) test split.
 */
export function attackerData(data: Pick<ExperimentData, "test">): AttackerData {
  return {
    surrogate: (name) => loadSurrogate(name),
    seedPool: () => Promise.resolve(data.test),
  };
}

const surrogates = new Map<DatasetName, Promise<Dataset>>();

async function loadSurrogate(name: DatasetName | "miniimagenet"): Promise<Dataset> {
  if (name === "miniimagenet") throw new Error("surrogate dataset 'miniimagenet' is not available in this build");
  let p = surrogates.get(name);
  if (p === undefined) {
    p = loadDataset(name, "train").then(toSignedRange);
    surrogates.set(name, p);
    p.catch(() => surrogates.delete(name));
  }
  return await p;
}
