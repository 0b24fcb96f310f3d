/**
 * Conv2DBackpropInput and Conv2DBackpropFilter on oneDNN for the wasm backend:
 * the backward-data and backward-weights convolution primitives, reading dy,
 * x and the filter from the wasm heap and writing dx (nhwc) or dW (hwio,
 * reordered from oneDNN's blocked layout) into it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, PROP, QUERY } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import type { PlanSpec } from "./plan.ts";
import {
  type ConvDescs,
  convDescs,
  type ConvGeometry,
  convGeometry,
  convMacs,
  geometryKey,
  isEmpty,
  isStridedPointwise,
  stridedInputView,
  unitStrideGeometry,
} from "./conv_geometry.ts";
import { type KernelArgs, nativeFor, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";
import { offsetSized } from "./sized_ptr.ts";

function forwardHint(dnnl: Dnnl, descs: ConvDescs) {
  return (od: Uint8Array<ArrayBuffer>) =>
    dnnl.check(
      dnnl.lib.dnnl_dilated_convolution_forward_desc_init(
        od,
        PROP.forwardTraining,
        ALG.convolutionDirect,
        descs.src,
        descs.weightsAny,
        null,
        descs.dst,
        descs.strides,
        descs.dilates,
        descs.padL,
        descs.padR,
      ),
      "dnnl_dilated_convolution_forward_desc_init",
    );
}

function backwardDataSpec(dnnl: Dnnl, geometry: ConvGeometry, threads: number): PlanSpec {
  {
    const descs = convDescs(dnnl, geometry);
    return {
      init: (od) =>
        dnnl.check(
          dnnl.lib.dnnl_dilated_convolution_backward_data_desc_init(
            od,
            ALG.convolutionDirect,
            descs.src,
            descs.weightsAny,
            descs.dst,
            descs.strides,
            descs.dilates,
            descs.padL,
            descs.padR,
          ),
          "dnnl_dilated_convolution_backward_data_desc_init",
        ),
      hint: forwardHint(dnnl, descs),
      operands: [
        { arg: ARG.diffDst, user: descs.dst },
        { arg: ARG.weights, user: descs.weightsUser, query: QUERY.weightsMd },
        { arg: ARG.diffSrc, user: descs.src, out: true },
      ],
      threads,
    };
  }
}

/**
 * The weight gradient's plan. A strided pointwise convolution
 * ({@linkcode isStridedPointwise}) is computed as the unit-stride one on the
 * input pixels it reads, gathered by a reorder from a strided view of x into
 * a buffer the plan owns: oneDNN 2.6's own handling of that case on AVX2
 * (`jit_1x1:avx2`, which copies the strided pixels into its scratchpad,
 * "reduce to unit stride") writes past the end of that scratchpad when the
 * input has fewer than 8 channels, corrupting the process heap. The gather
 * costs one copy of `n·oh·ow·c` floats on every ISA and gives the same sums.
 */
function backwardWeightsSpec(dnnl: Dnnl, geometry: ConvGeometry, threads: number, half?: "a" | "b"): PlanSpec {
  {
    const gather = isStridedPointwise(geometry);
    const descs = convDescs(dnnl, gather ? unitStrideGeometry(geometry) : geometry);
    return {
      init: (od) =>
        dnnl.check(
          dnnl.lib.dnnl_dilated_convolution_backward_weights_desc_init(
            od,
            ALG.convolutionDirect,
            descs.src,
            descs.weightsAny,
            null,
            descs.dst,
            descs.strides,
            descs.dilates,
            descs.padL,
            descs.padR,
          ),
          "dnnl_dilated_convolution_backward_weights_desc_init",
        ),
      hint: forwardHint(dnnl, descs),
      operands: [
        gather
          ? { arg: ARG.src, user: stridedInputView(dnnl, geometry), query: QUERY.srcMd }
          : { arg: ARG.src, user: descs.src },
        { arg: ARG.diffDst, user: descs.dst },
        half === "b"
          ? { arg: ARG.diffWeights, query: QUERY.diffWeightsMd, out: true, owned: true }
          : { arg: ARG.diffWeights, user: descs.weightsUser, query: QUERY.diffWeightsMd, out: true },
      ],
      threads,
      ownScratchpad: half !== undefined,
    };
  }
}

/**
 * The weight gradient as two halves of the batch, each reduced by a
 * one-thread primitive, the first half on this thread and the second on the
 * helper thread at once, then dW = dW(second half) + dW(first half) in one
 * rounding (a reorder with oneDNN's sum post-op). The bits depend only on the
 * problem, never on the load or the thread that ran a half (see helper_thread.ts).
 */
function backwardWeightsSplit(dnnl: Dnnl, geometry: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  const { a, b, sum, ptrsB } = weightHalves(dnnl, geometry, ptrs);
  dnnl.runAlongside(b, ptrsB, () => a.run(ptrs));
  sum.run([b.ownedData(2), ptrs[2]]);
}

