/**
 * A 2-D convolution padded by the same amount on every side, as PyTorch's
 * `Conv2d(padding=p)`. tfjs's "same" pads a strided convolution on the
 * bottom/right only, so a strided k×k layer of a PyTorch architecture needs a
 * zero-padding layer and a "valid" convolution: an extra padded copy of the
 * activations forward and a slice of the gradient backward. This layer is
 * tfjs's Conv2D (same weights, initialisers and config) whose convolution
 * takes the padding itself (`tf.conv2d` with explicit padding), which the
 * native kernels hand to oneDNN as is.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Constructor arguments: those of `tf.layers.conv2d` plus `symmetricPadding` (pixels on every side). */
export type PaddedConv2DArgs = NonNullable<Parameters<typeof tf.layers.conv2d>[0]> & { symmetricPadding?: number };

/** tfjs's Conv2D layer class (not exported by tfjs), the base of this project's convolution layers. */
export const Conv2D = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 })).constructor as new (
  args: NonNullable<Parameters<typeof tf.layers.conv2d>[0]>,
) => tf.layers.Layer;

type LayerVariable = { read(): tf.Tensor };
/** Fields of tfjs's Conv2D that its typings mark private. */
export interface Conv2DInternals {
  kernel: LayerVariable;
  bias: LayerVariable | null;
  useBias: boolean;
  strides: [number, number];
  dilationRate: [number, number];
  activation: { apply(t: tf.Tensor): tf.Tensor };
}

/** tfjs's Conv2D with symmetric explicit padding (see the module doc). */
export class PaddedConv2D extends Conv2D {
  /** Class name for tfjs serialization. */
  static readonly className = "MecoPaddedConv2D";
  /** Pixels of zero padding on every side. */
  readonly symmetricPadding: number;

  constructor(args: PaddedConv2DArgs) {
    const { symmetricPadding = 0, ...rest } = args;
    super({ ...rest, padding: "valid" });
    if (!Number.isInteger(symmetricPadding) || symmetricPadding < 0) {
      throw new RangeError(`symmetricPadding must be a non-negative integer, got ${symmetricPadding}`);
    }
    this.symmetricPadding = symmetricPadding;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const p = 2 * this.symmetricPadding;
    const padded = [s[0], s[1] === null ? null : s[1] + p, s[2] === null ? null : s[2] + p, s[3]];
    return super.computeOutputShape(padded);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { [key: string]: unknown }): tf.Tensor | tf.Tensor[] {
    const p = this.symmetricPadding;
    if (p === 0) return super.call(inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const self = this as unknown as Conv2DInternals;
    return tf.tidy(() => {
      let y: tf.Tensor = tf.conv2d(
        x,
        self.kernel.read() as tf.Tensor4D,
        self.strides,
        [[0, 0], [p, p], [p, p], [0, 0]],
        "NHWC",
        self.dilationRate,
      );
      if (self.useBias && self.bias !== null) y = tf.add(y, self.bias.read());
      return self.activation.apply(y);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), symmetricPadding: this.symmetricPadding };
  }
}
tf.serialization.registerClass(
  PaddedConv2D as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
);

/** A {@linkcode PaddedConv2D}: `tf.layers.conv2d` args, padded by `symmetricPadding` on every side. */
export function paddedConv2d(args: PaddedConv2DArgs): tf.layers.Layer {
  return new PaddedConv2D(args);
}
