/**
 * The bridge from a plain {@linkcode Dataset} (or {@linkcode Batch}) to
 * tfjs tensors. Kept apart so that the readers never depend on tfjs; import
 * this file directly (it is not re-exported by `mod.ts`).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "./batches.ts";
import type { Dataset } from "./dataset.ts";

/** Image and label tensors of a dataset or batch. */
export interface DatasetTensors {
  /** Images, shape `[n, height, width, channels]`, float32. */
  xs: tf.Tensor4D;
  /** Labels: int32 `[n]`, or float32 `[n, numClasses]` when one-hot. */
  ys: tf.Tensor1D | tf.Tensor2D;
}

/** Options for {@linkcode toTensors}. */
export interface ToTensorsOptions {
  /** Return labels one-hot encoded (float32 `[n, numClasses]`). */
  oneHot?: boolean;
}

/**
 * Copies a dataset, or a batch of it, into tensors on the active tfjs
 * backend. The caller owns (and must dispose) the returned tensors.
 *
 * @param ds The dataset (its shape and class count are used).
 * @param batch A batch gathered from `ds`; if absent, the whole dataset.
 * @param opts Label encoding.
 *
 * @example
 * ```ts ignore
 * import { toTensors } from "./to_tensors.ts";
 * const { xs, ys } = toTensors(ds, undefined, { oneHot: true });
 * xs.dispose(); ys.dispose();
 * ```
 */
export function toTensors(
  ds: Dataset,
  batch?: Batch,
  opts: ToTensorsOptions = {},
): DatasetTensors {
  const src = batch ?? ds;
  const xs = tf.tensor4d(src.images, [src.n, ds.height, ds.width, ds.channels]);
  if (!opts.oneHot) return { xs, ys: tf.tensor1d(src.labels, "int32") };
  const ys = tf.tidy(() =>
    tf.cast(
      tf.oneHot(tf.tensor1d(src.labels, "int32"), ds.numClasses),
      "float32",
    )
  ) as tf.Tensor2D;
  return { xs, ys };
}
