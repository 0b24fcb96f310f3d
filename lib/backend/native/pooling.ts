/**
 * MaxPoolGrad and AvgPoolGrad on oneDNN's pooling primitives. Max pooling's
 * backward pass needs to know where each window's maximum was: oneDNN's
 * forward pass in training mode records that in a workspace, so the kernel
 * runs the forward pooling again (into scratch memory) and then the backward
 * one; both are vectorised passes, several times faster than the loops they
 * replace. Max pooling of few channels, which oneDNN vectorises poorly, runs
 * on the heap instead (max_pool_heap.ts: WebAssembly SIMD, or loops). Ties go
 * to the first maximum of a window, as in the cpu backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, PROP, QUERY, TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import type { PlanSpec } from "./plan.ts";
import { type KernelArgs, nativeFor } from "./runtime.ts";
import { byteOffsetOf, tensorPtr } from "./wasm_ptr.ts";
import { convGeometry } from "./conv_geometry.ts";
import { heapMaxPool, poolOnHeap } from "./max_pool_heap.ts";
import { offsetSized } from "./sized_ptr.ts";
import { alignedScratch } from "./scratch.ts";

/** Shared with the compiled training step. */
export interface PoolDescs {
  src: Uint8Array<ArrayBuffer>;
  dst: Uint8Array<ArrayBuffer>;
  strides: BigInt64Array<ArrayBuffer>;
  kernel: BigInt64Array<ArrayBuffer>;
  padL: BigInt64Array<ArrayBuffer>;
  padR: BigInt64Array<ArrayBuffer>;
}

/** Shared with the compiled training step. */
export function poolDescs(dnnl: Dnnl, info: tf.backend_util.Conv2DInfo): PoolDescs {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  return {
    src: dnnl.mdTag([n, c, h, w], TAG.nhwc),
    dst: dnnl.mdTag([n, c, oh, ow], TAG.nhwc),
    strides: dnnl.dims([sh, sw]),
    kernel: dnnl.dims([fh, fw]),
    padL: dnnl.dims([pt, pl]),
    // As for convolutions: exactly the output size, negative when trailing rows are never read.
    padR: dnnl.dims([(oh - 1) * sh + fh - h - pt, (ow - 1) * sw + fw - w - pl]),
  };
}

/** Shared with the compiled training step. */
export function infoKey(info: tf.backend_util.Conv2DInfo): string {
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ].join(",");
}

/** Shared with the compiled training step. */
export function forwardDesc(dnnl: Dnnl, descs: PoolDescs, alg: number) {
  return (od: Uint8Array<ArrayBuffer>) =>
    dnnl.check(
      dnnl.lib.dnnl_pooling_forward_desc_init(
        od,
        PROP.forwardTraining,
        alg,
        descs.src,
        descs.dst,
        descs.strides,
        descs.kernel,
        descs.padL,
        descs.padR,
      ),
      "dnnl_pooling_forward_desc_init",
    );
}

/** Shared with the compiled training step. */
export function backwardDesc(dnnl: Dnnl, descs: PoolDescs, alg: number) {
  return (od: Uint8Array<ArrayBuffer>) =>
    dnnl.check(
      dnnl.lib.dnnl_pooling_backward_desc_init(
        od,
        alg,
        descs.src,
        descs.dst,
        descs.strides,
        descs.kernel,
        descs.padL,
        descs.padR,
      ),
      "dnnl_pooling_backward_desc_init",
    );
}

function poolInfo(input: tf.TensorInfo, attrs: tf.MaxPoolGradAttrs | tf.AvgPoolGradAttrs) {
  return tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    (attrs as tf.MaxPoolGradAttrs).dimRoundingMode,
  );
}

function usable(info: tf.backend_util.Conv2DInfo): boolean {
  return info.dilationHeight === 1 && info.dilationWidth === 1 &&
    info.batchSize * info.inHeight * info.inWidth * info.inChannels * info.outHeight * info.outWidth > 0;
}

