/**
 * DenseNet-121 in its common CIFAR form (the pytorch-cifar definition used by
 * the DFME/MeCo code bases): a 3×3 stem of 2k filters (growth rate k = 32),
 * four dense blocks of [6, 12, 24, 16] bottleneck layers
 * (BN → ReLU → 1×1 conv 4k → BN → ReLU → 3×3 conv k, output concatenated in
 * front of the input), transitions (BN → ReLU → 1×1 conv to ⌊channels/2⌋ →
 * 2×2 average pool) between them, then BN → ReLU → global average pooling
 * (the reference's 4×4 pool at 32×32 input) → linear. No conv has a bias.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { SeedStream } from "./init.ts";
import { bn, checkWidth, conv, head, type S, scaled } from "./torch_layers.ts";

/** Options for {@linkcode densenet121}. */
export interface DensenetOptions {
  /** Initialisation seed. */
  seed: number;
  /** Number of classes; default 10. */
  classes?: number;
  /** Width multiplier on the growth rate (1 = the reference's 32). */
  width?: number;
  /** Input image shape [h, w, c]; default [32, 32, 3]. */
  inputShape?: [number, number, number];
}

/** Bottleneck layers per dense block of DenseNet-121. */
export const DENSENET121_BLOCKS: readonly number[] = [6, 12, 24, 16];

/**
 * Builds a CIFAR-form DenseNet-121 that outputs logits.
 *
 * @example
 * ```ts
 * import { densenet121 } from "./densenet.ts";
 * const model = densenet121({ seed: 0, width: 0.25 }); // growth rate 8
 * model.dispose();
 * ```
 */
export function densenet121(opts: DensenetOptions): tf.LayersModel {
  const width = checkWidth("densenet121", opts.width ?? 1);
  const s = new SeedStream(opts.seed);
  const k = scaled(32, width);
  const x = tf.input({ shape: opts.inputShape ?? [32, 32, 3] });
  let planes = 2 * k;
  let y = conv(s, x, { filters: planes, k: 3 });
  DENSENET121_BLOCKS.forEach((layers, block) => {
    for (let l = 0; l < layers; l++) {
      let o = conv(s, bn(y, true), { filters: 4 * k, k: 1 });
      o = conv(s, bn(o, true), { filters: k, k: 3 });
      y = tf.layers.concatenate({ axis: -1 }).apply([o, y]) as S;
      planes += k;
    }
    if (block < DENSENET121_BLOCKS.length - 1) {
      planes = Math.floor(planes * 0.5);
      y = conv(s, bn(y, true), { filters: planes, k: 1 });
      y = tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }).apply(y) as S;
    }
  });
  return tf.model({ inputs: x, outputs: head(s, bn(y, true), opts.classes ?? 10), name: "densenet121" });
}
