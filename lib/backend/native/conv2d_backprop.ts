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

function forwardHint(d: Dnnl, m: ConvDescs) {
  return (od: Uint8Array<ArrayBuffer>) =>
    d.check(
      d.lib.dnnl_dilated_convolution_forward_desc_init(
        od,
        PROP.forwardTraining,
        ALG.convolutionDirect,
        m.src,
        m.weightsAny,
        null,
        m.dst,
        m.strides,
        m.dilates,
        m.padL,
        m.padR,
      ),
      "dnnl_dilated_convolution_forward_desc_init",
    );
}

function backwardDataSpec(d: Dnnl, g: ConvGeometry, threads: number): PlanSpec {
  {
    const m = convDescs(d, g);
    return {
      init: (od) =>
        d.check(
          d.lib.dnnl_dilated_convolution_backward_data_desc_init(
            od,
            ALG.convolutionDirect,
            m.src,
            m.weightsAny,
            m.dst,
            m.strides,
            m.dilates,
            m.padL,
            m.padR,
          ),
          "dnnl_dilated_convolution_backward_data_desc_init",
        ),
      hint: forwardHint(d, m),
      operands: [
        { arg: ARG.diffDst, user: m.dst },
        { arg: ARG.weights, user: m.weightsUser, query: QUERY.weightsMd },
        { arg: ARG.diffSrc, user: m.src, out: true },
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
function backwardWeightsSpec(d: Dnnl, g: ConvGeometry, threads: number, half?: "a" | "b"): PlanSpec {
  {
    const gather = isStridedPointwise(g);
    const m = convDescs(d, gather ? unitStrideGeometry(g) : g);
    return {
      init: (od) =>
        d.check(
          d.lib.dnnl_dilated_convolution_backward_weights_desc_init(
            od,
            ALG.convolutionDirect,
            m.src,
            m.weightsAny,
            null,
            m.dst,
            m.strides,
            m.dilates,
            m.padL,
            m.padR,
          ),
          "dnnl_dilated_convolution_backward_weights_desc_init",
        ),
      hint: forwardHint(d, m),
      operands: [
        gather ? { arg: ARG.src, user: stridedInputView(d, g), query: QUERY.srcMd } : { arg: ARG.src, user: m.src },
        { arg: ARG.diffDst, user: m.dst },
        half === "b"
          ? { arg: ARG.diffWeights, query: QUERY.diffWeightsMd, out: true, owned: true }
          : { arg: ARG.diffWeights, user: m.weightsUser, query: QUERY.diffWeightsMd, out: true },
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
function backwardWeightsSplit(d: Dnnl, g: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  const { a, b, sum, ptrsB } = weightHalves(d, g, ptrs);
  d.runAlongside(b, ptrsB, () => a.run(ptrs));
  sum.run([b.ownedData(2), ptrs[2]]);
}

/** The plans of the two halves of a weight gradient and of their sum, and the second half's pointers. */
function weightHalves(d: Dnnl, g: ConvGeometry, ptrs: Deno.PointerValue[]) {
  const n1 = Math.ceil(g.n / 2), key = geometryKey(g);
  const a = d.plan(`conv_bwd_weights_a|${key}`, () => backwardWeightsSpec(d, { ...g, n: n1 }, 1, "a"));
  const b = d.plan(`conv_bwd_weights_b|${key}`, () => backwardWeightsSpec(d, { ...g, n: g.n - n1 }, 1, "b"));
  const sum = d.reorderPlan(`conv_bwd_weights|${key}`, b.layouts[2], a.layouts[2], true);
  const [x, dy] = ptrs;
  const xB = offsetSized(x, 4 * n1 * g.h * g.w * g.c, `${key}: x of the second half`);
  const dyB = offsetSized(dy, 4 * n1 * g.oh * g.ow * g.co, `${key}: dy of the second half`);
  return { a, b, sum, ptrsB: [xB, dyB, null] as Deno.PointerValue[] };
}

/**
 * The input gradient of the convolution of geometry `g` on `ptrs` (`[dy,
 * filter, dx]`): batch halves with the helper thread on two cores, else the
 * adaptive thread count.
 */
export function convBackwardData(d: Dnnl, g: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  const macs = convMacs(g);
  const t = threading(macs, true), key = `conv_bwd_data|${geometryKey(g)}`;
  if (t === "adaptive" && g.n >= 2 && d.splitInvariant) {
    const xb = 4 * g.h * g.w * g.c, yb = 4 * g.oh * g.ow * g.co;
    d.runBatchSplit(key, g.n, (n) => backwardDataSpec(d, { ...g, n }, 1), ptrs, [yb, 0, xb]);
  } else {
    d.run(key, t, (threads) => backwardDataSpec(d, g, threads), ptrs);
  }
}

/**
 * The weight gradient of the convolution of geometry `g` on `ptrs` (`[x, dy,
 * dW]`, dW hwio): two fixed batch halves summed (see {@linkcode backwardWeightsSplit}),
 * or one plan on the deterministic thread count.
 */
export function convBackwardWeights(d: Dnnl, g: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  const macs = convMacs(g);
  if (g.n >= 2 && threading(macs, false) === "deterministic" && d.splitReductions) {
    backwardWeightsSplit(d, g, ptrs);
  } else {
    d.run(`conv_bwd_weights|${geometryKey(g)}`, threading(macs, false), (t) => backwardWeightsSpec(d, g, t), ptrs);
  }
}

/**
 * {@linkcode convBackwardWeights} as a job for the helper thread that runs
 * while this thread goes on (`Dnnl.postAsync`): both batch halves and their
 * sum there, the same plans and bits as the split. dW may be read after
 * `Dnnl.finishAsync()`. Where the split does not apply it runs here at once.
 */
export function convBackwardWeightsAsync(d: Dnnl, g: ConvGeometry, ptrs: Deno.PointerValue[]): void {
  if (!(g.n >= 2 && threading(convMacs(g), false) === "deterministic" && d.splitReductions)) {
    convBackwardWeights(d, g, ptrs);
    return;
  }
  const { a, b, sum, ptrsB } = weightHalves(d, g, ptrs);
  d.postAsync([a, b, sum], [ptrs, ptrsB, [b.ownedData(2), ptrs[2]]]);
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
      const g = convGeometry(info);
      const macs = convMacs(g);
      const d = isEmpty(g) ? undefined : nativeFor(macs);
      if (d !== undefined) {
        const dx = backend.makeOutput(a.inputShape, "float32");
        convBackwardData(d, g, [tensorPtr(backend, dy), tensorPtr(backend, filter), tensorPtr(backend, dx)]);
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
      const g = convGeometry(info);
      const macs = convMacs(g);
      const d = isEmpty(g) ? undefined : nativeFor(macs);
      if (d !== undefined) {
        const dw = backend.makeOutput(a.filterShape, "float32");
        convBackwardWeights(d, g, [tensorPtr(backend, x), tensorPtr(backend, dy), tensorPtr(backend, dw)]);
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
