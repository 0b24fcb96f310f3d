/**
 * The undefended victim as an {@linkcode Oracle}: softmax of the model's
 * logits in inference mode.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Oracle } from "./black_box.ts";

/**
 * An {@linkcode Oracle} answering with `softmax(model(x))`, the model run in
 * inference mode (BatchNorm uses moving statistics, no dropout).
 *
 * @example
 * ```ts ignore
 * const bb = new BlackBox(undefendedOracle(victim), { imageShape: [28, 28, 1], numClasses: 10, budget: 1e6 });
 * ```
 */
export function undefendedOracle(model: tf.LayersModel): Oracle {
  return {
    predict: (x) => tf.tidy(() => tf.softmax(model.apply(x, { training: false }) as tf.Tensor2D)),
  };
}
