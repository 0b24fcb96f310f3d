/**
 * Conv2D and FusedConv2D on oneDNN for the wasm backend: a forward
 * convolution reading x (nhwc) and the filter (hwio, reordered to oneDNN's
 * blocked layout) straight from the wasm heap and writing the output there,
 * with bias and activation fused as oneDNN bias and eltwise post-ops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, PROP, QUERY, TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import type { PlanSpec } from "./plan.ts";
import { convDescs, type ConvGeometry, convGeometry, convMacs, geometryKey, isEmpty } from "./conv_geometry.ts";
import { type KernelArgs, nativeFor, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";

/** oneDNN eltwise post-op `[alg, alpha, beta]` for a tfjs fused activation; undefined when not expressible. */
export function activationPostOp(activation: string, leakyreluAlpha: number): [number, number, number][] | undefined {
  switch (activation) {
    case "linear":
      return [];
    case "relu":
      return [[ALG.eltwiseRelu, 0, 0]];
    case "relu6":
      return [[ALG.eltwiseClipV2, 0, 6]];
    case "leakyrelu":
      return [[ALG.eltwiseRelu, leakyreluAlpha, 0]];
    case "elu":
      return [[ALG.eltwiseElu, 1, 0]];
    case "sigmoid":
      return [[ALG.eltwiseLogistic, 0, 0]];
    default:
      return undefined; // prelu needs per-channel weights: left to the wasm kernel.
  }
}

/**
 * Runs a forward convolution into a new output tensor, or returns undefined
 * when the problem is not for oneDNN (too small, empty, non-float32).
 */
export function runConvForward(
  backend: BackendWasm,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  bias: tf.TensorInfo | undefined,
  info: tf.backend_util.Conv2DInfo,
  post: [number, number, number][],
): tf.TensorInfo | undefined {
  const geometry = convGeometry(info);
  if (isEmpty(geometry) || x.dtype !== "float32" || filter.dtype !== "float32") return undefined;
  if (bias !== undefined && (bias.dtype !== "float32" || tf.util.sizeFromShape(bias.shape) !== geometry.co)) {
    return undefined;
  }
  const macs = convMacs(geometry);
  const dnnl = nativeFor(macs);
  if (dnnl === undefined) return undefined;
  const withBias = bias !== undefined;
  const out = backend.makeOutput(info.outShape, "float32");
  const ptrs = bias === undefined
    ? [tensorPtr(backend, x), tensorPtr(backend, filter), tensorPtr(backend, out)]
    : [tensorPtr(backend, x), tensorPtr(backend, filter), tensorPtr(backend, bias), tensorPtr(backend, out)];
  convForward(dnnl, geometry, withBias, post, ptrs);
  return out;
}

/**
 * Runs the forward convolution of `geometry` on `ptrs` (`[x, filter, y]`, or
 * `[x, filter, bias, y]` with `withBias`; filter hwio, activations nhwc), with
 * post-ops `post`: split in batch halves with the helper thread on two cores,
 * else on the adaptive thread count.
 */
export function convForward(
  dnnl: Dnnl,
  geometry: ConvGeometry,
  withBias: boolean,
  post: [number, number, number][],
  ptrs: Deno.PointerValue[],
): void {
  const macs = convMacs(geometry);
  const key = `conv_fwd|${geometryKey(geometry)}|${withBias}|${post.flat().join(",")}`;
  const t = threading(macs, true);
  if (t === "adaptive" && geometry.n >= 2 && dnnl.splitInvariant) {
    const xb = 4 * geometry.h * geometry.w * geometry.c, yb = 4 * geometry.oh * geometry.ow * geometry.co;
    dnnl.runBatchSplit(
      key,
      geometry.n,
      (n) => forwardSpec(dnnl, { ...geometry, n }, withBias, post, 1),
      ptrs,
      withBias ? [xb, 0, 0, yb] : [xb, 0, yb],
    );
  } else {
    dnnl.run(key, t, (threads) => forwardSpec(dnnl, geometry, withBias, post, threads), ptrs);
  }
}

function forwardSpec(
  dnnl: Dnnl,
  geometry: ConvGeometry,
  withBias: boolean,
  post: [number, number, number][],
  threads: number,
): PlanSpec {
  {
    const descs = convDescs(dnnl, geometry);
    const biasMd = withBias ? dnnl.mdTag([geometry.co], TAG.a) : null;
    const operands = [
      { arg: ARG.src, user: descs.src },
      { arg: ARG.weights, user: descs.weightsUser, query: QUERY.weightsMd },
      ...(biasMd === null ? [] : [{ arg: ARG.bias, user: biasMd }]),
      { arg: ARG.dst, user: descs.dst },
    ];
    return {
      init: (od) =>
        dnnl.check(
          dnnl.lib.dnnl_dilated_convolution_forward_desc_init(
            od,
            PROP.forwardInference,
            ALG.convolutionDirect,
            descs.src,
            descs.weightsAny,
            biasMd,
            descs.dst,
            descs.strides,
            descs.dilates,
            descs.padL,
            descs.padR,
          ),
          "dnnl_dilated_convolution_forward_desc_init",
        ),
      operands,
      eltwise: post,
      threads,
    };
  }
}

function conv2D(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const a = args.attrs as unknown as tf.Conv2DAttrs;
    if (a.dataFormat === undefined || a.dataFormat === "NHWC") {
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        a.strides,
        a.dilations,
        a.pad,
        a.dimRoundingMode,
      );
      const out = runConvForward(backend, x, filter, undefined, info, []);
      if (out !== undefined) return out;
    }
    return prev(args) as tf.TensorInfo;
  };
}

function fusedConv2D(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x, filter, bias, preluActivationWeights } = args.inputs as {
      x: tf.TensorInfo;
      filter: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const a = args.attrs as unknown as tf.FusedConv2DAttrs;
    const post = activationPostOp(a.activation, a.leakyreluAlpha ?? 0);
    if (post !== undefined && preluActivationWeights == null && (a.dataFormat ?? "NHWC") === "NHWC") {
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        a.strides,
        a.dilations,
        a.pad,
        a.dimRoundingMode,
      );
      const out = runConvForward(backend, x, filter, bias ?? undefined, info, post);
      if (out !== undefined) return out;
    }
    return prev(args) as tf.TensorInfo;
  };
}

/** Conv2D over oneDNN, deferring to `prev` where oneDNN is not used. */
export function conv2DConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: conv2D(prev.kernelFunc) as tf.KernelFunc };
}

/** FusedConv2D over oneDNN, deferring to `prev` where oneDNN is not used. */
export function fusedConv2DConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: fusedConv2D(prev.kernelFunc) as tf.KernelFunc };
}
