/**
 * Sum and Mean over leading axes (e.g. the batch and spatial axes of an NHWC
 * activation, as in every BatchNorm and bias gradient) as one oneDNN matmul:
 * viewing x as [R, C], the result is ones[1, R] · x[R, C]. The stock wasm
 * kernels first transpose x so the reduced axes are innermost, a full extra
 * pass. Other reductions go to the stock kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, TAG } from "./dnnl_ffi.ts";
import type { Dnnl } from "./dnnl.ts";
import { type KernelArgs, nativeFor, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";
import { sized } from "./sized_ptr.ts";

let ones = new Float32Array(0);

/** A native pointer to at least `n` float32 ones (kept and grown across calls). */
export function onesPtr(n: number): Deno.PointerValue {
  if (ones.length < n) {
    // Large enough that V8 keeps the store off its heap, where it never moves.
    ones = new Float32Array(Math.max(4096, 2 ** Math.ceil(Math.log2(n)))).fill(1);
  }
  return sized(Deno.UnsafePointer.of(ones), ones.byteLength);
}

/** Number of leading axes reduced when `axes` are exactly 0..k−1, else −1. */
function leadingAxes(axis: number | number[], shape: number[]): number {
  const axes = tf.util.parseAxisParam(axis, shape).slice().sort((a, b) => a - b);
  for (let i = 0; i < axes.length; i++) if (axes[i] !== i) return -1;
  return axes.length;
}

/**
 * The sum (or `mean`) of the `r` rows of a row-major [r, c] matrix as ones[1, r] ·
 * x[r, c], on `ptrs` (`[ones (at least r), x, out]`), on the deterministic thread count.
 */
export function sumRows(dnnl: Dnnl, r: number, c: number, mean: boolean, ptrs: Deno.PointerValue[]): void {
  dnnl.run(`reduce|${r},${c}|${mean}`, threading(r * c, false), (threads) => {
    const src = dnnl.mdTag([1, r], TAG.ab);
    const wei = dnnl.mdTag([r, c], TAG.ab);
    const dst = dnnl.mdTag([1, c], TAG.ab);
    return {
      init: (od) => dnnl.check(dnnl.lib.dnnl_matmul_desc_init(od, src, wei, null, dst), "dnnl_matmul_desc_init"),
      operands: [{ arg: ARG.src, user: src }, { arg: ARG.weights, user: wei }, { arg: ARG.dst, user: dst }],
      eltwise: mean ? [[ALG.eltwiseLinear, 1 / r, 0]] : [],
      threads,
    };
  }, ptrs);
}

function reduceLeading(mean: boolean, prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const k = x.dtype === "float32" ? leadingAxes(axis, x.shape) : -1;
    if (k > 0) {
      const r = tf.util.sizeFromShape(x.shape.slice(0, k));
      const c = tf.util.sizeFromShape(x.shape.slice(k));
      const dnnl = r * c > 0 ? nativeFor(r * c) : undefined;
      if (dnnl !== undefined && r > 1) {
        let outShape = x.shape.slice(k);
        if (keepDims) outShape = [...new Array(k).fill(1), ...outShape];
        const out = backend.makeOutput(outShape, "float32");
        sumRows(dnnl, r, c, mean, [onesPtr(r), tensorPtr(backend, x), tensorPtr(backend, out)]);
        return out;
      }
    }
    return prev(args) as tf.TensorInfo;
  };
}

/** Sum over leading axes on oneDNN, deferring to `prev` otherwise. */
export function sumConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: reduceLeading(false, prev.kernelFunc) as tf.KernelFunc };
}

/** Mean over leading axes on oneDNN, deferring to `prev` otherwise. */
export function meanConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: reduceLeading(true, prev.kernelFunc) as tf.KernelFunc };
}
