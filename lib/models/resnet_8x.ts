/**
 * ResNet-18-8x and ResNet-34-8x in the DFME layout: 3×3 stem, BasicBlocks
 * ([2,2,2,2] or [3,4,6,3]) at widths w, 2w, 4w, 8w (w = 64·width), average
 * pool 4, linear. Convolutions have no bias; BatchNorm follows each.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNorm, SeedStream, torchBiasInit, torchWeightInit } from "./init.ts";
import { paddedConv2d } from "./padded_conv.ts";

/** Options for {@linkcode resnet8x}. */
export interface ResnetOptions {
  /** 18 or 34. */
  depth: 18 | 34;
  /** Initialisation seed. */
  seed: number;
  /** Number of classes; default 10. */
  classes?: number;
  /** Width multiplier (1 = the paper's 64..512 filters). */
  width?: number;
  /** Input image shape [h, w, c]; default [32, 32, 3]. */
  inputShape?: [number, number, number];
}

type S = tf.SymbolicTensor;

/**
 * Builds a ResNet-8x classifier that outputs logits.
 *
 * @example
 * ```ts
 * const model = resnet8x({ depth: 18, seed: 0, width: 0.25 });
 * ```
 */
export function resnet8x(opts: ResnetOptions): tf.LayersModel {
  const s = new SeedStream(opts.seed);
  const base = Math.max(1, Math.round(64 * (opts.width ?? 1)));
  const widths = [base, base * 2, base * 4, base * 8];
  const blocks = opts.depth === 18 ? [2, 2, 2, 2] : [3, 4, 6, 3];
  // PyTorch pads a strided 3×3 conv by 1 on every side, tfjs "same" pads only
  // bottom/right: those convolutions take PyTorch's padding explicitly.
  const conv = (filters: number, k: number, stride: number) => {
    const args = { filters, kernelSize: k, strides: stride, useBias: false, kernelInitializer: torchWeightInit(s) };
    return stride > 1 && k > 1
      ? paddedConv2d({ ...args, symmetricPadding: (k - 1) >> 1 })
      : tf.layers.conv2d({ ...args, padding: "same" });
  };
  const x = tf.input({ shape: opts.inputShape ?? [32, 32, 3] });
  let y = conv(base, 3, 1).apply(x) as S;
  y = batchNorm({ relu: true }).apply(y) as S;
  let cin = base;
  widths.forEach((cout, stage) => {
    for (let b = 0; b < blocks[stage]; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      let o = conv(cout, 3, stride).apply(y) as S;
      o = batchNorm({ relu: true }).apply(o) as S;
      o = batchNorm().apply(conv(cout, 3, 1).apply(o)) as S;
      let sc = y;
      if (stride !== 1 || cin !== cout) sc = batchNorm().apply(conv(cout, 1, stride).apply(y)) as S;
      y = tf.layers.reLU().apply(tf.layers.add().apply([o, sc])) as S;
      cin = cout;
    }
  });
  y = tf.layers.averagePooling2d({ poolSize: 4 }).apply(y) as S;
  y = tf.layers.flatten().apply(y) as S;
  const flat = y.shape[1] as number;
  y = tf.layers.dense({
    units: opts.classes ?? 10,
    kernelInitializer: torchWeightInit(s),
    biasInitializer: torchBiasInit(flat, s),
  }).apply(y) as S;
  return tf.model({ inputs: x, outputs: y, name: `resnet${opts.depth}_8x` });
}
