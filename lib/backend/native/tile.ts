/**
 * Tile as memory copies on the wasm heap. The stock wasm kernel computes a
 * source index per output element (≈ 14 ms for one BatchNorm gradient's
 * [32, 32, 32, 16] broadcast); here each output block is filled by copying the
 * input's innermost run once and then doubling the filled prefix with
 * `copyWithin` (memmove), so the cost is close to writing the output once.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type KernelArgs, runtime } from "./runtime.ts";
import { byteOffsetOf } from "./wasm_ptr.ts";

/** Fills `heap[dst, dst + len·times)` with `times` copies of `heap[dst, dst + len)`. */
function replicate(heap: Uint8Array, dst: number, len: number, times: number): void {
  let filled = len;
  const total = len * times;
  while (filled < total) {
    const n = Math.min(filled, total - filled);
    heap.copyWithin(dst + filled, dst, dst + n);
    filled += n;
  }
}

/**
 * Writes `x` (shape `inShape`, at byte `src`) tiled by `reps` into the output
 * at byte `dst`; `bpe` is bytes per element.
 */
export function tileInto(
  heap: Uint8Array,
  src: number,
  dst: number,
  inShape: readonly number[],
  reps: readonly number[],
  bpe: number,
): void {
  const r = inShape.length;
  // Bytes of one index step along each axis, in the input and in the output.
  const inStride = new Array<number>(r), outStride = new Array<number>(r);
  let si = bpe, so = bpe;
  for (let d = r - 1; d >= 0; d--) {
    inStride[d] = si;
    outStride[d] = so;
    si *= inShape[d];
    so *= inShape[d] * reps[d];
  }
  const fill = (d: number, s: number, t: number): void => {
    if (d === r - 1) {
      const len = inShape[d] * bpe;
      heap.copyWithin(t, s, s + len);
      replicate(heap, t, len, reps[d]);
      return;
    }
    for (let i = 0; i < inShape[d]; i++) fill(d + 1, s + i * inStride[d], t + i * outStride[d]);
    replicate(heap, t, inShape[d] * outStride[d], reps[d]);
  };
  fill(0, src, dst);
}

function tile(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { reps } = args.attrs as unknown as tf.TileAttrs;
    if (!runtime.enabled || x.dtype === "string" || x.shape.length === 0 || reps.length !== x.shape.length) {
      return prev(args) as tf.TensorInfo;
    }
    const outShape = x.shape.map((s, i) => s * reps[i]);
    const out = backend.makeOutput(outShape, x.dtype);
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
    tileInto(
      heap,
      byteOffsetOf(backend, x),
      byteOffsetOf(backend, out),
      x.shape,
      reps,
      tf.util.bytesPerElement(x.dtype),
    );
    return out;
  };
}

/** Tile by memory copies, deferring to `prev` for strings or when native kernels are off. */
export function tileConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: tile(prev.kernelFunc) as tf.KernelFunc };
}
