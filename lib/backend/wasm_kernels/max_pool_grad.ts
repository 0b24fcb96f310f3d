/**
 * MaxPoolGrad for the wasm backend. The stock tfjs 4.22 wasm kernel drops the
 * gradient of every window whose maximum is negative (it starts its running
 * maximum at 0), which corrupts training of any model that max-pools
 * pre-activation values. This one routes each output's gradient to the first
 * maximal input of its window, as the cpu backend and PyTorch do.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { alloc, heapF32, offsetOf } from "./heap.ts";

function maxPoolGrad(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C } = info;
  const { outHeight: OH, outWidth: OW, filterHeight: FH, filterWidth: FW } = info;
  const { strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const dx = alloc(backend, input.shape);
  const heap = heapF32(backend);
  const xB = offsetOf(backend, input), dyB = offsetOf(backend, dy), dxB = offsetOf(backend, dx);
  heap.fill(0, dxB, dxB + N * H * W * C);
  for (let n = 0; n < N; n++) {
    const xn = xB + n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - pt;
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * SW - pl;
        const dyo = dyB + ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity, at = -1;
          for (let kh = 0; kh < FH; kh++) {
            const h = h0 + kh * DH;
            if (h < 0 || h >= H) continue;
            for (let kw = 0; kw < FW; kw++) {
              const w = w0 + kw * DW;
              if (w < 0 || w >= W) continue;
              const o = (h * W + w) * C + c;
              const v = heap[xn + o];
              if (v > best || at < 0) {
                best = v;
                at = o;
              }
            }
          }
          if (at >= 0) heap[dxB + n * H * W * C + at] += heap[dyo + c];
        }
      }
    }
  }
  return dx;
}

/** Kernel config registered by {@linkcode registerWasmTrainingKernels}. */
export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: "MaxPoolGrad",
  backendName: "wasm",
  kernelFunc: maxPoolGrad as tf.KernelFunc,
};
