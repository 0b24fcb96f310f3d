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
  const geometry = {
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
  geometry.pb = (geometry.oh - 1) * geometry.sh + (geometry.fh - 1) * geometry.dh + 1 - geometry.h - geometry.pt;
  geometry.pr = (geometry.ow - 1) * geometry.sw + (geometry.fw - 1) * geometry.dw + 1 - geometry.w - geometry.pl;
  return geometry;
}

/** A cache key naming the geometry. */
export function geometryKey(geometry: ConvGeometry): string {
  return `${geometry.n},${geometry.h},${geometry.w},${geometry.c},${geometry.oh},${geometry.ow},${geometry.co},${geometry.fh},${geometry.fw},${geometry.sh},${geometry.sw},${geometry.dh},${geometry.dw},` +
    `${geometry.pt},${geometry.pl},${geometry.pb},${geometry.pr}${
      (geometry.groups ?? 1) > 1 ? `|g${geometry.groups}` : ""
    }`;
}

/** Multiply-adds of the convolution (the same for its backward passes). */
export function convMacs(geometry: ConvGeometry): number {
  return geometry.n * geometry.oh * geometry.ow * geometry.co * geometry.fh * geometry.fw * geometry.c /
    (geometry.groups ?? 1);
}

/** True when any extent is zero (nothing to compute; left to the wasm kernels). */
export function isEmpty(geometry: ConvGeometry): boolean {
  return geometry.n * geometry.h * geometry.w * geometry.c * geometry.oh * geometry.ow * geometry.co * geometry.fh *
      geometry.fw === 0;
}

/**
 * True for a pointwise (1×1) convolution with a stride above 1, no padding on
 * top or left, and an input that holds whole strides (`h ≥ oh·sh`,
 * `w ≥ ow·sw`): every output pixel reads one input pixel, on a strided grid
 * that {@linkcode stridedInputView} can describe (oneDNN refuses a view whose
 * rows of one image would reach into the next).
 */
export function isStridedPointwise(geometry: ConvGeometry): boolean {
  return geometry.fh === 1 && geometry.fw === 1 && (geometry.sh > 1 || geometry.sw > 1) && geometry.pt === 0 &&
    geometry.pl === 0 && (geometry.groups ?? 1) === 1 &&
    geometry.h >= geometry.oh * geometry.sh && geometry.w >= geometry.ow * geometry.sw;
}

/**
 * The unit-stride pointwise convolution that a strided pointwise one computes
 * on the input pixels it reads (see {@linkcode isStridedPointwise}): input
 * `oh × ow`, stride 1, no padding.
 */
export function unitStrideGeometry(geometry: ConvGeometry): ConvGeometry {
  return { ...geometry, h: geometry.oh, w: geometry.ow, sh: 1, sw: 1, pt: 0, pl: 0, pb: 0, pr: 0 };
}

/**
 * The input pixels a strided pointwise convolution reads, as a view of its
 * nhwc input: logical `[n, c, oh, ow]`, every `sh`-th row and `sw`-th column.
 * A oneDNN reorder from this view gathers them into a dense buffer.
 */
export function stridedInputView(dnnl: Dnnl, geometry: ConvGeometry): MemoryDesc {
  return dnnl.mdStrides([geometry.n, geometry.c, geometry.oh, geometry.ow], [
    geometry.h * geometry.w * geometry.c,
    1,
    geometry.sh * geometry.w * geometry.c,
    geometry.sw * geometry.c,
  ]);
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

/** Builds {@linkcode ConvDescs} for `geometry`. */
export function convDescs(dnnl: Dnnl, geometry: ConvGeometry): ConvDescs {
  const groups = geometry.groups ?? 1;
  // Grouped weights are [groups, out/groups, in/groups, fh, fw]; tfjs stores a depthwise kernel [fh, fw, c, 1].
  if (groups > 1 && !(groups === geometry.c && groups === geometry.co)) {
    throw new RangeError("only depthwise groups (one channel each)");
  }
  const wdims = groups > 1
    ? [groups, 1, 1, geometry.fh, geometry.fw]
    : [geometry.co, geometry.c, geometry.fh, geometry.fw];
  return {
    src: dnnl.mdTag([geometry.n, geometry.c, geometry.h, geometry.w], TAG.nhwc),
    weightsUser: groups > 1
      ? dnnl.mdStrides(wdims, [1, 1, 1, geometry.fw * geometry.c, geometry.c])
      : dnnl.mdTag(wdims, TAG.hwio),
    weightsAny: dnnl.mdTag(wdims, TAG.any),
    dst: dnnl.mdTag([geometry.n, geometry.co, geometry.oh, geometry.ow], TAG.nhwc),
    strides: dnnl.dims([geometry.sh, geometry.sw]),
    dilates: dnnl.dims([geometry.dh - 1, geometry.dw - 1]),
    padL: dnnl.dims([geometry.pt, geometry.pl]),
    padR: dnnl.dims([geometry.pb, geometry.pr]),
  };
}
