/**
 * ResizeNearestNeighbor and its gradient on oneDNN's resampling primitive,
 * for integer upscaling without corner alignment or half-pixel centres (the
 * ×2 upsampling of the DFME generator). There oneDNN's nearest neighbour and
 * tfjs's (source row ⌊r·h/H⌋) pick the same pixels, and the gradient sums each
 * s×s block of dy. The stock wasm gradient took ≈ 30 ms for one
 * [256, 14, 14, 32] → [256, 28, 28, 32] upsampling.
 *
 * oneDNN's resampling kernels write their output with non-temporal stores,
 * which fault unless the destination is 64-byte aligned, and the wasm heap's
 * malloc aligns to 8 bytes only: a misaligned output is written to aligned
 * scratch memory first and copied into place.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, PROP, TAG } from "./dnnl_ffi.ts";
import type { PlanSpec } from "./plan.ts";
import { type KernelArgs, nativeFor, runtime, threading } from "./runtime.ts";
import { byteOffsetOf, heapBase, tensorPtr } from "./wasm_ptr.ts";
import { alignedScratch } from "./scratch.ts";

/** [n, h, w, c] of the small side and [H, W] of the large, when oneDNN's semantics equal tfjs's; else undefined. */
function resizeGeometry(
  small: tf.TensorInfo,
  big: [number, number],
  attrs: { alignCorners: boolean; halfPixelCenters: boolean },
): number[] | undefined {
  if (small.shape.length !== 4 || small.dtype !== "float32" || attrs.alignCorners || attrs.halfPixelCenters) {
    return undefined;
  }
  const [n, h, w, c] = small.shape;
  const [bh, bw] = big;
  if (n * h * w * c === 0 || bh % h !== 0 || bw % w !== 0) return undefined;
  return [n, h, w, c, bh, bw];
}

function spec(forward: boolean, geometry: number[], threads: number): PlanSpec {
  const dnnl = runtime.dnnl!;
  const [n, h, w, c, bh, bw] = geometry;
  const src = dnnl.mdTag([n, c, h, w], TAG.nhwc), dst = dnnl.mdTag([n, c, bh, bw], TAG.nhwc);
  const fwd = (od: Uint8Array<ArrayBuffer>) =>
    dnnl.check(
      dnnl.lib.dnnl_resampling_forward_desc_init(od, PROP.forwardTraining, ALG.resamplingNearest, null, src, dst),
      "dnnl_resampling_forward_desc_init",
    );
  if (forward) {
    return { init: fwd, operands: [{ arg: ARG.src, user: src }, { arg: ARG.dst, user: dst }], threads };
  }
  return {
    init: (od) =>
      dnnl.check(
        dnnl.lib.dnnl_resampling_backward_desc_init(od, ALG.resamplingNearest, null, src, dst),
        "dnnl_resampling_backward_desc_init",
      ),
    hint: fwd,
    operands: [{ arg: ARG.diffDst, user: dst }, { arg: ARG.diffSrc, user: src }],
    threads,
  };
}

/** Runs `write` on `out`'s memory if 64-byte aligned, else on aligned scratch memory then copied into `out`. */
function writeAligned(
  backend: BackendWasm,
  out: tf.TensorInfo,
  bytes: number,
  write: (dst: Deno.PointerValue) => void,
) {
  const offset = byteOffsetOf(backend, out);
  const address = Deno.UnsafePointer.value(heapBase(backend)) + BigInt(offset);
  if (address % 64n === 0n) {
    write(tensorPtr(backend, out));
    return;
  }
  const scratch = alignedScratch(bytes);
  write(scratch.ptr);
  (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.set(scratch.view.subarray(0, bytes), offset);
}

function resize(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { images } = args.inputs as { images: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.ResizeNearestNeighborAttrs;
    const geometry = resizeGeometry(images, attrs.size, attrs);
    const size = geometry === undefined ? 0 : geometry[0] * geometry[3] * geometry[4] * geometry[5];
    const dnnl = geometry === undefined ? undefined : nativeFor(size);
    if (dnnl === undefined || geometry === undefined) return prev(args) as tf.TensorInfo;
    const out = backend.makeOutput([geometry[0], geometry[4], geometry[5], geometry[3]], "float32");
    const run = (dst: Deno.PointerValue) =>
      dnnl.run(`resize_fwd|${geometry}`, threading(4 * size, true), (threads) => spec(true, geometry, threads), [
        tensorPtr(backend, images),
        dst,
      ]);
    writeAligned(backend, out, 4 * size, run);
    return out;
  };
}

function resizeGrad(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
    const geometry = dy.dtype === "float32" && dy.shape.length === 4
      ? resizeGeometry(images, [dy.shape[1], dy.shape[2]], attrs)
      : undefined;
    const size = geometry === undefined ? 0 : geometry[0] * geometry[3] * geometry[4] * geometry[5];
    const dnnl = geometry === undefined ? undefined : nativeFor(size);
    if (dnnl === undefined || geometry === undefined) return prev(args) as tf.TensorInfo;
    const dx = backend.makeOutput(images.shape, "float32");
    const run = (dst: Deno.PointerValue) =>
      dnnl.run(`resize_bwd|${geometry}`, threading(4 * size, true), (threads) => spec(false, geometry, threads), [
        tensorPtr(backend, dy),
        dst,
      ]);
    writeAligned(backend, dx, 4 * tf.util.sizeFromShape(images.shape), run);
    return dx;
  };
}

/** ResizeNearestNeighbor on oneDNN for integer upscaling, deferring to `prev` otherwise. */
export function resizeNearestNeighborConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: resize(prev.kernelFunc) as tf.KernelFunc };
}

/** ResizeNearestNeighborGrad on oneDNN for integer upscaling, deferring to `prev` otherwise. */
export function resizeNearestNeighborGradConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: resizeGrad(prev.kernelFunc) as tf.KernelFunc };
}
