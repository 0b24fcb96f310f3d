/**
 * Nearest-neighbour upsampling ×2 followed by a 3×3 convolution ("same"
 * padding, stride 1), as one layer computed as a transposed convolution.
 *
 * Each output pixel of the pair reads a 3×3 window of the upsampled image,
 * which covers only 2×2 pixels of the input: on an even output row 2i the
 * kernel's rows 0 | 1, 2 fall on input rows i−1 | i, on an odd row 2i+1 its
 * rows 0, 1 | 2 on i | i+1 (columns alike). So the pair equals a transposed
 * convolution of the input with stride 2, padding 1 and a 4×4 kernel K made
 * from the 3×3 kernel w along each axis as K₀ = w₂, K₁ = w₁ + w₂,
 * K₂ = w₀ + w₁, K₃ = w₀: four multiply-adds per output pixel and channel pair
 * instead of nine, forward and in both gradients, and no upsampled copy of the
 * input (the generators of DFME, MAZE and DFMS-HL spend most of their time in
 * these two layers). The weights are the 3×3 kernel and the bias of tfjs's
 * Conv2D (same initialisers, config and checkpoints); K is a linear function of
 * them, so gradients reach them through tfjs's autodiff. Results equal the
 * pair of layers up to rounding (tests/models/upsample_conv_test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { Conv2D, type Conv2DInternals } from "./padded_conv.ts";

/** Constructor arguments: `tf.layers.conv2d`'s, with kernel size 3, stride 1, "same" padding, NHWC. */
export type UpsampleConv2DArgs = NonNullable<Parameters<typeof tf.layers.conv2d>[0]>;

/** Along one axis: which taps of the 3-tap kernel sum into each of the 4 taps of the transposed kernel. */
const TAPS = [[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]];
/** The [16, 9] matrix taking a flattened 3×3 kernel to the flattened 4×4 one (the product of TAPS with itself). */
const KERNEL_MAP = TAPS.flatMap((ry) => TAPS.flatMap((rx) => ry.flatMap((a) => rx.map((b) => a * b))));

/** Nearest upsampling ×2 and a 3×3 convolution as one transposed convolution (see the module doc). */
export class UpsampleConv2D extends Conv2D {
  /** Class name for tfjs serialization. */
  static readonly className = "MecoUpsampleConv2D";

  constructor(args: UpsampleConv2DArgs) {
    const kernel = [args.kernelSize].flat();
    const strides = [args.strides ?? 1].flat();
    const dilation = [args.dilationRate ?? 1].flat();
    if (
      kernel.some((k) => k !== 3) || strides.some((s) => s !== 1) || dilation.some((d) => d !== 1) ||
      (args.padding ?? "same") !== "same" || (args.dataFormat ?? "channelsLast") !== "channelsLast"
    ) {
      throw new RangeError(
        "UpsampleConv2D: only a 3×3 kernel, stride 1, dilation 1, 'same' padding and channelsLast are supported, got " +
          JSON.stringify({
            kernelSize: args.kernelSize,
            strides: args.strides,
            dilationRate: args.dilationRate,
            padding: args.padding,
            dataFormat: args.dataFormat,
          }),
      );
    }
    super({ ...args, kernelSize: 3, strides: 1, padding: "same", dataFormat: "channelsLast" });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const twice = (d: number | null) => d === null ? null : 2 * d;
    return super.computeOutputShape([s[0], twice(s[1]), twice(s[2]), s[3]]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: { [key: string]: unknown }): tf.Tensor | tf.Tensor[] {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const self = this as unknown as Conv2DInternals;
    return tf.tidy(() => {
      const w = self.kernel.read() as tf.Tensor4D; // [3, 3, cin, cout]
      const [, , cin, cout] = w.shape;
      const k = tf.matMul(tf.tensor2d(KERNEL_MAP, [16, 9]), tf.reshape(w, [9, cin * cout]));
      // conv2dTranspose takes its filter as [h, w, output channels, input channels].
      const filter = tf.transpose(tf.reshape(k, [4, 4, cin, cout]), [0, 1, 3, 2]) as tf.Tensor4D;
      const [n, h, wd] = x.shape;
      // Padding 1 on each side of the transposed convolution's equivalent forward one (a number, which tfjs's
      // conv2dTranspose passes through, though its typings name only "same" and "valid").
      let y: tf.Tensor = tf.conv2dTranspose(x, filter, [n, 2 * h, 2 * wd, cout], 2, 1 as unknown as "same");
      if (self.useBias && self.bias !== null) y = tf.add(y, self.bias.read());
      return self.activation.apply(y);
    });
  }
}
tf.serialization.registerClass(
  UpsampleConv2D as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
);

/** An {@linkcode UpsampleConv2D}: nearest upsampling ×2, then a 3×3 "same" convolution with `tf.layers.conv2d`'s args. */
export function upsampleConv2d(args: UpsampleConv2DArgs): tf.layers.Layer {
  return new UpsampleConv2D(args);
}
