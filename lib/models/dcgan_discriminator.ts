/**
 * A DCGAN discriminator (Radford et al. 2016) for small images, as DFMS-HL
 * uses it: conv4×4 stride 2 (g) → LeakyReLU(0.2) → conv4×4 stride 2 (2g) →
 * BN → LeakyReLU(0.2) → flatten → dense(1). It outputs one logit per image
 * (real vs generated); the paired generator is the DFME generator
 * ({@linkcode dfmeGenerator}, upsampling convolutions, pre-tanh output).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNorm, SeedStream, torchBiasInit, torchWeightInit } from "./init.ts";

/** Options for {@linkcode dcganDiscriminator}. */
export interface DcganDiscriminatorOptions {
  /** Initialisation seed. */
  seed: number;
  /** Image shape [h, w, c]. */
  imageShape: [number, number, number];
  /** Base width g (filters of the first conv; default 64). */
  width?: number;
}

/**
 * Builds the discriminator: images [n, h, w, c] in [-1, 1] → logits [n, 1].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { dcganDiscriminator } from "./dcgan_discriminator.ts";
 * const d = dcganDiscriminator({ seed: 0, imageShape: [28, 28, 1], width: 8 });
 * const logits = d.apply(tf.zeros([2, 28, 28, 1])) as tf.Tensor; // [2, 1]
 * ```
 */
export function dcganDiscriminator(opts: DcganDiscriminatorOptions): tf.LayersModel {
  const g = opts.width ?? 64;
  const [h, w, c] = opts.imageShape;
  if (!Number.isInteger(g) || g < 1) {
    throw new RangeError(`dcganDiscriminator: width must be a positive integer, got ${g}`);
  }
  const s = new SeedStream(opts.seed);
  const conv = (filters: number, cin: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: 4,
      strides: 2,
      padding: "same",
      kernelInitializer: torchWeightInit(s),
      biasInitializer: torchBiasInit(cin * 16, s),
    });
  const lrelu = () => tf.layers.leakyReLU({ alpha: 0.2 });
  const x = tf.input({ shape: [h, w, c] });
  let y = lrelu().apply(conv(g, c).apply(x)) as tf.SymbolicTensor;
  y = lrelu().apply(batchNorm().apply(conv(2 * g, g).apply(y))) as tf.SymbolicTensor;
  y = tf.layers.flatten().apply(y) as tf.SymbolicTensor;
  const fanIn = Math.ceil(h / 4) * Math.ceil(w / 4) * 2 * g;
  y = tf.layers.dense({
    units: 1,
    kernelInitializer: torchWeightInit(s),
    biasInitializer: torchBiasInit(fanIn, s),
  }).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: y, name: "dcgan_discriminator" });
}