function maxPoolGrad(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    const info = poolInfo(input, attrs);
    const dnnl = input.dtype === "float32" && dy.dtype === "float32" && usable(info)
      ? nativeFor(tf.util.sizeFromShape(input.shape) * info.filterHeight * info.filterWidth)
      : undefined;
    if (dnnl === undefined) return prev(args) as tf.TensorInfo;
    if (poolOnHeap(dnnl, backend, info.inChannels)) return maxPoolGradHeap(backend, input, dy, info);
    const key = infoKey(info);
    const fwd = dnnl.plan(`maxpool_fwd|${key}`, (): PlanSpec => {
      const descs = poolDescs(dnnl, info);
      return {
        init: forwardDesc(dnnl, descs, ALG.poolingMax),
        operands: [
          { arg: ARG.src, user: descs.src },
          { arg: ARG.dst, user: descs.dst },
          { arg: ARG.workspace, query: QUERY.workspaceMd },
        ],
        threads: 1,
      };
    });
    const bwd = dnnl.plan(`maxpool_bwd|${key}`, (): PlanSpec => {
      const descs = poolDescs(dnnl, info);
      return {
        init: backwardDesc(dnnl, descs, ALG.poolingMax),
        hint: forwardDesc(dnnl, descs, ALG.poolingMax),
        operands: [
          { arg: ARG.diffDst, user: descs.dst },
          { arg: ARG.workspace, query: QUERY.workspaceMd },
          { arg: ARG.diffSrc, user: descs.src },
        ],
        threads: 1,
      };
    });
    const dx = backend.makeOutput(input.shape, "float32");
    const dstBytes = Math.ceil(fwd.bytes[1] / 64) * 64;
    const base = alignedScratch(dstBytes + fwd.bytes[2]).ptr;
    const ws = offsetSized(base, dstBytes, "max-pooling workspace");
    fwd.run([tensorPtr(backend, input), base, ws]);
    bwd.run([tensorPtr(backend, dy), ws, tensorPtr(backend, dx)]);
    return dx;
  };
}

/** MaxPoolGrad of few channels on the heap (max_pool_heap.ts): the forward pass for the maxima's indices, then the routing. */
function maxPoolGradHeap(
  backend: BackendWasm,
  input: tf.TensorInfo,
  dy: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  const pool = heapMaxPool(backend, convGeometry(info));
  const dx = backend.makeOutput(input.shape, "float32");
  const y = backend.makeOutput(dy.shape, "float32"), idx = backend.makeOutput(dy.shape, "int32");
  try {
    pool.forward(byteOffsetOf(backend, input), byteOffsetOf(backend, y), byteOffsetOf(backend, idx));
    pool.backward(byteOffsetOf(backend, dy), byteOffsetOf(backend, dx), byteOffsetOf(backend, idx));
  } finally {
    backend.disposeData(y.dataId);
    backend.disposeData(idx.dataId);
  }
  return dx;
}

function avgPoolGrad(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.AvgPoolGradAttrs;
    const info = poolInfo(input, attrs);
    const dnnl = input.dtype === "float32" && dy.dtype === "float32" && usable(info)
      ? nativeFor(tf.util.sizeFromShape(input.shape) * info.filterHeight * info.filterWidth)
      : undefined;
    if (dnnl === undefined) return prev(args) as tf.TensorInfo;
    // tfjs divides every window's gradient by the full window size, padding included.
    const alg = ALG.poolingAvgIncludePadding;
    const bwd = dnnl.plan(`avgpool_bwd|${infoKey(info)}`, (): PlanSpec => {
      const descs = poolDescs(dnnl, info);
      return {
        init: backwardDesc(dnnl, descs, alg),
        hint: forwardDesc(dnnl, descs, alg),
        operands: [{ arg: ARG.diffDst, user: descs.dst }, { arg: ARG.diffSrc, user: descs.src }],
        threads: 1,
      };
    });
    const dx = backend.makeOutput(input.shape, "float32");
    bwd.run([tensorPtr(backend, dy), tensorPtr(backend, dx)]);
    return dx;
  };
}

/** MaxPoolGrad on oneDNN, deferring to `prev` otherwise. */
export function maxPoolGradConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: maxPoolGrad(prev.kernelFunc) as tf.KernelFunc };
}

/** AvgPoolGrad on oneDNN, deferring to `prev` otherwise. */
export function avgPoolGradConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: avgPoolGrad(prev.kernelFunc) as tf.KernelFunc };
}
