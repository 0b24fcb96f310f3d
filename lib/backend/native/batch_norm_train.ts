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
 * With attr `relu` the forward pass also applies ReLU (oneDNN's
 * `fuse_norm_relu`: the ResNet pattern BatchNorm → ReLU in one pass) and
 * returns oneDNN's mask of the positive outputs as a sixth output (bytes in
 * an int32 tensor), which the gradient reads to zero dy where the output was
 * clamped: the separate ReLU kernel and its gradient are gone.
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
import { ARG, BNORM, PROP, QUERY, TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import type { PlanSpec } from "./plan.ts";
import { type KernelArgs, runtime, threading } from "./runtime.ts";
import { byteOffsetOf, tensorPtr } from "./wasm_ptr.ts";

/**
 * Kernel: `{x, scale, offset, movingMean, movingVariance}`, attrs `{varianceEpsilon, momentum, relu?}` →
 * `[y, mean, variance, movingMean′, movingVariance′, reluMask]`, the moving averages updated as tfjs's
 * layer does: `moving′ = moving − (moving − batch)·(1 − momentum)`; with `relu`, `y` is clamped at 0 and
 * `reluMask` holds oneDNN's workspace (else it is empty).
 */
export const BATCH_NORM_TRAIN = "MecoBatchNormTrain";
/**
 * Kernel: `{dy, x, mean, variance, scale, reluMask}`, attrs `{varianceEpsilon, relu?}` →
 * `[dx, dScale, dOffset]`.
 */
export const BATCH_NORM_TRAIN_GRAD = "MecoBatchNormTrainGrad";

function flags(relu: boolean): number {
  return BNORM.useScale | BNORM.useShift | (relu ? BNORM.fuseNormRelu : 0);
}

function dims(x: tf.TensorInfo): { n: number; c: number } {
  const c = x.shape[x.shape.length - 1];
  return { n: tf.util.sizeFromShape(x.shape) / c, c };
}

function forwardDesc(dnnl: Dnnl, od: Uint8Array<ArrayBuffer>, data: MemoryDesc, eps: number, relu: boolean): void {
  dnnl.check(
    dnnl.lib.dnnl_batch_normalization_forward_desc_init(od, PROP.forwardTraining, data, eps, flags(relu)),
    "dnnl_batch_normalization_forward_desc_init",
  );
}

function forwardSpec(dnnl: Dnnl, n: number, c: number, eps: number, relu: boolean, threads: number): PlanSpec {
  const data = dnnl.mdTag([n, c, 1, 1], TAG.nhwc);
  const vec = dnnl.mdTag([c], TAG.a);
  const operands: PlanSpec["operands"] = [
    { arg: ARG.src, user: data },
    { arg: ARG.scale, user: vec },
    { arg: ARG.shift, user: vec },
    { arg: ARG.dst, user: data, out: true },
    { arg: ARG.mean, user: vec, out: true },
    { arg: ARG.variance, user: vec, out: true },
  ];
  if (relu) operands.push({ arg: ARG.workspace, query: QUERY.workspaceMd, out: true });
  return { init: (od) => forwardDesc(dnnl, od, data, eps, relu), operands, threads };
}

/**
 * Bytes of oneDNN's ReLU mask (workspace) for a training-mode BatchNorm of `n`
 * rows × `c` channels with fused ReLU, on the thread count `run` will use.
 */
export function bnTrainMaskBytes(dnnl: Dnnl, n: number, c: number, eps: number): number {
  const key = `bnorm_train|${n},${c}|${eps}|relu`, work = threading(6 * n * c, false);
  const t = work === "one" ? 1 : dnnl.deterministicThreads;
  return dnnl.plan(`${key}|${t}`, () => forwardSpec(dnnl, n, c, eps, true, t)).bytes[6];
}

/**
 * Training-mode BatchNorm forward of `n` rows × `c` channels on `ptrs`
 * (`[x, scale, offset, y, batchMean, batchVariance]`, plus the mask with `relu`).
 */
export function bnTrainForward(
  dnnl: Dnnl,
  n: number,
  c: number,
  eps: number,
  relu: boolean,
  ptrs: Deno.PointerValue[],
) {
  const key = `bnorm_train|${n},${c}|${eps}|${relu ? "relu" : ""}`;
  dnnl.run(key, threading(6 * n * c, false), (threads) => forwardSpec(dnnl, n, c, eps, relu, threads), ptrs);
}

/**
 * Training-mode BatchNorm backward (batch statistics) on `ptrs` (`[x, mean,
 * variance, dy, scale, scale, dx, dScale, dOffset]`, plus the mask with `relu`).
 */
export function bnTrainBackward(
  dnnl: Dnnl,
  n: number,
  c: number,
  eps: number,
  relu: boolean,
  ptrs: Deno.PointerValue[],
) {
  dnnl.run(`bnorm_train_bwd|${n},${c}|${eps}|${relu ? "relu" : ""}`, threading(8 * n * c, false), (threads) => {
    const data = dnnl.mdTag([n, c, 1, 1], TAG.nhwc);
    const vec = dnnl.mdTag([c], TAG.a);
    return {
      init: (od) =>
        dnnl.check(
          dnnl.lib.dnnl_batch_normalization_backward_desc_init(od, PROP.backward, data, data, eps, flags(relu)),
          "dnnl_batch_normalization_backward_desc_init",
        ),
      hint: (od) => forwardDesc(dnnl, od, data, eps, relu),
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
        ...(relu ? [{ arg: ARG.workspace, query: QUERY.workspaceMd }] : []),
      ],
      threads,
    };
  }, ptrs);
}

