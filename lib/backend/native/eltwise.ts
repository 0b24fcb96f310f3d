/**
 * Activations and their gradients on oneDNN's eltwise primitives (forward:
 * LeakyRelu, Relu6, Tanh, Sigmoid; the stock Relu is as fast). The stock
 * wasm LeakyRelu and Tanh are scalar loops (16 ms for a [256, 28, 28, 16]
 * LeakyReLU of the DFME generator), and tfjs differentiates ReLU, LeakyReLU,
 * tanh and sigmoid with two or three full passes (step and product, or
 * greater, select and product); oneDNN's backward primitive takes one:
 *
 *   ReLU / LeakyReLU(α):  dx = dy if x > 0 else α·dy   (from x)
 *   tanh:                 dx = dy · (1 − y²)          (from the output y)
 *   sigmoid:              dx = dy · y · (1 − y)       (from the output y)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, PROP, TAG } from "./dnnl_ffi.ts";
import { type KernelArgs, nativeFor, runtime, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";
import type { PlanSpec } from "./plan.ts";
import { overrideGradient } from "./gradients.ts";

/** oneDNN algorithms of the backward passes (`*_use_dst_for_bwd` read the forward output). */
export const BWD = { relu: ALG.eltwiseRelu, tanhFromY: 0x101, sigmoidFromY: 0x104 } as const;

/** Name of the kernel computing an activation's input gradient (inputs dy and data; attrs alg, alpha). */
export const ELTWISE_GRAD = "MecoEltwiseGrad";

/**
 * Runs an eltwise primitive over `size` floats on `ptrs` (one per `args`
 * entry): element halves with the helper thread on two cores, else the
 * adaptive thread count. `init` fills the op descriptor, `hint` the forward
 * one of a backward pass.
 */
export function runEltwise(
  key: string,
  size: number,
  ptrs: Deno.PointerValue[],
  init: (od: Uint8Array<ArrayBuffer>, md: Uint8Array<ArrayBuffer>) => number,
  hint: ((od: Uint8Array<ArrayBuffer>, md: Uint8Array<ArrayBuffer>) => number) | undefined,
  args: number[],
): void {
  const dnnl = runtime.dnnl!;
  const spec = (n: number, threads: number): PlanSpec => {
    const md = dnnl.mdTag([n], TAG.a);
    return {
      init: (od) => dnnl.check(init(od, md), "dnnl_eltwise_*_desc_init"),
      hint: hint === undefined ? undefined : (od) => dnnl.check(hint(od, md), "dnnl_eltwise_forward_desc_init"),
      operands: args.map((arg) => ({ arg, user: md })),
      threads,
    };
  };
  const t = threading(4 * size, true);
  if (t === "adaptive" && size >= 32 && dnnl.splitInvariant) {
    dnnl.runBatchSplit(`${key}|${size}`, size, (n) => spec(n, 1), ptrs, args.map(() => 4), 16);
  } else {
    dnnl.run(`${key}|${size}`, t, (threads) => spec(size, threads), ptrs);
  }
}

function forward(alg: number, alphaOf: (attrs: tf.NamedAttrMap | undefined) => number, beta: number) {
  return (prev: tf.KernelFunc) => (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const size = tf.util.sizeFromShape(x.shape);
    const dnnl = x.dtype === "float32" && size > 0 ? nativeFor(size) : undefined;
    if (dnnl === undefined) return prev(args) as tf.TensorInfo;
    const alpha = alphaOf(args.attrs);
    const out = backend.makeOutput(x.shape, "float32");
    runEltwise(
      `eltwise_fwd|${alg},${alpha},${beta}`,
      size,
      [tensorPtr(backend, x), tensorPtr(backend, out)],
      (od, md) => dnnl.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardInference, alg, md, alpha, beta),
      undefined,
      [ARG.src, ARG.dst],
    );
    return out;
  };
}

function config(make: (prev: tf.KernelFunc) => (args: KernelArgs) => tf.TensorInfo) {
  return (prev: tf.KernelConfig): tf.KernelConfig => ({ ...prev, kernelFunc: make(prev.kernelFunc) as tf.KernelFunc });
}

/** LeakyRelu on oneDNN. */
export const leakyReluConfig = config(
  forward(ALG.eltwiseRelu, (a) => (a as unknown as tf.LeakyReluAttrs).alpha, 0),
);
/** Relu6 on oneDNN (clip to [0, 6]). */
export const relu6Config = config(forward(ALG.eltwiseClipV2, () => 0, 6));
/** Tanh on oneDNN. */
export const tanhConfig = config(forward(ALG.eltwiseTanh, () => 0, 0));
/** Sigmoid on oneDNN. */
export const sigmoidConfig = config(forward(ALG.eltwiseLogistic, () => 0, 0));

function eltwiseGrad(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, data } = args.inputs as { dy: tf.TensorInfo; data: tf.TensorInfo };
  const { alg, alpha } = args.attrs as unknown as { alg: number; alpha: number };
  const size = tf.util.sizeFromShape(data.shape);
  const dnnl = runtime.dnnl!;
  const dx = backend.makeOutput(data.shape, "float32");
  const fromY = alg !== BWD.relu;
  runEltwise(
    `eltwise_bwd|${alg},${alpha}`,
    size,
    [tensorPtr(backend, data), tensorPtr(backend, dy), tensorPtr(backend, dx)],
    (od, md) => dnnl.lib.dnnl_eltwise_backward_desc_init(od, alg, md, md, alpha, 0),
    (od, md) => dnnl.lib.dnnl_eltwise_forward_desc_init(od, PROP.forwardTraining, alg, md, alpha, 0),
    [fromY ? ARG.dst : ARG.src, ARG.diffDst, ARG.diffSrc],
  );
  return dx;
}

/** The kernel config of {@linkcode ELTWISE_GRAD} for wasm. */
export const eltwiseGradConfig: tf.KernelConfig = {
  kernelName: ELTWISE_GRAD,
  backendName: "wasm",
  kernelFunc: eltwiseGrad as tf.KernelFunc,
};

function gradient(alg: number, alphaOf: (attrs: tf.NamedAttrMap) => number) {
  return (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [data] = saved;
    if (runtime.dnnl === undefined || data === undefined || data.dtype !== "float32" || dy.dtype !== "float32") {
      return undefined;
    }
    if (data.size === 0 || !tf.util.arraysEqual(data.shape, dy.shape)) return undefined;
    const attrsOut = { alg, alpha: alphaOf(attrs) } as unknown as tf.NamedAttrMap;
    return { x: () => tf.engine().runKernel(ELTWISE_GRAD, { dy, data }, attrsOut) as tf.Tensor };
  };
}

/** Installs the one-pass gradients of Relu, LeakyRelu, Tanh and Sigmoid (idempotent). */
export function registerEltwiseGradients(): void {
  if (tf.getKernel(ELTWISE_GRAD, "wasm") === undefined) tf.registerKernel(eltwiseGradConfig);
  overrideGradient("Relu", gradient(BWD.relu, () => 0));
  overrideGradient("LeakyRelu", gradient(BWD.relu, (a) => (a as unknown as tf.LeakyReluAttrs).alpha));
  overrideGradient("Tanh", gradient(BWD.tanhFromY, () => 0));
  overrideGradient("Sigmoid", gradient(BWD.sigmoidFromY, () => 0));
}