/** The plans of the two halves of a weight gradient and of their sum, and the second half's pointers. */
function weightHalves(dnnl: Dnnl, geometry: ConvGeometry, ptrs: Deno.PointerValue[]) {
  const n1 = Math.ceil(geometry.n / 2), key = geometryKey(geometry);
  const a = dnnl.plan(`conv_bwd_weights_a|${key}`, () => backwardWeightsSpec(dnnl, { ...geometry, n: n1 }, 1, "a"));
  const b = dnnl.plan(
    `conv_bwd_weights_b|${key}`,
    () => backwardWeightsSpec(dnnl, { ...geometry, n: geometry.n - n1 }, 1, "b"),
  );
  const sum = dnnl.reorderPlan(`conv_bwd_weights|${key}`, b.layouts[2], a.layouts[2], true);
  const [x, dy] = ptrs;
  const xB = offsetSized(x, 4 * n1 * geometry.h * geometry.w * geometry.c, `${key}: x of the second half`);
  const dyB = offsetSized(dy, 4 * n1 * geometry.oh * geometry.ow * geometry.co, `${key}: dy of the second half`);
  return { a, b, sum, ptrsB: [xB, dyB, null] as Deno.PointerValue[] };
}

/**
 * The input gradient of the convolution of `geometry` on `ptrs` (`[dy,
 * filter, dx]`): batch halves with the helper thread on two cores, else the
 * adaptive thread count.
 */
export function convBackwardData(dnnl: Dnnl, geometry: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  const macs = convMacs(geometry);
  const t = threading(macs, true), key = `conv_bwd_data|${geometryKey(geometry)}`;
  if (t === "adaptive" && geometry.n >= 2 && dnnl.splitInvariant) {
    const xb = 4 * geometry.h * geometry.w * geometry.c, yb = 4 * geometry.oh * geometry.ow * geometry.co;
    dnnl.runBatchSplit(key, geometry.n, (n) => backwardDataSpec(dnnl, { ...geometry, n }, 1), ptrs, [yb, 0, xb]);
  } else {
    dnnl.run(key, t, (threads) => backwardDataSpec(dnnl, geometry, threads), ptrs);
  }
}

/**
 * The weight gradient of the convolution of `geometry` on `ptrs` (`[x, dy,
 * dW]`, dW hwio): two fixed batch halves summed (see {@linkcode backwardWeightsSplit}),
 * or one plan on the deterministic thread count.
 */
export function convBackwardWeights(dnnl: Dnnl, geometry: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  const macs = convMacs(geometry);
  if (geometry.n >= 2 && threading(macs, false) === "deterministic" && dnnl.splitReductions) {
    backwardWeightsSplit(dnnl, geometry, ptrs);
  } else {
    dnnl.run(
      `conv_bwd_weights|${geometryKey(geometry)}`,
      threading(macs, false),
      (t) => backwardWeightsSpec(dnnl, geometry, t),
      ptrs,
    );
  }
}

/**
 * {@linkcode convBackwardWeights} as a job for the helper thread that runs
 * while this thread goes on (`Dnnl.postAsync`): both batch halves and their
 * sum there, the same plans and bits as the split. dW may be read after
 * `Dnnl.finishAsync()`. Where the split does not apply it runs here at once.
 */
export function convBackwardWeightsAsync(dnnl: Dnnl, geometry: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  if (!(geometry.n >= 2 && threading(convMacs(geometry), false) === "deterministic" && dnnl.splitReductions)) {
    convBackwardWeights(dnnl, geometry, ptrs);
    return;
  }
  const { a, b, sum, ptrsB } = weightHalves(dnnl, geometry, ptrs);
  dnnl.postAsync([a, b, sum], [ptrs, ptrsB, [b.ownedData(2), ptrs[2]]]);
}

function conv2DBackpropInput(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if ((a.dataFormat ?? "NHWC") === "NHWC" && dy.dtype === "float32" && filter.dtype === "float32") {
      const info = tf.backend_util.computeConv2DInfo(
        a.inputShape,
        filter.shape as [number, number, number, number],
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const geometry = convGeometry(info);
      const macs = convMacs(geometry);
      const dnnl = isEmpty(geometry) ? undefined : nativeFor(macs);
      if (dnnl !== undefined) {
        const dx = backend.makeOutput(a.inputShape, "float32");
        convBackwardData(dnnl, geometry, [tensorPtr(backend, dy), tensorPtr(backend, filter), tensorPtr(backend, dx)]);
        return dx;
      }
    }
    return prev(args) as tf.TensorInfo;
  };
}

function conv2DBackpropFilter(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if ((a.dataFormat ?? "NHWC") === "NHWC" && dy.dtype === "float32" && x.dtype === "float32") {
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        a.filterShape,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const geometry = convGeometry(info);
      const macs = convMacs(geometry);
      const dnnl = isEmpty(geometry) ? undefined : nativeFor(macs);
      if (dnnl !== undefined) {
        const dw = backend.makeOutput(a.filterShape, "float32");
        convBackwardWeights(dnnl, geometry, [tensorPtr(backend, x), tensorPtr(backend, dy), tensorPtr(backend, dw)]);
        return dw;
      }
    }
    return prev(args) as tf.TensorInfo;
  };
}

/** Conv2DBackpropInput over oneDNN, deferring to `prev` where oneDNN is not used. */
export function conv2DBackpropInputConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: conv2DBackpropInput(prev.kernelFunc) as tf.KernelFunc };
}

/** Conv2DBackpropFilter over oneDNN, deferring to `prev` where oneDNN is not used. */
export function conv2DBackpropFilterConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: conv2DBackpropFilter(prev.kernelFunc) as tf.KernelFunc };
}
