/**
 * Batch normalisation in training mode as two oneDNN passes. tfjs computes a
 * training-mode BatchNorm from `moments` (Mean, Sub, Square, Mean) and a
 * FusedBatchNorm, and differentiates that graph with about twenty more
 * kernels: in a ResNet step these were most of the non-convolution kernel
 * calls. Here
 *
 * - {@linkcode BATCH_NORM_TRAIN} (`x`, `scale`, `offset`, moving mean and
 *   variance → `y`, `mean`, `variance`, updated moving mean and variance) is
 *   oneDNN's forward-training primitive: batch mean and (biased) variance
 *   over every axis but the last, then
 *   `y = scale · (x − mean) / √(variance + ε) + offset`; the moving averages
 *   are updated per channel in the same call;
 * - its gradient is {@linkcode BATCH_NORM_TRAIN_GRAD}, oneDNN's backward
 *   primitive with batch statistics, which returns the full input gradient
 *   (through the mean and variance too) and the scale and offset gradients
 *   in one pass.
 *
 * Both reduce over the batch, so their rounding depends on how the work is
 * split across threads: they run with the deterministic thread count (one,
 * unless `MECO_NATIVE_THREADS` fixes it), like every reduction here. The
 * layer that uses them is `lib/models/batch_norm.ts`; it falls back to the
 * stock formulation wherever these kernels are not registered.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ARG, BNORM, PROP, TAG } from "./dnnl_ffi.ts";
import type { Dnnl, MemoryDesc } from "./dnnl.ts";
import { type KernelArgs, runtime, threading } from "./runtime.ts";
import { byteOffsetOf, tensorPtr } from "./wasm_ptr.ts";

/**
 * Kernel: `{x, scale, offset, movingMean, movingVariance}`, attrs `{varianceEpsilon, momentum}` →
 * `[y, mean, variance, movingMean′, movingVariance′]`, the moving averages updated as tfjs's layer does:
 * `moving′ = moving − (moving − batch)·(1 − momentum)`.
 */
export const BATCH_NORM_TRAIN = "MecoBatchNormTrain";
/** Kernel: `{dy, x, mean, variance, scale}`, attrs `{varianceEpsilon}` → `[dx, dScale, dOffset]`. */
export const BATCH_NORM_TRAIN_GRAD = "MecoBatchNormTrainGrad";

const FLAGS = BNORM.useScale | BNORM.useShift;

function dims(x: tf.TensorInfo): { n: number; c: number; size: number } {
  const c = x.shape[x.shape.length - 1], size = tf.util.sizeFromShape(x.shape);
  return { n: size / c, c, size };
}

function forwardDesc(d: Dnnl, od: Uint8Array<ArrayBuffer>, data: MemoryDesc, eps: number): void {
  d.check(
    d.lib.dnnl_batch_normalization_forward_desc_init(od, PROP.forwardTraining, data, eps, FLAGS),
    "dnnl_batch_normalization_forward_desc_init",
  );
}

function batchNormTrain(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, scale, offset, movingMean, movingVariance } = args.inputs as Record<string, tf.TensorInfo>;
  const { varianceEpsilon: eps, momentum } = args.attrs as { varianceEpsilon: number; momentum: number };
  const d = runtime.dnnl as Dnnl;
  const { n, c, size } = dims(x);
  const y = backend.makeOutput(x.shape, "float32");
  const [mean, variance, newMean, newVariance] = [1, 2, 3, 4].map(() => backend.makeOutput([c], "float32"));
  const ptrs = [x, scale, offset, y, mean, variance].map((t) => tensorPtr(backend, t));
  d.run(`bnorm_train|${n},${c}|${eps}`, threading(6 * size, false), (threads) => {
    const data = d.mdTag([n, c, 1, 1], TAG.nhwc);
    const vec = d.mdTag([c], TAG.a);
    return {
      init: (od) => forwardDesc(d, od, data, eps),
      operands: [
        { arg: ARG.src, user: data },
        { arg: ARG.scale, user: vec },
        { arg: ARG.shift, user: vec },
        { arg: ARG.dst, user: data, out: true },
        { arg: ARG.mean, user: vec, out: true },
        { arg: ARG.variance, user: vec, out: true },
      ],
      threads,
    };
  }, ptrs);
  // Every allocation of the kernel is done: this view of the heap stays valid.
  const heap = new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
  const at = (t: tf.TensorInfo) => byteOffsetOf(backend, t) >>> 2;
  const decay = 1 - momentum;
  for (const [old, batch, out] of [[movingMean, mean, newMean], [movingVariance, variance, newVariance]]) {
    const o = at(old), b = at(batch), r = at(out);
    for (let i = 0; i < c; i++) heap[r + i] = heap[o + i] - (heap[o + i] - heap[b + i]) * decay;
  }
  return [y, mean, variance, newMean, newVariance];
}

