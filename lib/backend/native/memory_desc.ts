/**
 * oneDNN memory descriptors: `dnnl_memory_desc_t` structs in JS-owned byte
 * buffers, made from logical dims and a format tag or element strides (all
 * float32), and the bytes a buffer of each layout must hold.
 *
 * @module
 */
import { checkStatus, type DnnlLib, F32, MAX_NDIMS, MD_BYTES } from "./dnnl_ffi.ts";

/** A memory descriptor: a `dnnl_memory_desc_t` in a JS buffer. */
export type MemoryDesc = Uint8Array<ArrayBuffer>;

/** Bytes reached by each memory descriptor made by {@linkcode memoryDescByStrides}. */
const stridedExtent = new WeakMap<MemoryDesc, number>();

/** A `dnnl_dims_t` holding `xs`. */
export function dnnlDims(xs: readonly number[]): BigInt64Array<ArrayBuffer> {
  const dims = new BigInt64Array(MAX_NDIMS);
  for (let i = 0; i < xs.length; i++) dims[i] = BigInt(xs[i]);
  return dims;
}

/** A float32 memory descriptor with logical `dims` and format tag `tag`. */
export function memoryDescByTag(lib: DnnlLib, dims: readonly number[], tag: number): MemoryDesc {
  const md = new Uint8Array(MD_BYTES);
  checkStatus(
    lib.dnnl_memory_desc_init_by_tag(md, dims.length, dnnlDims(dims), F32, tag),
    "dnnl_memory_desc_init_by_tag",
  );
  return md;
}

/** A float32 memory descriptor with logical `dims` and element `strides`. */
export function memoryDescByStrides(lib: DnnlLib, dims: readonly number[], strides: readonly number[]): MemoryDesc {
  const md = new Uint8Array(MD_BYTES);
  checkStatus(
    lib.dnnl_memory_desc_init_by_strides(md, dims.length, dnnlDims(dims), F32, dnnlDims(strides)),
    "dnnl_memory_desc_init_by_strides",
  );
  // The bytes it reaches from its first element: oneDNN's size counts the whole span of the outermost stride,
  // more than a window into a larger buffer reaches.
  const last = dims.reduce((acc, n, i) => acc + (n - 1) * strides[i], 0);
  stridedExtent.set(md, dims.some((n) => n === 0) ? 0 : 4 * (last + 1));
  return md;
}

/** Bytes a buffer of layout `md` must hold: the reach of a strided layout, else oneDNN's size. */
export function memoryDescBytes(lib: DnnlLib, md: MemoryDesc): number {
  return stridedExtent.get(md) ?? Number(lib.dnnl_memory_desc_get_size(md));
}
