/**
 * Utility metrics of a defense: accuracy of its outputs and their L1
 * distance from a reference (the same target's clean probabilities).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, gatherBatch, imageShape, sequentialBatches } from "../data/mod.ts";

/** Maps an image batch to probabilities [n, k]. */
export type ProbFn = (x: tf.Tensor4D) => tf.Tensor2D;

/**
 * Top-1 accuracy and mean ‖f(x) − g(x)‖₁ over `ds`, in one pass.
 *
 * @example
 * ```ts ignore
 * const { acc, l1 } = utility((x) => defense.predict(x), (x) => clean.predict(x), test);
 * ```
 */
export function utility(f: ProbFn, reference: ProbFn, ds: Dataset, batchSize = 500): { acc: number; l1: number } {
  const [, h, w, c] = imageShape(ds);
  let correct = 0, l1 = 0;
  for (const idx of sequentialBatches(ds.n, batchSize)) {
    const b = gatherBatch(ds, idx);
    const [cr, d] = tf.tidy(() => {
      const x = tf.tensor4d(b.images, [b.n, h, w, c]);
      const p = f(x), q = reference(x);
      const hit = tf.sum(tf.cast(tf.equal(tf.argMax(p, 1), tf.tensor1d(b.labels, "int32")), "int32"));
      const dist = tf.sum(tf.abs(tf.sub(p, q)));
      return [hit.dataSync()[0], dist.dataSync()[0]];
    });
    correct += cr;
    l1 += d;
  }
  return { acc: correct / ds.n, l1: l1 / ds.n };
}
