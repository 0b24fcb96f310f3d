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
import type { Dnnl, PlanSpec } from "./dnnl.ts";
import {
  type ConvDescs,
  convDescs,
  type ConvGeometry,
  convGeometry,
  convMacs,
  geometryKey,
  isEmpty,
} from "./conv_geometry.ts";
import { type KernelArgs, nativeFor, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";

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

function backwardWeightsSpec(d: Dnnl, g: ConvGeometry, threads: number): PlanSpec {
  {
    const m = convDescs(d, g);
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
        { arg: ARG.src, user: m.src },
        { arg: ARG.diffDst, user: m.dst },
        { arg: ARG.diffWeights, user: m.weightsUser, query: QUERY.diffWeightsMd, out: true },
      ],
      threads,
    };
  }
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
        const ptrs = [tensorPtr(backend, dy), tensorPtr(backend, filter), tensorPtr(backend, dx)];
        d.run(`conv_bwd_data|${geometryKey(g)}`, threading(macs, true), (t) => backwardDataSpec(d, g, t), ptrs);
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
        const ptrs = [tensorPtr(backend, x), tensorPtr(backend, dy), tensorPtr(backend, dw)];
        d.run(`conv_bwd_weights|${geometryKey(g)}`, threading(macs, false), (t) => backwardWeightsSpec(d, g, t), ptrs);
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
