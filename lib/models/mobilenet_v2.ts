/**
 * MobileNetV2 in its common CIFAR form (the pytorch-cifar definition used by
 * the DFME/MeCo code bases): a stride-1 3×3 stem of 32 filters, inverted
 * residual blocks (1×1 expand → 3×3 depthwise → 1×1 linear projection) in the
 * groups (expansion, channels, blocks, stride) below — the second group's
 * stride is 1 instead of ImageNet's 2 — then a 1×1 conv to 1280, global
 * average pooling (the reference's 4×4 pool at 32×32 input) and a linear
 * layer. Blocks with stride 1 add a shortcut (a 1×1 conv + BN when the
 * channel count changes); strided blocks have none.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { SeedStream } from "./init.ts";
import { bn, checkWidth, conv, head, type S, scaled } from "./torch_layers.ts";

/** (expansion, output channels, blocks, stride of the first block), CIFAR form. */
export const MOBILENET_V2_GROUPS: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 1],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** Options for {@linkcode mobilenetV2}. */
export interface MobilenetV2Options {
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
 * Builds a CIFAR-form MobileNetV2 that outputs logits.
 *
 * @example
 * ```ts
 * import { mobilenetV2 } from "./mobilenet_v2.ts";
 * const model = mobilenetV2({ seed: 0, width: 0.25 }); // [n, 32, 32, 3] → [n, 10]
 * model.dispose();
 * ```
 */
export function mobilenetV2(opts: MobilenetV2Options): tf.LayersModel {
  const width = checkWidth("mobilenetV2", opts.width ?? 1);
  const s = new SeedStream(opts.seed);
  const x = tf.input({ shape: opts.inputShape ?? [32, 32, 3] });
  let cin = scaled(32, width);
  let y = bn(conv(s, x, { filters: cin, k: 3 }), true);
  for (const [expansion, c, blocks, stride0] of MOBILENET_V2_GROUPS) {
    const cout = scaled(c, width);
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 ? stride0 : 1;
      const planes = expansion * cin;
      let o = bn(conv(s, y, { filters: planes, k: 1 }), true);
      o = bn(conv(s, o, { filters: planes, k: 3, stride, depthwise: true }), true);
      o = bn(conv(s, o, { filters: cout, k: 1 }));
      if (stride === 1) {
        const sc = cin === cout ? y : bn(conv(s, y, { filters: cout, k: 1 }));
        o = tf.layers.add().apply([o, sc]) as S;
      }
      y = o;
      cin = cout;
    }
  }
  y = bn(conv(s, y, { filters: scaled(1280, width), k: 1 }), true);
  return tf.model({ inputs: x, outputs: head(s, y, opts.classes ?? 10), name: "mobilenet_v2" });
}
