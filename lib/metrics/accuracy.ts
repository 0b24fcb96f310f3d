/**
 * Accuracy of a classifier over a dataset, in batches (the utility of a
 * defense, accuracy and L1 distance in one pass, is lib/metrics/utility.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, gatherBatch, imageShape, sequentialBatches } from "../data/mod.ts";

/** Anything that maps an image batch to logits or probabilities [n, k]. */
export type Predictor = (x: tf.Tensor4D) => tf.Tensor2D;

/** Wraps a tfjs-layers model as an inference-mode {@linkcode Predictor}. */
export function predictorOf(model: tf.LayersModel): Predictor {
  return (x) => model.apply(x, { training: false }) as tf.Tensor2D;
}

/**
 * Top-1 accuracy of `predict` on `ds` (a fraction in [0, 1]).
 *
 * @example
 * ```ts ignore
 * const acc = accuracy(predictorOf(model), await loadDataset("mnist", "test"));
 * ```
 */
export function accuracy(predict: Predictor, ds: Dataset, batchSize = 500): number {
  let correct = 0;
  const [, h, w, c] = imageShape(ds);
  for (const idx of sequentialBatches(ds.n, batchSize)) {
    const b = gatherBatch(ds, idx);
    correct += tf.tidy(() => {
      const x = tf.tensor4d(b.images, [b.n, h, w, c]);
      const pred = tf.argMax(predict(x), 1);
      return tf.sum(tf.cast(tf.equal(pred, tf.tensor1d(b.labels, "int32")), "int32")).dataSync()[0];
    });
  }
  return correct / ds.n;
}
