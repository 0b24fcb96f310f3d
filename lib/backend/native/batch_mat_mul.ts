/**
 * BatchMatMul and _FusedMatMul on oneDNN's matmul primitive for the wasm
 * backend. Transposed operands are described by strides, so no transpose pass
 * runs (the stock wasm kernel's transposed paths are naive loops); a batch of
 * one on either side broadcasts. _FusedMatMul's bias and activation become a
 * oneDNN bias and eltwise post-ops.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ARG, TAG } from "./dnnl_ffi.ts";
import { activationPostOp } from "./conv2d.ts";
import type { Dnnl } from "./dnnl.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import type { PlanSpec } from "./plan.ts";
import { type KernelArgs, nativeFor, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";

interface MatMulShape {
  /** Batch of a, of b, of the output. */
  ba: number;
  bb: number;
  batch: number;
  m: number;
  k: number;
  n: number;
  outShape: number[];
}

function matMulShape(a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean, tb: boolean): MatMulShape | undefined {
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  const ka = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = tb ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  if (ka !== kb) return undefined; // let the wasm kernel raise its error
  const ba = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const bb = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if (ba !== bb && ba !== 1 && bb !== 1) return undefined;
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return undefined;
  }
  return { ba, bb, batch: Math.max(ba, bb), m, k: ka, n, outShape: [...outer, m, n] };
}

function runMatMul(
  backend: BackendWasm,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  bias: tf.TensorInfo | undefined,
  ta: boolean,
  tb: boolean,
  post: [number, number, number][],
): tf.TensorInfo | undefined {
  if (a.dtype !== "float32" || b.dtype !== "float32") return undefined;
  const s = matMulShape(a, b, ta, tb);
  if (s === undefined || s.batch * s.m * s.n * s.k === 0) return undefined;
  if (bias !== undefined && (bias.dtype !== "float32" || tf.util.sizeFromShape(bias.shape) !== s.n)) return undefined;
  const macs = s.batch * s.m * s.n * s.k;
  const dnnl = nativeFor(macs);
  if (dnnl === undefined) return undefined;
  const { ba, bb, batch, m, k, n } = s;
  const key = `matmul|${ba},${bb},${m},${k},${n}|${ta},${tb}|${bias !== undefined}|${post.flat().join(",")}`;
  const out = backend.makeOutput(s.outShape, "float32");
  const ptrs = bias === undefined
    ? [tensorPtr(backend, a), tensorPtr(backend, b), tensorPtr(backend, out)]
    : [tensorPtr(backend, a), tensorPtr(backend, b), tensorPtr(backend, bias), tensorPtr(backend, out)];
  dnnl.run(key, threading(macs, false), (threads) => {
    // Row-major [batch, rows, cols]; a transposed operand is stored [batch, cols, rows].
    const src = dnnl.mdStrides([ba, m, k], ta ? [m * k, 1, m] : [m * k, k, 1]);
    const wei = dnnl.mdStrides([bb, k, n], tb ? [k * n, 1, k] : [k * n, n, 1]);
    const dst = dnnl.mdTag([batch, m, n], TAG.abc);
    const biasMd = bias === undefined ? null : dnnl.mdTag([1, 1, n], TAG.abc);
    return matMulSpec(dnnl, src, wei, biasMd, dst, post, threads);
  }, ptrs);
  return out;
}

/** The plan spec of a oneDNN matmul: operands `[src, weights, (bias,) dst]`, post-ops `post`. */
export function matMulSpec(
  dnnl: Dnnl,
  src: MemoryDesc,
  wei: MemoryDesc,
  biasMd: MemoryDesc | null,
  dst: MemoryDesc,
  post: [number, number, number][],
  threads: number,
): PlanSpec {
  return {
    init: (od) => dnnl.check(dnnl.lib.dnnl_matmul_desc_init(od, src, wei, biasMd, dst), "dnnl_matmul_desc_init"),
    operands: [
      { arg: ARG.src, user: src },
      { arg: ARG.weights, user: wei },
      ...(biasMd === null ? [] : [{ arg: ARG.bias, user: biasMd }]),
      { arg: ARG.dst, user: dst },
    ],
    eltwise: post,
    threads,
  };
}

function batchMatMul(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    return runMatMul(args.backend as BackendWasm, a, b, undefined, !!transposeA, !!transposeB, []) ??
      prev(args) as tf.TensorInfo;
  };
}

function fusedMatMul(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const attrs = args.attrs as unknown as tf._FusedMatMulAttrs;
    const post = activationPostOp(attrs.activation, attrs.leakyreluAlpha ?? 0);
    if (post !== undefined && preluActivationWeights == null) {
      const out = runMatMul(
        args.backend as BackendWasm,
        a,
        b,
        bias ?? undefined,
        !!attrs.transposeA,
        !!attrs.transposeB,
        post,
      );
      if (out !== undefined) return out;
    }
    return prev(args) as tf.TensorInfo;
  };
}

/** BatchMatMul over oneDNN, deferring to `prev` where oneDNN is not used. */
export function batchMatMulConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: batchMatMul(prev.kernelFunc) as tf.KernelFunc };
}

/** _FusedMatMul over oneDNN, deferring to `prev` where oneDNN is not used. */
export function fusedMatMulConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: fusedMatMul(prev.kernelFunc) as tf.KernelFunc };
}
