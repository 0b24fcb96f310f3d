/**
 * Small builders shared by the CIFAR-form architectures (MobileNetV2,
 * DenseNet, GoogLeNet): convolutions with PyTorch's symmetric padding and
 * default initialisation, BatchNorm with PyTorch's constants, and the width
 * multiplier's channel rounding.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNorm, SeedStream, torchBiasInit, torchWeightInit } from "./init.ts";
import { paddedConv2d } from "./padded_conv.ts";

/** A symbolic tensor of a functional model under construction. */
export type S = tf.SymbolicTensor;

/** Channels of a layer that has `c` at width 1, scaled by `width` (rounded, at least 1). */
export function scaled(c: number, width: number): number {
  return Math.max(1, Math.round(c * width));
}

/** Checks a width multiplier, naming the model at fault. */
export function checkWidth(model: string, width: number): number {
  if (!Number.isFinite(width) || width <= 0) {
    throw new RangeError(`${model}: width must be a positive number, got ${width}`);
  }
  return width;
}

/** What {@linkcode conv} builds. */
export interface ConvSpec {
  /** Output channels. */
  filters: number;
  /** Square kernel size (odd). */
  k: number;
  /** Stride (default 1). */
  stride?: number;
  /** Whether the convolution has a bias (default false). */
  bias?: boolean;
  /** Depthwise (groups = channels, one filter per channel); `filters` must equal the input channels. */
  depthwise?: boolean;
}

/**
 * Applies a k×k convolution padded by (k−1)/2 on every side, as PyTorch's
 * `Conv2d(padding=k//2)`: tfjs's "same" pads strided convolutions on the
 * bottom/right only, so those take the padding explicitly ({@linkcode paddedConv2d};
 * depthwise ones: a zero-padding layer and a valid conv).
 * Weights (and bias) use PyTorch's default initialisation.
 */
export function conv(s: SeedStream, x: S, spec: ConvSpec): S {
  const stride = spec.stride ?? 1;
  const cin = x.shape[x.shape.length - 1] as number;
  if (spec.depthwise && spec.filters !== cin) {
    throw new RangeError(`depthwise conv: filters (${spec.filters}) must equal input channels (${cin})`);
  }
  const explicitPad = stride > 1 && spec.k > 1;
  const padding = explicitPad ? "valid" : "same";
  const fanIn = (spec.depthwise ? 1 : cin) * spec.k * spec.k;
  let y = x;
  if (spec.depthwise) {
    if (explicitPad) y = tf.layers.zeroPadding2d({ padding: (spec.k - 1) >> 1 }).apply(y) as S;
    // tfjs's fan-in for a depthwise kernel counts every input channel; PyTorch's (groups = channels) counts one.
    const b = 1 / Math.sqrt(fanIn);
    y = tf.layers.depthwiseConv2d({
      kernelSize: spec.k,
      strides: stride,
      padding,
      depthMultiplier: 1,
      useBias: spec.bias ?? false,
      depthwiseInitializer: tf.initializers.randomUniform({ minval: -b, maxval: b, seed: s.next() }),
      biasInitializer: torchBiasInit(fanIn, s),
    }).apply(y) as S;
  } else {
    const args = {
      filters: spec.filters,
      kernelSize: spec.k,
      strides: stride,
      useBias: spec.bias ?? false,
      kernelInitializer: torchWeightInit(s),
      biasInitializer: torchBiasInit(fanIn, s),
    };
    const layer = explicitPad
      ? paddedConv2d({ ...args, symmetricPadding: (spec.k - 1) >> 1 })
      : tf.layers.conv2d({ ...args, padding });
    y = layer.apply(y) as S;
  }
  return y;
}

/** BatchNorm (PyTorch constants) then, if `relu`, ReLU (one layer). */
export function bn(x: S, relu = false): S {
  return batchNorm({ relu }).apply(x) as S;
}

/** Global average pooling, flatten, and a linear layer to `classes` logits (PyTorch init). */
export function head(s: SeedStream, x: S, classes: number): S {
  const y = tf.layers.globalAveragePooling2d({}).apply(x) as S;
  const flat = y.shape[1] as number;
  return tf.layers.dense({
    units: classes,
    kernelInitializer: torchWeightInit(s),
    biasInitializer: torchBiasInit(flat, s),
  }).apply(y) as S;
}
