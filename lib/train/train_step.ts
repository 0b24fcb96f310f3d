/**
 * One supervised training step: forward, loss, backward, optimizer update.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { crossEntropy } from "./losses.ts";

/** A step function: trains on one batch and returns the batch loss. */
export type TrainStep = (x: tf.Tensor, y: tf.Tensor1D) => tf.Scalar;

/**
 * Makes a training step for `model` (which outputs logits) with cross-entropy
 * loss. The step runs the model in training mode (BatchNorm uses batch
 * statistics and updates its moving averages) and keeps no tensors but the
 * returned loss, which the caller disposes.
 *
 * @example
 * ```ts
 * const step = makeTrainStep(lenet5({ seed: 0 }), tf.train.adam(1e-3));
 * const loss = step(x, y); console.log(loss.dataSync()[0]); loss.dispose();
 * ```
 */
export function makeTrainStep(model: tf.LayersModel, optimizer: tf.Optimizer): TrainStep {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return (x, y) =>
    optimizer.minimize(
      () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, y),
      true,
      vars,
    ) as tf.Scalar;
}
