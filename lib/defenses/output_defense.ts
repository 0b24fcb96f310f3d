/**
 * Output-side defenses: the victim's softmax probabilities, post-processed row
 * by row on the host (k values per query, so the cost is the victim's forward
 * pass plus a small host loop; see lib/defenses/output_math.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Defense } from "./defense.ts";

/** Rewrites the probability rows y ([n·k], row-major) of the batch `x`; may use `x` (surrogate-based defenses). */
export type RowTransform = (y: Float32Array, k: number, x: tf.Tensor4D) => Float32Array;

/**
 * A {@linkcode Defense} answering `transform(softmax(victim(x)))`. `owned` is
 * disposed with the defense (e.g. a surrogate); the victim is not.
 *
 * @example
 * ```ts ignore
 * const d = outputDefense("top1", victim, (y, k) => top1Rows(y, k));
 * ```
 */
export function outputDefense(
  name: string,
  victim: tf.LayersModel,
  transform: RowTransform,
  owned: { dispose(): void }[] = [],
): Defense {
  return {
    name,
    predict: (x) => {
      const probs = tf.tidy(() => tf.softmax(victim.apply(x, { training: false }) as tf.Tensor2D));
      const [n, k] = probs.shape;
      let y: Float32Array;
      try {
        y = probs.dataSync() as Float32Array;
      } finally {
        probs.dispose();
      }
      return tf.tensor2d(transform(y, k, x), [n, k]);
    },
    dispose: () => owned.forEach((o) => o.dispose()),
  };
}
