/**
 * Concat and SplitV (Concat's gradient) as copies on the wasm heap. The stock
 * wasm Concat copies each input's run per outer index through a fresh
 * typed-array view and `set`, and the stock SplitV slices each output with the
 * stock Slice kernel: for MeCo's h, whose input is x and ε concatenated along
 * channels (runs of one element), that was ≈ 70 ms for one [256, 28, 28, 1]
 * pair forward and ≈ 40 ms for the split of its gradient in a training step
 * (batch 128). Here long runs are `copyWithin`s on the heap's bytes and short
 * ones a plain element loop over one view, part by part.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type KernelArgs, runtime } from "./runtime.ts";
import { byteOffsetOf } from "./wasm_ptr.ts";

/** Runs of at least this many bytes are copied with `copyWithin`; shorter ones element by element. */
const LONG_RUN_BYTES = 64;

/** An input of {@linkcode concatInto}: its byte offset and the elements of one run (its size from the axis on). */
export interface ConcatPart {
  /** Byte offset on the heap. */
  offset: number;
  /** Elements per outer index. */
  inner: number;
}

/**
 * Copies `count` runs of `n` elements of `bpe` bytes (1 or 4) from byte `src` to byte `dst`, run `b` starting at
 * element `b·srcStride` of the source and `b·dstStride` of the destination. Long runs are `copyWithin`s; short ones
 * bit copies through an integer view of the element width (float bits, NaNs included, are kept).
 */
function copyRuns(
  heap: Uint8Array,
  src: number,
  srcStride: number,
  dst: number,
  dstStride: number,
  n: number,
  count: number,
  bpe: number,
): void {
  const run = n * bpe;
  if (run >= LONG_RUN_BYTES || src % bpe !== 0 || dst % bpe !== 0) {
    for (let b = 0, s = src, t = dst; b < count; b++, s += srcStride * bpe, t += dstStride * bpe) {
      heap.copyWithin(t, s, s + run);
    }
    return;
  }
  const View = bpe === 4 ? Int32Array : Uint8Array;
  const view = new View(heap.buffer as ArrayBuffer, heap.byteOffset, Math.floor(heap.byteLength / bpe));
  const s0 = src / bpe, t0 = dst / bpe;
  if (n === 1) {
    for (let b = 0; b < count; b++) view[t0 + b * dstStride] = view[s0 + b * srcStride];
  } else if (n === 2) {
    for (let b = 0, s = s0, t = t0; b < count; b++, s += srcStride, t += dstStride) {
      view[t] = view[s];
      view[t + 1] = view[s + 1];
    }
  } else {
    for (let b = 0, s = s0, t = t0; b < count; b++, s += srcStride, t += dstStride) {
      for (let k = 0; k < n; k++) view[t + k] = view[s + k];
    }
  }
}

/**
 * Writes the concatenation of `parts` (each `outer` runs of `inner` elements of `bpe` bytes: 1 or 4) at
 * byte `dst`: output row `b` is part 0's run `b`, then part 1's, and so on.
 */
export function concatInto(
  heap: Uint8Array,
  parts: readonly ConcatPart[],
  dst: number,
  outer: number,
  bpe: number,
): void {
  const total = parts.reduce((s, p) => s + p.inner, 0);
  let column = 0;
  for (const p of parts) {
    copyRuns(heap, p.offset, p.inner, dst + column * bpe, total, p.inner, outer, bpe);
    column += p.inner;
  }
}

/** The inverse of {@linkcode concatInto}: row `b` of the source at byte `src`, cut into the runs of `parts`. */
export function splitInto(
  heap: Uint8Array,
  src: number,
  parts: readonly ConcatPart[],
  outer: number,
  bpe: number,
): void {
  const total = parts.reduce((s, p) => s + p.inner, 0);
  let column = 0;
  for (const p of parts) {
    copyRuns(heap, src + column * bpe, total, p.offset, p.inner, p.inner, outer, bpe);
    column += p.inner;
  }
}

function concat(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const { axis: axisAttr } = args.attrs as unknown as tf.ConcatAttrs;
    const dtype = inputs[0]?.dtype;
    if (!runtime.enabled || dtype === undefined || dtype === "string" || dtype === "complex64") {
      return prev(args) as tf.TensorInfo;
    }
    const axis = tf.util.parseAxisParam(axisAttr, inputs[0].shape)[0];
    const shapes = inputs.map((t) => t.shape);
    tf.backend_util.assertParamsConsistent(shapes, axis);
    const outShape = tf.backend_util.computeOutShape(shapes, axis);
    const nonEmpty = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    // One input left (or none): the stock kernel shares its data.
    if (nonEmpty.length <= 1) return prev(args) as tf.TensorInfo;
    const out = backend.makeOutput(outShape, dtype);
    const outer = tf.util.sizeFromShape(outShape.slice(0, axis));
    const parts = nonEmpty.map((t) => ({
      offset: byteOffsetOf(backend, t),
      inner: tf.util.sizeFromShape(t.shape.slice(axis)),
    }));
    const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
    concatInto(heap, parts, byteOffsetOf(backend, out), outer, tf.util.bytesPerElement(dtype));
    return out;
  };
}

/** Concat by heap copies, deferring to `prev` for strings, complex numbers, one input, or when native kernels are off. */
export function concatConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: concat(prev.kernelFunc) as tf.KernelFunc };
}

function splitV(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { numOrSizeSplits, axis: axisAttr } = args.attrs as unknown as tf.SplitVAttrs;
    if (!runtime.enabled || x.dtype === "string" || x.dtype === "complex64" || x.shape.length === 0) {
      return prev(args) as tf.TensorInfo[];
    }
    const axis = tf.util.parseAxisParam(axisAttr, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, axis);
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axis));
    const after = tf.util.sizeFromShape(x.shape.slice(axis + 1));
    const outs = sizes.map((n) => backend.makeOutput(x.shape.map((d, i) => (i === axis ? n : d)), x.dtype));
    if (tf.util.sizeFromShape(x.shape) > 0) {
      const parts = outs.map((o, i) => ({ offset: byteOffsetOf(backend, o), inner: sizes[i] * after }))
        .filter((p) => p.inner > 0);
      const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
      // Empty outputs take no columns; the others are cut in order.
      splitInto(heap, byteOffsetOf(backend, x), parts, outer, tf.util.bytesPerElement(x.dtype));
    }
    return outs;
  };
}

/** SplitV (also Concat's gradient) by heap copies, deferring to `prev` for strings, complex numbers, scalars, or when native kernels are off. */
export function splitVConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: splitV(prev.kernelFunc) as unknown as tf.KernelFunc };
}
