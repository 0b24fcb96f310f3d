/**
 * The data of an experiment: train and test splits in the models' [-1, 1]
 * range, with the config's subsets applied.
 *
 * @module
 */
import type { ExperimentConfig } from "../config/mod.ts";
import { DataError, type Dataset, loadDataset, resizeDataset, subset, toSignedRange } from "../data/mod.ts";

/** Train and test splits of an experiment, in [-1, 1]. */
export interface ExperimentData {
  /** Training split (possibly a seeded subset: dataset.train_subset). */
  train: Dataset;
  /** Test split (possibly a seeded subset: eval.test_subset). */
  test: Dataset;
}

/** Loads the config's dataset (train and test), resizes it to `dataset.image_size` if set, and maps it to [-1, 1]. */
export async function loadExperimentData(cfg: ExperimentConfig): Promise<ExperimentData> {
  const opts = { dir: cfg.dataset.dir, download: cfg.dataset.download, imageSize: cfg.dataset.image_size };
  const name = cfg.dataset.name;
  let [train, test] = await Promise.all([loadDataset(name, "train", opts), loadDataset(name, "test", opts)]);
  if (cfg.dataset.train_subset !== undefined && cfg.dataset.train_subset < train.n) {
    train = subset(train, cfg.dataset.train_subset, { seed: 0 });
  }
  if (cfg.eval.test_subset !== undefined && cfg.eval.test_subset < test.n) {
    test = subset(test, cfg.eval.test_subset, { seed: 0 });
  }
  const size = cfg.dataset.image_size;
  if (size !== undefined) [train, test] = [resizeDataset(train, size), resizeDataset(test, size)];
  return { train: toSignedRange(train), test: toSignedRange(test) };
}

/**
 * Whether the config's datasets can be had on this machine (on disk, or
 * downloaded when `dataset.download` and the loader allow it): the
 * experiment's dataset and every attack's own surrogate dataset (Knockoff's
 * `surrogate_dataset`). Undefined when they can, else a sentence saying what
 * is missing and where it is looked for. Notebooks of datasets that are not
 * here (CIFAR, MiniImageNet) use it to say so instead of failing.
 *
 * @example
 * ```ts ignore
 * const missing = await missingData(loaded.config);
 * if (missing) console.log(`not run: ${missing}`);
 * ```
 */
export async function missingData(cfg: ExperimentConfig): Promise<string | undefined> {
  const name = cfg.dataset.name;
  try {
    await loadDataset(name, "test", {
      dir: cfg.dataset.dir,
      download: cfg.dataset.download,
      imageSize: cfg.dataset.image_size,
    });
  } catch (e) {
    if (e instanceof DataError) return `dataset '${name}' is not on this machine: ${e.message}`;
    throw e;
  }
  const surrogates = new Set(
    cfg.attacks.flatMap((a) => "surrogate_dataset" in a && a.surrogate_dataset !== name ? [a.surrogate_dataset] : []),
  );
  for (const s of surrogates) {
    try {
      await loadDataset(s, "test");
    } catch (e) {
      if (e instanceof DataError) return `the attacker's dataset '${s}' is not on this machine: ${e.message}`;
      throw e;
    }
  }
  return undefined;
}
