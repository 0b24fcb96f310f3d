/**
 * The DFME generator (Truong et al., CVPR 2021), layer for layer as the
 * reference: latent z → dense → BN → upsample×2 → conv3×3 (2g) → BN →
 * LeakyReLU(0.2) → upsample×2 → conv3×3 (g) → BN → LeakyReLU(0.2) →
 * conv3×3 (image channels) → BN without affine parameters (gamma 1, beta 0,
 * frozen). Each upsampling and the convolution after it run as one transposed
 * convolution by default (upsample_conv.ts; same weights and function).
 *
 * The model outputs the PRE-tanh image: DFME perturbs that tensor for its
 * zeroth-order gradient estimate, so callers apply `tf.tanh` themselves to get
 * images in [-1, 1].
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNorm, frozenAffineBatchNorm, SeedStream, torchBiasInit, torchWeightInit } from "./init.ts";
import { upsampleConv2d } from "./upsample_conv.ts";

/** Options for {@linkcode dfmeGenerator}. */
export interface DfmeGeneratorOptions {
  /** Initialisation seed. */
  seed: number;
  /** Latent size (default 256). */
  nz?: number;
  /** Base width g (default 64, the reference): the convolutions have 2g and g filters. */
  width?: number;
  /** Output image shape [h, w, c], h and w divisible by 4 (default [28, 28, 1]). */
  imageShape?: [number, number, number];
  /**
   * The last BatchNorm's affine parameters: `fixed` (default, the reference: gamma 1, beta 0, so every batch of
   * pre-tanh images has mean 0 and variance 1 per channel) or `learned` (gamma and beta trained with the rest, so
   * the generator can shift its images' brightness, e.g. towards the mostly dark images of MNIST in [-1, 1]).
   */
  outputBn?: "fixed" | "learned";
  /**
   * How each upsampling ×2 and the 3×3 convolution after it run: `transposed` (default) as one transposed
   * convolution ({@linkcode UpsampleConv2D}: 4 instead of 9 multiply-adds per output, no upsampled copy), or
   * `separate` as the reference's two layers. Same weights, same function up to rounding.
   */
  upsampleConv?: "transposed" | "separate";
}

/**
 * Builds a DFME generator mapping latents [n, nz] to pre-tanh images [n, h, w, c].
 *
 * The dense layer's output is reshaped to [h/4, w/4, 2g] (NHWC); the reference
 * views it as [2g, h/4, w/4] (NCHW), a fixed permutation of the same units.
 * Convolutions carry biases as in the reference; weights use PyTorch's default
 * initialisation and BatchNorm PyTorch's epsilon and momentum.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { dfmeGenerator } from "./dfme_generator.ts";
 * const gen = dfmeGenerator({ seed: 0, nz: 256, width: 16 });
 * const x = tf.tanh(gen.apply(tf.randomNormal([8, 256]), { training: true }) as tf.Tensor4D); // [8, 28, 28, 1]
 * ```
 */
export function dfmeGenerator(opts: DfmeGeneratorOptions): tf.LayersModel {
  const nz = opts.nz ?? 256;
  const g = opts.width ?? 64;
  const [h, w, c] = opts.imageShape ?? [28, 28, 1];
  for (const [name, v] of [["nz", nz], ["width", g], ["channels", c]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`dfmeGenerator: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(h / 4) || !Number.isInteger(w / 4) || h < 4 || w < 4) {
    throw new RangeError(`dfmeGenerator: image height and width must be positive multiples of 4, got ${h}×${w}`);
  }
  const s = new SeedStream(opts.seed);
  const [sh, sw] = [h / 4, w / 4];
  const conv = (filters: number, cin: number) =>
    tf.layers.conv2d({
      filters,
      kernelSize: 3,
      padding: "same",
      kernelInitializer: torchWeightInit(s),
      biasInitializer: torchBiasInit(cin * 9, s),
    });
  const up = () => tf.layers.upSampling2d({ size: [2, 2], interpolation: "nearest" });
  if (opts.upsampleConv !== undefined && opts.upsampleConv !== "transposed" && opts.upsampleConv !== "separate") {
    throw new RangeError(`dfmeGenerator: upsampleConv must be "transposed" or "separate", got ${opts.upsampleConv}`);
  }
  /** Upsampling ×2, then a 3×3 convolution of `filters` (initialised exactly as `conv`). */
  const upConv = (filters: number, cin: number) => (x: tf.SymbolicTensor): tf.SymbolicTensor =>
    (opts.upsampleConv === "separate" ? conv(filters, cin).apply(up().apply(x)) : upsampleConv2d({
      filters,
      kernelSize: 3,
      padding: "same",
      kernelInitializer: torchWeightInit(s),
      biasInitializer: torchBiasInit(cin * 9, s),
    }).apply(x)) as tf.SymbolicTensor;
  const lrelu = () => tf.layers.leakyReLU({ alpha: 0.2 });

  const z = tf.input({ shape: [nz] });
  let y = tf.layers.dense({
    units: 2 * g * sh * sw,
    kernelInitializer: torchWeightInit(s),
    biasInitializer: torchBiasInit(nz, s),
  }).apply(z) as tf.SymbolicTensor;
  y = tf.layers.reshape({ targetShape: [sh, sw, 2 * g] }).apply(y) as tf.SymbolicTensor;
  y = batchNorm().apply(y) as tf.SymbolicTensor;
  y = lrelu().apply(batchNorm().apply(upConv(2 * g, 2 * g)(y))) as tf.SymbolicTensor;
  y = lrelu().apply(batchNorm().apply(upConv(g, 2 * g)(y))) as tf.SymbolicTensor;
  const outputBn = opts.outputBn === "learned" ? batchNorm() : frozenAffineBatchNorm();
  y = outputBn.apply(conv(c, g).apply(y)) as tf.SymbolicTensor;
  return tf.model({ inputs: z, outputs: y, name: "dfme_generator" });
}
