/**
 * Helpers shared by the training kernels this project registers for the tfjs
 * `wasm` backend: views of tensors in the wasm heap, scratch tensors, and calls
 * into the backend's own (XNNPACK-accelerated) matrix multiply.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

/** A tensor as kernels see it: id, shape and dtype. */
export type TensorInfo = tf.TensorInfo;

/** Allocates a float32 tensor in the wasm heap (contents uninitialised). */
export function alloc(backend: BackendWasm, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, "float32");
}

/**
 * A Float32Array over the whole wasm heap, and {@linkcode offsetOf} gives a
 * tensor's element offset in it. Take it after every allocation of the kernel:
 * growing the heap detaches older views.
 */
export function heapF32(backend: BackendWasm): Float32Array {
  const wasm = backend.wasm as unknown as { HEAPU8: Uint8Array };
  return new Float32Array(wasm.HEAPU8.buffer);
}

/** Element offset (in float32 units) of a tensor in {@linkcode heapF32}. */
export function offsetOf(backend: BackendWasm, t: TensorInfo): number {
  const rec = backend.dataIdMap.get(t.dataId);
  if (rec === undefined) throw new Error("tensor is not in the wasm backend");
  return (rec.memoryOffset as number) >>> 2;
}

/** Releases a scratch tensor made by {@linkcode alloc} or a kernel call. */
export function free(backend: BackendWasm, t: TensorInfo): void {
  backend.disposeData(t.dataId);
}

let batchMatMulFunc: tf.KernelFunc | undefined;

/**
 * `a [1, m, k] · b [1, k, n] → [1, m, n]` through the wasm backend's
 * BatchMatMul kernel, whose untransposed path is XNNPACK's GEMM. (Its
 * transposed paths are naive loops, about 10× slower, so callers lay their
 * operands out untransposed.)
 */
export function matmul(
  backend: BackendWasm,
  a: TensorInfo,
  b: TensorInfo,
): TensorInfo {
  if (batchMatMulFunc === undefined) {
    const k = tf.getKernel("BatchMatMul", "wasm");
    if (k === undefined) throw new Error("wasm BatchMatMul kernel is not registered");
    batchMatMulFunc = k.kernelFunc;
  }
  return batchMatMulFunc({
    inputs: { a, b },
    backend,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
}

/** Writes the transpose of the row-major `rows × cols` matrix `src` into `dst`. */
export function transpose2d(
  src: Float32Array,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  rows: number,
  cols: number,
): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        let s = srcOff + r * cols + c0;
        let d = dstOff + c0 * rows + r;
        for (let c = c0; c < c1; c++) {
          dst[d] = src[s++];
          d += rows;
        }
      }
    }
  }
}
