/**
 * Smaller datasets from larger ones: the first `n` examples, a seeded random
 * sample of `n`, or the examples at given indices.
 *
 * @module
 */

import { gatherBatch } from "./batches.ts";
import { shuffledIndices } from "./rng.ts";
import type { Dataset } from "./dataset.ts";

/**
 * A new dataset holding copies of the examples of `ds` at `indices`, in that
 * order; other fields are kept.
 */
export function selectExamples(
  ds: Dataset,
  indices: ArrayLike<number>,
): Dataset {
  const { images, labels, n } = gatherBatch(ds, indices);
  return { ...ds, images, labels, n };
}

/** Options for {@linkcode subset}. */
export interface SubsetOptions {
  /** If set, take a random sample (without replacement) fixed by this seed instead of the first `n`. */
  seed?: number;
}

/**
 * A dataset of `n` examples of `ds`: the first `n`, or with `seed` a seeded
 * random sample without replacement. `n` larger than `ds.n` is a `RangeError`.
 *
 * @example
 * ```ts ignore
 * import { subset } from "./subset.ts";
 * const small = subset(train, 1000, { seed: 0 });
 * ```
 */
export function subset(
  ds: Dataset,
  n: number,
  opts: SubsetOptions = {},
): Dataset {
  if (!Number.isInteger(n) || n < 0 || n > ds.n) {
    throw new RangeError(
      `subset size must be an integer in [0, ${ds.n}] for ${ds.name}, got ${n}`,
    );
  }
  if (opts.seed === undefined) {
    return {
      ...ds,
      images: ds.images.slice(0, n * ds.height * ds.width * ds.channels),
      labels: ds.labels.slice(0, n),
      n,
    };
  }
  return selectExamples(ds, shuffledIndices(ds.n, opts.seed).subarray(0, n));
}
