/**
 * LeNet-5 for 28×28×1 images, as in the MeCo/DFME MNIST experiments:
 * conv5×5(6, same) → relu → maxpool2 → conv5×5(16, valid) → relu → maxpool2 →
 * fc120 → relu → fc84 → relu → fc10 (logits).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { SeedStream, torchBiasInit, torchWeightInit } from "./init.ts";

/** Options for {@linkcode lenet5}. */
export interface LenetOptions {
  /** Initialisation seed. */
  seed: number;
  /** Input image shape [h, w, c]; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  /** Number of classes; default 10. */
  classes?: number;
}

/**
 * Builds a LeNet-5 that outputs logits.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * const model = lenet5({ seed: 0 });
 * const logits = model.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor; // [1, 10]
 * console.log(logits.shape);
 * ```
 */
export function lenet5(opts: LenetOptions): tf.LayersModel {
  const s = new SeedStream(opts.seed);
  const [h, w, c] = opts.inputShape ?? [28, 28, 1];
  const classes = opts.classes ?? 10;
  const conv = (filters: number, padding: "same" | "valid", cin: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: 5,
      padding,
      activation: "relu",
      kernelInitializer: torchWeightInit(s),
      biasInitializer: torchBiasInit(cin * 25, s),
    });
  const dense = (units: number, fanIn: number, activation?: "relu") =>
    tf.layers.dense({
      units,
      activation,
      kernelInitializer: torchWeightInit(s),
      biasInitializer: torchBiasInit(fanIn, s),
    });
  const x = tf.input({ shape: [h, w, c] });
  let y = conv(6, "same", c).apply(x) as tf.SymbolicTensor;
  y = tf.layers.maxPooling2d({ poolSize: 2 }).apply(y) as tf.SymbolicTensor;
  y = conv(16, "valid", 6).apply(y) as tf.SymbolicTensor;
  y = tf.layers.maxPooling2d({ poolSize: 2 }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.flatten().apply(y) as tf.SymbolicTensor;
  const flat = y.shape[1] as number;
  y = dense(120, flat, "relu").apply(y) as tf.SymbolicTensor;
  y = dense(84, 120, "relu").apply(y) as tf.SymbolicTensor;
  y = dense(classes, 84).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y, name: "lenet5" });
}