function batchNormTrain(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, scale, offset, movingMean, movingVariance } = args.inputs as Record<string, tf.TensorInfo>;
  const { varianceEpsilon: eps, momentum, relu = false } = args.attrs as {
    varianceEpsilon: number;
    momentum: number;
    relu?: boolean;
  };
  const dnnl = runtime.dnnl as Dnnl;
  const { n, c } = dims(x);
  // The mask's size is oneDNN's choice: ask the plan (the one `run` will use).
  const maskBytes = relu ? bnTrainMaskBytes(dnnl, n, c, eps) : 0;
  const y = backend.makeOutput(x.shape, "float32");
  const [mean, variance, newMean, newVariance] = [1, 2, 3, 4].map(() => backend.makeOutput([c], "float32"));
  const mask = backend.makeOutput([Math.ceil(maskBytes / 4)], "int32");
  const ptrs = [x, scale, offset, y, mean, variance, ...(relu ? [mask] : [])].map((t) => tensorPtr(backend, t));
  bnTrainForward(dnnl, n, c, eps, relu, ptrs);
  // Every allocation of the kernel is done: this view of the heap stays valid.
  const heap = new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array<ArrayBuffer> }).HEAPU8.buffer);
  const at = (t: tf.TensorInfo) => byteOffsetOf(backend, t) >>> 2;
  for (const [old, batch, out] of [[movingMean, mean, newMean], [movingVariance, variance, newVariance]]) {
    updateMoving(heap, at(old), at(batch), at(out), c, momentum);
  }
  return [y, mean, variance, newMean, newVariance, mask];
}

/**
 * tfjs's moving-average update of `c` floats at float offsets `old`, `batch` →
 * `out` (may equal `old`): `moving′ = moving − (moving − batch)·(1 − momentum)`.
 */
export function updateMoving(heap: Float32Array, old: number, batch: number, out: number, c: number, momentum: number) {
  const decay = 1 - momentum;
  for (let i = 0; i < c; i++) heap[out + i] = heap[old + i] - (heap[old + i] - heap[batch + i]) * decay;
}

function batchNormTrainGrad(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { dy, x, mean, variance, scale, reluMask } = args.inputs as Record<string, tf.TensorInfo>;
  const { varianceEpsilon: eps, relu = false } = args.attrs as { varianceEpsilon: number; relu?: boolean };
  const dnnl = runtime.dnnl as Dnnl;
  const { n, c } = dims(x);
  const dx = backend.makeOutput(x.shape, "float32");
  const dScale = backend.makeOutput([c], "float32");
  const dOffset = backend.makeOutput([c], "float32");
  const ptrs = [x, mean, variance, dy, scale, scale, dx, dScale, dOffset, ...(relu ? [reluMask] : [])]
    .map((t) => tensorPtr(backend, t));
  bnTrainBackward(dnnl, n, c, eps, relu, ptrs);
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
    outputsToSave: [false, true, true, false, false, true],
    gradFunc: (dys, saved, attrs) => {
      const [x, scale, mean, variance, reluMask] = saved;
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
      // The statistics outputs feed only the moving averages: their gradients are zero by construction.
      const [dx, dScale, dOffset] = tf.engine().runKernel(
        BATCH_NORM_TRAIN_GRAD,
        { dy, x, mean, variance, scale, reluMask },
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
