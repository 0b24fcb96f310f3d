/**
 * Conv2DBackpropFilter for the wasm backend (missing from tfjs 4.22, tfjs
 * issue 8474).
 *
 * dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s + kh − pt, ow·s + kw − pl, ci] · dy[n,oh,ow,co]
 * is itself a convolution once batch and channels swap roles: the input is x
 * laid out [ci, H, W, n], the "filter" is dy laid out [OH, OW, n, co] and
 * dilated by the forward stride, and the output [ci, fh, fw, co] has the
 * filter's spatial size. That convolution runs on the backend's XNNPACK Conv2D,
 * so the kernel costs two cheap layout passes plus one accelerated GEMM, with
 * no im2col buffer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { alloc, free, heapF32, offsetOf } from "./heap.ts";

let conv2dFunc: tf.KernelFunc | undefined;

function conv2DBackpropFilter(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== "NHWC") {
    throw new Error(`wasm Conv2DBackpropFilter supports NHWC only, got ${attrs.dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C } = info;
  const { outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const { filterHeight: FH, filterWidth: FW, strideHeight: SH, strideWidth: SW } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  // Bottom/right padding that makes the swapped conv's output exactly FH × FW;
  // when negative, the rows/columns past it are never read: crop them instead.
  let pb = FH + (OH - 1) * SH - H - pt;
  let pr = FW + (OW - 1) * SW - W - pl;
  const Hc = pb < 0 ? H + pb : H, Wc = pr < 0 ? W + pr : W;
  pb = Math.max(pb, 0);
  pr = Math.max(pr, 0);

  const xs = alloc(backend, [C, Hc, Wc, N]);
  const dys = alloc(backend, [OH, OW, N, CO]);
  const heap = heapF32(backend);
  // x [N, H, W, C] → xs [C, Hc, Wc, N]
  {
    const src = offsetOf(backend, x), dst = offsetOf(backend, xs);
    const plane = Hc * Wc;
    for (let h = 0; h < Hc; h++) {
      for (let w = 0; w < Wc; w++) {
        const p = h * Wc + w;
        for (let n = 0; n < N; n++) {
          const s = src + ((n * H + h) * W + w) * C;
          let d = dst + p * N + n;
          for (let c = 0; c < C; c++, d += plane * N) heap[d] = heap[s + c];
        }
      }
    }
  }
  // dy [N, OH, OW, CO] → dys [OH, OW, N, CO]
  {
    const src = offsetOf(backend, dy), dst = offsetOf(backend, dys);
    const P = OH * OW;
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < P; p++) {
        const s = src + (n * P + p) * CO;
        heap.copyWithin(dst + (p * N + n) * CO, s, s + CO);
      }
    }
  }
  if (conv2dFunc === undefined) {
    const k = tf.getKernel("Conv2D", "wasm");
    if (k === undefined) throw new Error("wasm Conv2D kernel is not registered");
    conv2dFunc = k.kernelFunc;
  }
  const swapped = conv2dFunc({
    inputs: { x: xs, filter: dys },
    backend,
    attrs: {
      strides: [1, 1],
      pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]],
      dataFormat: "NHWC",
      dilations: [SH, SW],
    },
  }) as tf.TensorInfo; // [C, FH, FW, CO]
  free(backend, xs);
  free(backend, dys);
  const dw = alloc(backend, attrs.filterShape);
  {
    const h = heapF32(backend);
    const src = offsetOf(backend, swapped), dst = offsetOf(backend, dw);
    const T = FH * FW;
    for (let c = 0; c < C; c++) {
      for (let t = 0; t < T; t++) {
        const s = src + (c * T + t) * CO;
        h.copyWithin(dst + (t * C + c) * CO, s, s + CO);
      }
    }
  }
  free(backend, swapped);
  return dw;
}

/** Kernel config registered by {@linkcode registerWasmTrainingKernels}. */
export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: "Conv2DBackpropFilter",
  backendName: "wasm",
  kernelFunc: conv2DBackpropFilter as tf.KernelFunc,
};
