/**
 * DepthwiseConv2dNativeBackpropFilter and DepthwiseConv2dNativeBackpropInput
 * for the wasm backend (missing from tfjs 4.22, tfjs issue 8474). Depthwise
 * convolutions do one multiply-add per (pixel, tap, channel), too little
 * arithmetic per byte for a GEMM to help; both kernels are single passes over
 * the wasm heap that keep the channel loop innermost and contiguous.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { alloc, heapF32, offsetOf } from "./heap.ts";

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function depthwiseInfo(
  xShape: number[],
  filterShape: number[],
  attrs: tf.DepthwiseConv2dNativeBackpropFilterAttrs | tf.DepthwiseConv2dNativeBackpropInputAttrs,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * Visits every valid (input pixel, output pixel) pair of a depthwise conv:
 * `fn(xOffset, dyOffset, wOffset)` gives element offsets of channel 0 relative
 * to the tensors' starts.
 */
function forEachTap(
  info: tf.backend_util.Conv2DInfo,
  fn: (xo: number, dyo: number, wo: number) => void,
): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C } = info;
  const { outHeight: OH, outWidth: OW, filterHeight: FH, filterWidth: FW } = info;
  const { strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = info;
  const CO = info.outChannels;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyo = ((n * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < FH; kh++) {
          const ih = oh * SH - pt + kh * DH;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < FW; kw++) {
            const iw = ow * SW - pl + kw * DW;
            if (iw < 0 || iw >= W) continue;
            fn(((n * H + ih) * W + iw) * C, dyo, (kh * FW + kw) * CO);
          }
        }
      }
    }
  }
}

function depthwiseBackpropFilter(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const C = info.inChannels, M = info.outChannels / info.inChannels;
  const dw = alloc(backend, attrs.filterShape);
  const heap = heapF32(backend);
  const xB = offsetOf(backend, x), dyB = offsetOf(backend, dy), wB = offsetOf(backend, dw);
  heap.fill(0, wB, wB + tf.util.sizeFromShape(attrs.filterShape));
  if (M === 1) {
    forEachTap(info, (xo, dyo, wo) => {
      const xs = xB + xo, ds = dyB + dyo, ws = wB + wo;
      for (let c = 0; c < C; c++) heap[ws + c] += heap[xs + c] * heap[ds + c];
    });
  } else {
    forEachTap(info, (xo, dyo, wo) => {
      const xs = xB + xo, ds = dyB + dyo, ws = wB + wo;
      for (let c = 0; c < C; c++) {
        const xv = heap[xs + c];
        for (let q = 0, j = c * M; q < M; q++, j++) heap[ws + j] += xv * heap[ds + j];
      }
    });
  }
  return dw;
}

function depthwiseBackpropInput(args: Args): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const C = info.inChannels, M = info.outChannels / info.inChannels;
  const dx = alloc(backend, attrs.inputShape);
  const heap = heapF32(backend);
  const dxB = offsetOf(backend, dx), dyB = offsetOf(backend, dy), wB = offsetOf(backend, filter);
  heap.fill(0, dxB, dxB + tf.util.sizeFromShape(attrs.inputShape));
  if (M === 1) {
    forEachTap(info, (xo, dyo, wo) => {
      const xs = dxB + xo, ds = dyB + dyo, ws = wB + wo;
      for (let c = 0; c < C; c++) heap[xs + c] += heap[ws + c] * heap[ds + c];
    });
  } else {
    forEachTap(info, (xo, dyo, wo) => {
      const xs = dxB + xo, ds = dyB + dyo, ws = wB + wo;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let q = 0, j = c * M; q < M; q++, j++) acc += heap[ws + j] * heap[ds + j];
        heap[xs + c] += acc;
      }
    });
  }
  return dx;
}

/** Kernel config registered by {@linkcode registerWasmTrainingKernels}. */
export const depthwiseBackpropFilterConfig: tf.KernelConfig = {
  kernelName: "DepthwiseConv2dNativeBackpropFilter",
  backendName: "wasm",
  kernelFunc: depthwiseBackpropFilter as tf.KernelFunc,
};

/** Kernel config registered by {@linkcode registerWasmTrainingKernels}. */
export const depthwiseBackpropInputConfig: tf.KernelConfig = {
  kernelName: "DepthwiseConv2dNativeBackpropInput",
  backendName: "wasm",
  kernelFunc: depthwiseBackpropInput as tf.KernelFunc,
};
