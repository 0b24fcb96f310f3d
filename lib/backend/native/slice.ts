/**
 * Slice as a few long `copyWithin`s on the wasm heap. The stock wasm kernel
 * slices rank-4 tensors in JS with one typed-array view per innermost row; in
 * a ResNet the gradient of every zero-padding layer is such a slice. Here the
 * trailing axes that are taken whole merge with the innermost partial one into
 * a single contiguous run, copied once per outer index.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type KernelArgs, runtime } from "./runtime.ts";
import { byteOffsetOf } from "./wasm_ptr.ts";

/**
 * Copies the box `begin`/`size` of a row-major tensor of shape `shape` (at
 * byte `src`) to byte `dst`, densely; `bpe` is bytes per element.
 */
export function sliceInto(
  heap: Uint8Array,
  src: number,
  dst: number,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  bpe: number,
): void {
  const r = shape.length;
  const stride = new Array<number>(r);
  let s = bpe;
  for (let d = r - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
  // Axis `a` is the outermost one of the contiguous run: every axis after it is taken whole.
  let a = r - 1;
  while (a > 0 && size[a] === shape[a]) a--;
  const run = size[a] * stride[a];
  let base = src;
  for (let d = 0; d < r; d++) base += begin[d] * stride[d];
  const idx = new Array<number>(a).fill(0);
  let t = dst;
  for (;;) {
    let o = base;
    for (let d = 0; d < a; d++) o += idx[d] * stride[d];
    heap.copyWithin(t, o, o + run);
    t += run;
    let d = a - 1;
    while (d >= 0 && ++idx[d] === size[d]) idx[d--] = 0;
    if (d < 0) return;
  }
}

function slice(prev: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.SliceAttrs;
    if (!runtime.enabled || x.dtype === "string" || x.shape.length === 0) return prev(args) as tf.TensorInfo;
    const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin, attrs.size);
    const out = backend.makeOutput(size, x.dtype);
    if (tf.util.sizeFromShape(size) === 0) return out;
    const heap = (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
    sliceInto(
      heap,
      byteOffsetOf(backend, x),
      byteOffsetOf(backend, out),
      x.shape,
      begin,
      size,
      tf.util.bytesPerElement(x.dtype),
    );
    return out;
  };
}

/** Slice by memory copies, deferring to `prev` for strings or when native kernels are off. */
export function sliceConfig(prev: tf.KernelConfig): tf.KernelConfig {
  return { ...prev, kernelFunc: slice(prev.kernelFunc) as tf.KernelFunc };
}
