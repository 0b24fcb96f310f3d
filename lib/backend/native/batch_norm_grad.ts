/**
 * The gradient of FusedBatchNorm as one oneDNN pass. tfjs differentiates
 * FusedBatchNorm with about twenty kernels (tiles, broadcast products, four
 * reductions), each a full pass over the activation; in a ResNet step they
 * were the largest share of the non-convolution time. oneDNN's batch-norm
 * backward primitive with global statistics computes, in one pass,
 *
 *   dx = dy · γ / √(σ² + ε),  dγ = Σ dy · (x − μ) / √(σ² + ε),  dβ = Σ dy,
 *
 * and the gradients tfjs also propagates to the mean and variance inputs
 * follow from those per channel:
 *
 *   dμ = −γ / √(σ² + ε) · dβ,  dσ² = −½ · γ / (σ² + ε) · dγ.
 *
 * The kernel is registered for wasm under {@linkcode BATCH_NORM_GRAD}; the
 * gradient of FusedBatchNorm uses it on the wasm backend with native kernels
 * on, and the original tfjs gradient otherwise.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ARG, BNORM, PROP, TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import { type KernelArgs, runtime, threading } from "./runtime.ts";
import { overrideGradient } from "./gradients.ts";
import { tensorPtr } from "./wasm_ptr.ts";
import { onesPtr } from "./reduce.ts";

/** Name of the kernel computing [dx, dScale, dOffset, dMean, dVariance]. */
export const BATCH_NORM_GRAD = "MecoFusedBatchNormGrad";

function channels(x: tf.TensorInfo): number {
  return x.shape[x.shape.length - 1];
}

function batchNormGrad(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { dy, x, mean, variance, scale } = args.inputs as {
    dy: tf.TensorInfo;
    x: tf.TensorInfo;
    mean: tf.TensorInfo;
    variance: tf.TensorInfo;
    scale?: tf.TensorInfo;
  };
  const { varianceEpsilon: eps } = args.attrs as unknown as tf.FusedBatchNormAttrs;
  const dnnl = runtime.dnnl as Dnnl;
  const c = channels(x), size = tf.util.sizeFromShape(x.shape), n = size / c;
  const dx = backend.makeOutput(x.shape, "float32");
  const small = [1, 2, 3, 4].map(() => backend.makeOutput([c], "float32")); // dScale, dOffset, dMean, dVariance
  const [dScale, dOffset, dMean, dVariance] = small;
  const ptrs = [
    tensorPtr(backend, x),
    tensorPtr(backend, mean),
    tensorPtr(backend, variance),
    tensorPtr(backend, dy),
    scale == null ? onesPtr(c) : tensorPtr(backend, scale),
    onesPtr(c), // the shift: an input oneDNN requires with use_shift but does not read backward
    tensorPtr(backend, dx),
    tensorPtr(backend, dScale),
    tensorPtr(backend, dOffset),
  ];
  dnnl.run(`bnorm_bwd|${n},${c}|${eps}`, threading(8 * size, false), (threads) => {
    const data = dnnl.mdTag([n, c, 1, 1], TAG.nhwc);
    const vec = dnnl.mdTag([c], TAG.a);
    const flags = BNORM.useGlobalStats | BNORM.useScale | BNORM.useShift;
    return {
      init: (od) =>
        dnnl.check(
          dnnl.lib.dnnl_batch_normalization_backward_desc_init(od, PROP.backward, data, data, eps, flags),
          "dnnl_batch_normalization_backward_desc_init",
        ),
      hint: (od) =>
        dnnl.check(
          dnnl.lib.dnnl_batch_normalization_forward_desc_init(od, PROP.forwardTraining, data, eps, flags),
          "dnnl_batch_normalization_forward_desc_init",
        ),
      operands: [
        { arg: ARG.src, user: data },
        { arg: ARG.mean, user: vec },
        { arg: ARG.variance, user: vec },
        { arg: ARG.diffDst, user: data },
        { arg: ARG.scale, user: vec },
        { arg: ARG.shift, user: vec },
        { arg: ARG.diffSrc, user: data },
        { arg: ARG.diffScale, user: vec },
        { arg: ARG.diffShift, user: vec },
      ],
      threads,
    };
  }, ptrs);
  // Per-channel gradients of the mean and variance inputs.
  // Every allocation of the kernel is done: this view of the heap stays valid.
  const heap = new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
  const at = (t: tf.TensorInfo) => (backend.dataIdMap.get(t.dataId)!.memoryOffset as number) >>> 2;
  const v = at(variance), g = scale == null ? -1 : at(scale), ds = at(dScale), db = at(dOffset);
  const dm = at(dMean), dv = at(dVariance);
  for (let i = 0; i < c; i++) {
    const inv = 1 / (heap[v + i] + eps);
    const gamma = g < 0 ? 1 : heap[g + i];
    heap[dm + i] = -gamma * Math.sqrt(inv) * heap[db + i];
    heap[dv + i] = -0.5 * gamma * inv * heap[ds + i];
  }
  return [dx, ...small];
}

/** The kernel config of {@linkcode BATCH_NORM_GRAD} for wasm. */
export const batchNormGradConfig: tf.KernelConfig = {
  kernelName: BATCH_NORM_GRAD,
  backendName: "wasm",
  kernelFunc: batchNormGrad as tf.KernelFunc,
};

/** Installs the FusedBatchNorm gradient that uses {@linkcode BATCH_NORM_GRAD} on wasm (idempotent). */
export function registerBatchNormGradient(): void {
  if (tf.getKernel(BATCH_NORM_GRAD, "wasm") === undefined) tf.registerKernel(batchNormGradConfig);
  overrideGradient("FusedBatchNorm", (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved as (tf.Tensor | undefined)[];
    if (runtime.dnnl === undefined || x === undefined || mean === undefined || variance === undefined) return undefined;
    const c = channels(x);
    const perChannel = (t: tf.Tensor | undefined) => t === undefined || (t.rank === 1 && t.size === c);
    if (x.dtype !== "float32" || dy.dtype !== "float32" || x.rank < 2 || x.size === 0) return undefined;
    if (!perChannel(mean) || !perChannel(variance) || !perChannel(scale)) return undefined;
    const inputs: tf.NamedTensorMap = { dy, x, mean, variance };
    if (scale !== undefined) inputs.scale = scale;
    const [dx, dScale, dOffset, dMean, dVariance] = tf.engine().runKernel(
      BATCH_NORM_GRAD,
      inputs,
      attrs,
    ) as tf.Tensor[];
    return {
      x: () => dx,
      mean: () => dMean,
      variance: () => dVariance,
      scale: () => dScale,
      offset: () => dOffset,
    };
  });
}
