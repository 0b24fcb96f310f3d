/**
 * One supervised training step: forward, loss, backward, optimizer update.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { crossEntropy } from "./losses.ts";
import { compileTrainStep } from "../backend/native/compiled_step.ts";

/**
 * A step function: trains on one batch and returns the batch loss. `dispose`
 * frees what the step keeps between calls (the compiled step's buffers).
 */
export type TrainStep = ((x: tf.Tensor, y: tf.Tensor1D) => tf.Scalar) & { dispose(): void };

/**
 * Makes a training step for `model` (which outputs logits) with cross-entropy
 * loss. The step runs the model in training mode (BatchNorm uses batch
 * statistics and updates its moving averages) and keeps no tensors but the
 * returned loss, which the caller disposes.
 *
 * Where the model's layers allow it and oneDNN runs the wasm backend, the
 * step is compiled (lib/backend/native/compiled_step.ts: one list of oneDNN
 * calls on buffers kept between steps, the same results up to rounding);
 * otherwise it runs through the tfjs engine. `MECO_COMPILED_STEP=0` keeps the
 * engine path. Call `dispose()` when done training.
 *
 * @example
 * ```ts
 * const step = makeTrainStep(lenet5({ seed: 0 }), tf.train.adam(1e-3));
 * const loss = step(x, y); console.log(loss.dataSync()[0]); loss.dispose();
 * ```
 */
export function makeTrainStep(model: tf.LayersModel, optimizer: tf.Optimizer): TrainStep {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const engineStep = (x: tf.Tensor, y: tf.Tensor1D) =>
    optimizer.minimize(
      () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, y),
      true,
      vars,
    ) as tf.Scalar;
  return compileTrainStep(model, optimizer, engineStep) ?? Object.assign(engineStep, { dispose: () => {} });
}
