/**
 * Concat as copies on the wasm heap. The stock wasm kernel copies each
 * input's run per outer index with a fresh typed-array view and `set`: for
 * MeCo's h, whose input is x and ε concatenated along channels (runs of one
 * element), that was ≈ 70 ms for one [256, 28, 28, 1] pair. Here long runs
 * are `copyWithin`s on the heap's bytes and short ones a plain element loop
 * over one view, input by input.
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
  const aligned = [dst, ...parts.map((p) => p.offset)].every((o) => o % bpe === 0);
  const View = bpe === 4 ? Int32Array : Uint8Array;
  const view = aligned
    ? new View(heap.buffer as ArrayBuffer, heap.byteOffset, Math.floor(heap.byteLength / bpe))
    : undefined;
  let column = 0;
  for (const p of parts) {
    const run = p.inner * bpe;
    if (run >= LONG_RUN_BYTES || view === undefined) {
      for (let b = 0, s = p.offset, t = dst + column * bpe; b < outer; b++, s += run, t += total * bpe) {
        heap.copyWithin(t, s, s + run);
      }
    } else {
      // Bit copies through an integer view of the element width (float bits, NaNs included, are kept).
      const n = p.inner;
      const s0 = p.offset / bpe, t0 = dst / bpe + column;
      if (n === 1) {
        for (let b = 0; b < outer; b++) view[t0 + b * total] = view[s0 + b];
      } else if (n === 2) {
        for (let b = 0, s = s0, t = t0; b < outer; b++, s += 2, t += total) {
          view[t] = view[s];
          view[t + 1] = view[s + 1];
        }
      } else {
        for (let b = 0, s = s0, t = t0; b < outer; b++, s += n, t += total) {
          for (let k = 0; k < n; k++) view[t + k] = view[s + k];
        }
      }
    }
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
