/**
 * The geometry of a 2-D NHWC convolution in oneDNN's terms, shared by the
 * forward and both backward kernels so that all three build matching
 * primitives.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { Dnnl } from "./dnnl.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import { TAG } from "./dnnl_ffi.ts";

/** Sizes, strides, dilations and paddings of one convolution. */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  co: number;
  fh: number;
  fw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** Padding top / left. */
  pt: number;
  pl: number;
  /**
   * Padding bottom / right as oneDNN wants it, so that the output size comes
   * out exactly; negative when trailing input rows are never read.
   */
  pb: number;
  pr: number;
  /**
   * Channel groups (absent: 1). A depthwise convolution with multiplier 1 has
   * `c` groups of one input and one output channel each.
   */
  groups?: number;
}

/** The geometry of a tfjs conv info (NHWC, tfjs dilation 1 = none). */
export function convGeometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  const g = {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    c: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    co: info.outChannels,
    fh: info.filterHeight,
    fw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    pb: 0,
    pr: 0,
  };
  g.pb = (g.oh - 1) * g.sh + (g.fh - 1) * g.dh + 1 - g.h - g.pt;
  g.pr = (g.ow - 1) * g.sw + (g.fw - 1) * g.dw + 1 - g.w - g.pl;
  return g;
}

/** A cache key naming the geometry. */
export function geometryKey(g: ConvGeometry): string {
  return `${g.n},${g.h},${g.w},${g.c},${g.oh},${g.ow},${g.co},${g.fh},${g.fw},${g.sh},${g.sw},${g.dh},${g.dw},` +
    `${g.pt},${g.pl},${g.pb},${g.pr}${(g.groups ?? 1) > 1 ? `|g${g.groups}` : ""}`;
}

/** Multiply-adds of the convolution (the same for its backward passes). */
export function convMacs(g: ConvGeometry): number {
  return g.n * g.oh * g.ow * g.co * g.fh * g.fw * g.c / (g.groups ?? 1);
}

/** True when any extent is zero (nothing to compute; left to the wasm kernels). */
export function isEmpty(g: ConvGeometry): boolean {
  return g.n * g.h * g.w * g.c * g.oh * g.ow * g.co * g.fh * g.fw === 0;
}

/**
 * True for a pointwise (1×1) convolution with a stride above 1, no padding on
 * top or left, and an input that holds whole strides (`h ≥ oh·sh`,
 * `w ≥ ow·sw`): every output pixel reads one input pixel, on a strided grid
 * that {@linkcode stridedInputView} can describe (oneDNN refuses a view whose
 * rows of one image would reach into the next).
 */
export function isStridedPointwise(g: ConvGeometry): boolean {
  return g.fh === 1 && g.fw === 1 && (g.sh > 1 || g.sw > 1) && g.pt === 0 && g.pl === 0 && (g.groups ?? 1) === 1 &&
    g.h >= g.oh * g.sh && g.w >= g.ow * g.sw;
}

/**
 * The unit-stride pointwise convolution that a strided pointwise one computes
 * on the input pixels it reads (see {@linkcode isStridedPointwise}): input
 * `oh × ow`, stride 1, no padding.
 */
export function unitStrideGeometry(g: ConvGeometry): ConvGeometry {
  return { ...g, h: g.oh, w: g.ow, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0 };
}

/**
 * The input pixels a strided pointwise convolution reads, as a view of its
 * nhwc input: logical `[n, c, oh, ow]`, every `sh`-th row and `sw`-th column.
 * A oneDNN reorder from this view gathers them into a dense buffer.
 */
export function stridedInputView(d: Dnnl, g: ConvGeometry): MemoryDesc {
  return d.mdStrides([g.n, g.c, g.oh, g.ow], [g.h * g.w * g.c, 1, g.sh * g.w * g.c, g.sw * g.c]);
}

/** Descriptors shared by the three convolution primitives. */
export interface ConvDescs {
  /** Activations [N, C, H, W] as nhwc. */
  src: MemoryDesc;
  /** Weights [CO, C, FH, FW] as tfjs stores them: hwio. */
  weightsUser: MemoryDesc;
  /** Weights with layout left to oneDNN (it picks a blocked one). */
  weightsAny: MemoryDesc;
  /** Output [N, CO, OH, OW] as nhwc. */
  dst: MemoryDesc;
  strides: BigInt64Array<ArrayBuffer>;
  dilates: BigInt64Array<ArrayBuffer>;
  padL: BigInt64Array<ArrayBuffer>;
  padR: BigInt64Array<ArrayBuffer>;
}

/** Builds {@linkcode ConvDescs} for `g`. */
export function convDescs(d: Dnnl, g: ConvGeometry): ConvDescs {
  const groups = g.groups ?? 1;
  // Grouped weights are [groups, out/groups, in/groups, fh, fw]; tfjs stores a depthwise kernel [fh, fw, c, 1].
  if (groups > 1 && !(groups === g.c && groups === g.co)) {
    throw new RangeError("only depthwise groups (one channel each)");
  }
  const wdims = groups > 1 ? [groups, 1, 1, g.fh, g.fw] : [g.co, g.c, g.fh, g.fw];
  return {
    src: d.mdTag([g.n, g.c, g.h, g.w], TAG.nhwc),
    weightsUser: groups > 1 ? d.mdStrides(wdims, [1, 1, 1, g.fw * g.c, g.c]) : d.mdTag(wdims, TAG.hwio),
    weightsAny: d.mdTag(wdims, TAG.any),
    dst: d.mdTag([g.n, g.co, g.oh, g.ow], TAG.nhwc),
    strides: d.dims([g.sh, g.sw]),
    dilates: d.dims([g.dh - 1, g.dw - 1]),
    padL: d.dims([g.pt, g.pl]),
    padR: d.dims([g.pb, g.pr]),
  };
}
