/**
 * One training step for any classifier, optimizer and loss: forward, loss,
 * backward, optimizer update. Every training loop of the workbench (`fit`,
 * the attacks' clone training) steps through a {@linkcode Trainer}.
 *
 * A trainer picks its path at every step. Where the model's layers allow it,
 * the loss has a compiled form and oneDNN runs the wasm backend, the step is
 * compiled (lib/backend's `CompiledTrainer`: one list of oneDNN calls on
 * buffers kept between steps, the same results up to rounding); otherwise it
 * runs through the tfjs engine (`optimizer.minimize` over the model's
 * trainable weights). `MECO_COMPILED_STEP=0` keeps the engine path. Either
 * way the update is the optimizer's own `applyGradients`, so its state,
 * checkpoints and learning-rate schedules do not depend on the path.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { lenet5 } from "../models/lenet.ts";
 * import { CROSS_ENTROPY } from "./losses.ts";
 * import { makeTrainer } from "./trainer.ts";
 * const trainer = makeTrainer(lenet5({ seed: 0 }), tf.train.adam(1e-3), CROSS_ENTROPY);
 * const loss = trainer.step(tf.zeros([8, 28, 28, 1]), tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], "int32"));
 * console.log(loss.dataSync()[0]);
 * loss.dispose();
 * trainer.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { compiledStepAvailable, CompiledTrainer } from "../backend/mod.ts";
import type { TrainingLoss } from "./losses.ts";

/** Training steps of one model with one optimizer and one loss, against targets of type `T`. */
export interface Trainer<T extends tf.Tensor> {
  /**
   * One step on the batch `x` (the model in training mode: BatchNorm uses
   * batch statistics and updates its moving averages) towards `target`;
   * returns the batch loss, which the caller disposes. Keeps no other tensors.
   */
  step(x: tf.Tensor, target: T): tf.Scalar;
  /** Steps that ran compiled so far. */
  readonly compiledRuns: number;
  /** Frees what the trainer keeps between steps (the compiled step's buffers); not the model or the optimizer. */
  dispose(): void;
}

/**
 * A {@linkcode Trainer} of `model` (which outputs logits) with `optimizer`
 * on `loss` (see lib/train/losses.ts).
 *
 * @example
 * ```ts ignore
 * const trainer = makeTrainer(clone, optimizer, L1_LOSS);
 * tf.tidy(() => trainer.step(x, target));
 * trainer.dispose();
 * ```
 */
export function makeTrainer<T extends tf.Tensor>(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  loss: TrainingLoss<T>,
): Trainer<T> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const compiled = loss.compiled !== undefined ? CompiledTrainer.for(model, optimizer) : undefined;
  return {
    step(x: tf.Tensor, target: T): tf.Scalar {
      // The compiled loss reads the targets back: build it only where the compiled step can run.
      const logitsLoss = compiled !== undefined && compiledStepAvailable()
        ? loss.compiled!(target, x.shape[0])
        : undefined;
      if (logitsLoss !== undefined) {
        const value = compiled!.step(x, logitsLoss);
        if (value !== undefined) return tf.scalar(value);
      }
      return optimizer.minimize(
        () => loss.engine(model.apply(x, { training: true }) as tf.Tensor2D, target),
        true,
        vars,
      ) as tf.Scalar;
    },
    get compiledRuns(): number {
      return compiled?.compiledRuns ?? 0;
    },
    dispose(): void {
      compiled?.dispose();
    },
  };
}
