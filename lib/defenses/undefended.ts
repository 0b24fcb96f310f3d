/**
 * No defense: the victim's softmax probabilities as they are.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Defense } from "./defense.ts";

/**
 * Wraps `model` (logits) as an undefended {@linkcode Defense}, named `name`
 * (default "undefended"): `softmax(model(x))`, the model run in inference mode
 * (BatchNorm uses moving statistics, no dropout). It does not own the model.
 *
 * @example
 * ```ts ignore
 * const bb = new BlackBox(undefended(victim), { imageShape: [28, 28, 1], numClasses: 10, budget: 1e6 });
 * ```
 */
export function undefended(model: tf.LayersModel, name = "undefended"): Defense {
  return {
    name,
    predict: (x) => tf.tidy(() => tf.softmax(model.apply(x, { training: false }) as tf.Tensor2D)),
    dispose: () => {},
  };
}
