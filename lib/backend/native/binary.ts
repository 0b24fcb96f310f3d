/**
 * Broadcasting Add, Sub, Multiply and RealDiv on oneDNN's binary primitive.
 * The stock wasm kernels are fast when both operands have the same shape but
 * compute a broadcast index per element otherwise (≈ 3× slower), and a
 * BatchNorm's gradient multiplies and subtracts per-channel vectors into every
 * activation several times. Shapes are collapsed to the fewest axes that keep
 * the broadcast pattern ([32, 32, 32, 16] · [16] → [32768, 16] · [1, 16]).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { ALG, ARG, BINARY, TAG } from "./dnnl_ffi.ts";
import type { MemoryDesc } from "./memory_desc.ts";
import { type KernelArgs, nativeFor, threading } from "./runtime.ts";
import { tensorPtr } from "./wasm_ptr.ts";

/**
 * Collapses `full` (the output shape) and `bcast` (the broadcast operand's
 * shape, same rank, each axis equal or 1) into the fewest axes, merging
 * neighbours that are both broadcast or both whole.
 */
export function collapse(full: readonly number[], bcast: readonly number[]): [number[], number[]] {
  const f: number[] = [], b: number[] = [];
  let prev: boolean | undefined;
  for (let i = 0; i < full.length; i++) {
    if (full[i] === 1) continue;
    const isB = bcast[i] === 1;
    if (prev === isB) {
      f[f.length - 1] *= full[i];
      b[b.length - 1] *= bcast[i];
    } else {
      f.push(full[i]);
      b.push(bcast[i]);
      prev = isB;
    }
  }
  if (f.length === 0) return [[1], [1]];
  return [f, b];
}

function rowMajor(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

function padTo(shape: readonly number[], rank: number): number[] {
  return [...new Array(rank - shape.length).fill(1), ...shape];
}

/** Whether the wasm kernel is fast enough for same-shape operands (it is: memory-bound SIMD). */
const SAME_SHAPE_NATIVE = false;

function binary(alg: number, commutative: boolean, prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    let { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== "float32" || b.dtype !== "float32") return prev(args) as tf.TensorInfo;
    let outShape: number[];
    try {
      outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    } catch {
      return prev(args) as tf.TensorInfo;
    }
    const size = tf.util.sizeFromShape(outShape);
    const r = outShape.length;
    let pa = padTo(a.shape, r), pb = padTo(b.shape, r);
    const aFull = tf.util.arraysEqual(pa, outShape), bFull = tf.util.arraysEqual(pb, outShape);
    if (aFull && bFull && !SAME_SHAPE_NATIVE) return prev(args) as tf.TensorInfo;
    let negate = false;
    if (!aFull) {
      // Only the second operand may broadcast in oneDNN: swap, and for Sub negate (b − a = −(a − b) exactly).
      if (!bFull || !(commutative || alg === BINARY.sub)) return prev(args) as tf.TensorInfo;
      negate = alg === BINARY.sub;
      [a, b] = [b, a];
      [pa, pb] = [pb, pa];
    }
    const dnnl = size > 0 ? nativeFor(size) : undefined;
    if (dnnl === undefined) return prev(args) as tf.TensorInfo;
    const [full, bc] = collapse(outShape, pb);
    const out = backend.makeOutput(outShape, "float32");
    const ptrs = [tensorPtr(backend, a), tensorPtr(backend, b), tensorPtr(backend, out)];
    dnnl.run(`binary|${alg}|${full}|${bc}|${negate}`, threading(4 * size, true), (threads) => {
      let src0: MemoryDesc, src1: MemoryDesc;
      if (full.length === 2 && bc[0] === 1) {
        // x[R, C] · v[C] as channels-last [1, C, R], which oneDNN broadcasts per channel with full vectors.
        const [r, c] = full;
        src0 = dnnl.mdTag([1, c, 1, r], TAG.nhwc);
        src1 = dnnl.mdTag([1, c, 1, 1], TAG.nhwc);
      } else {
        src0 = dnnl.mdStrides(full, rowMajor(full));
        src1 = dnnl.mdStrides(bc, rowMajor(bc));
      }
      return {
        init: (od) => dnnl.check(dnnl.lib.dnnl_binary_desc_init(od, alg, src0, src1, src0), "dnnl_binary_desc_init"),
        operands: [{ arg: ARG.src, user: src0 }, { arg: ARG.src1, user: src1 }, { arg: ARG.dst, user: src0 }],
        eltwise: negate ? [[ALG.eltwiseLinear, -1, 0]] : [],
        threads,
      };
    }, ptrs);
    return out;
  };
}

function config(alg: number, commutative: boolean) {
  return (prev: tf.KernelConfig): tf.KernelConfig => ({
    ...prev,
    kernelFunc: binary(alg, commutative, prev.kernelFunc) as tf.KernelFunc,
  });
}

/** Broadcasting Add on oneDNN. */
export const addConfig = config(BINARY.add, true);
/** Broadcasting Sub on oneDNN. */
export const subConfig = config(BINARY.sub, false);
/** Broadcasting Multiply on oneDNN. */
export const multiplyConfig = config(BINARY.mul, true);
/** Broadcasting RealDiv on oneDNN (x / per-channel only). */
export const realDivConfig = config(BINARY.div, false);
