/**
 * No defense: the victim's softmax probabilities as they are.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Defense } from "./defense.ts";

/** Wraps `model` (logits) as an undefended {@linkcode Defense}. */
export function undefended(model: tf.LayersModel): Defense {
  return {
    name: "undefended",
    predict: (x) => tf.tidy(() => tf.softmax(model.apply(x, { training: false }) as tf.Tensor2D)),
    dispose: () => {},
  };
}
