/**
 * GoogLeNet in its common CIFAR form (the pytorch-cifar definition used by
 * the MeCo code base for Table 9's victim): a 3×3 stem of 192 filters, nine
 * Inception modules (a3, b3, max pool, a4–e4, max pool, a5, b5) whose four
 * branches are 1×1; 1×1 → 3×3; 1×1 → 3×3 → 3×3 (the "5×5" branch as two
 * 3×3s); 3×3 max pool → 1×1, each conv followed by BN and ReLU, then global
 * average pooling (the reference's 8×8 pool at 32×32 input) and a linear
 * layer. Convolutions carry biases, as in the reference.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { SeedStream } from "./init.ts";
import { bn, checkWidth, conv, head, type S, scaled } from "./torch_layers.ts";

/** Inception channel tables: [1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj], in order a3 … b5. */
export const GOOGLENET_INCEPTIONS: readonly (readonly number[])[] = [
  [64, 96, 128, 16, 32, 32],
  [128, 128, 192, 32, 96, 64],
  [192, 96, 208, 16, 48, 64],
  [160, 112, 224, 24, 64, 64],
  [128, 128, 256, 24, 64, 64],
  [112, 144, 288, 32, 64, 64],
  [256, 160, 320, 32, 128, 128],
  [256, 160, 320, 32, 128, 128],
  [384, 192, 384, 48, 128, 128],
];

/** Options for {@linkcode googlenet}. */
export interface GooglenetOptions {
  /** Initialisation seed. */
  seed: number;
  /** Number of classes; default 10. */
  classes?: number;
  /** Width multiplier on every layer's channels (1 = the reference). */
  width?: number;
  /** Input image shape [h, w, c]; default [32, 32, 3]. */
  inputShape?: [number, number, number];
}

/**
 * Builds a CIFAR-form GoogLeNet that outputs logits.
 *
 * @example
 * ```ts
 * import { googlenet } from "./googlenet.ts";
 * const model = googlenet({ seed: 0, width: 0.125 });
 * model.dispose();
 * ```
 */
export function googlenet(opts: GooglenetOptions): tf.LayersModel {
  const width = checkWidth("googlenet", opts.width ?? 1);
  const s = new SeedStream(opts.seed);
  const cbr = (t: S, filters: number, k: number) => bn(conv(s, t, { filters, k, bias: true }), true);
  // The inputs of every max pool here are ReLU outputs (≥ 0), so zero padding equals PyTorch's −∞ padding.
  const downsample = (t: S) =>
    tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: "valid" }).apply(
      tf.layers.zeroPadding2d({ padding: 1 }).apply(t),
    ) as S;
  const x = tf.input({ shape: opts.inputShape ?? [32, 32, 3] });
  let y = cbr(x, scaled(192, width), 3);
  GOOGLENET_INCEPTIONS.forEach((table, i) => {
    if (i === 2 || i === 7) y = downsample(y);
    const [n1, n3r, n3, n5r, n5, pool] = table.map((c) => scaled(c, width));
    const b1 = cbr(y, n1, 1);
    const b2 = cbr(cbr(y, n3r, 1), n3, 3);
    const b3 = cbr(cbr(cbr(y, n5r, 1), n5, 3), n5, 3);
    const p = tf.layers.maxPooling2d({ poolSize: 3, strides: 1, padding: "same" }).apply(y) as S;
    const b4 = cbr(p, pool, 1);
    y = tf.layers.concatenate({ axis: -1 }).apply([b1, b2, b3, b4]) as S;
  });
  return tf.model({ inputs: x, outputs: head(s, y, opts.classes ?? 10), name: "googlenet" });
}