function batchNormTrainGrad(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { dy, x, mean, variance, scale } = args.inputs as Record<string, tf.TensorInfo>;
  const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
  const d = runtime.dnnl as Dnnl;
  const { n, c, size } = dims(x);
  const dx = backend.makeOutput(x.shape, "float32");
  const dScale = backend.makeOutput([c], "float32");
  const dOffset = backend.makeOutput([c], "float32");
  const ptrs = [x, mean, variance, dy, scale, scale, dx, dScale, dOffset].map((t) => tensorPtr(backend, t));
  d.run(`bnorm_train_bwd|${n},${c}|${eps}`, threading(8 * size, false), (threads) => {
    const data = d.mdTag([n, c, 1, 1], TAG.nhwc);
    const vec = d.mdTag([c], TAG.a);
    return {
      init: (od) =>
        d.check(
          d.lib.dnnl_batch_normalization_backward_desc_init(od, PROP.backward, data, data, eps, FLAGS),
          "dnnl_batch_normalization_backward_desc_init",
        ),
      hint: (od) => forwardDesc(d, od, data, eps),
      operands: [
        { arg: ARG.src, user: data },
        { arg: ARG.mean, user: vec },
        { arg: ARG.variance, user: vec },
        { arg: ARG.diffDst, user: data },
        { arg: ARG.scale, user: vec },
        { arg: ARG.shift, user: vec }, // required with use_shift, not read backward
        { arg: ARG.diffSrc, user: data, out: true },
        { arg: ARG.diffScale, user: vec, out: true },
        { arg: ARG.diffShift, user: vec, out: true },
      ],
      threads,
    };
  }, ptrs);
  return [dx, dScale, dOffset];
}

/**
 * Registers both kernels on wasm and the gradient of {@linkcode BATCH_NORM_TRAIN}
 * (idempotent). Only called once oneDNN is loaded.
 */
export function registerBatchNormTraining(): void {
  if (tf.getKernel(BATCH_NORM_TRAIN, "wasm") !== undefined) return;
  tf.registerKernel({ kernelName: BATCH_NORM_TRAIN, backendName: "wasm", kernelFunc: batchNormTrain as tf.KernelFunc });
  tf.registerKernel({
    kernelName: BATCH_NORM_TRAIN_GRAD,
    backendName: "wasm",
    kernelFunc: batchNormTrainGrad as tf.KernelFunc,
  });
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ["x", "scale"],
    outputsToSave: [false, true, true, false, false],
    gradFunc: (dys, saved, attrs) => {
      const [x, scale, mean, variance] = saved;
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
      // The statistics outputs feed only the moving averages: their gradients are zero by construction.
      const [dx, dScale, dOffset] = tf.engine().runKernel(
        BATCH_NORM_TRAIN_GRAD,
        { dy, x, mean, variance, scale },
        attrs,
      ) as tf.Tensor[];
      return { x: () => dx, scale: () => dScale, offset: () => dOffset };
    },
  });
}

/** True when the training kernels can run on the active backend now. */
export function batchNormTrainingAvailable(): boolean {
  return runtime.enabled && runtime.dnnl !== undefined && tf.getBackend() === "wasm" &&
    tf.getKernel(BATCH_NORM_TRAIN, "wasm") !== undefined;
}
