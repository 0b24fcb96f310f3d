/**
 * Resizing whole datasets on the host, before any tensor exists: bilinear
 * interpolation with PyTorch's `align_corners=False` convention (the pixel
 * grid's centres are aligned; no antialiasing), so a 28×28 Fashion-MNIST
 * image becomes the 32×32 input of a CIFAR-scale model, or an 84×84
 * MiniImageNet image the size a config asks for.
 *
 * @module
 */

import type { Dataset } from "./dataset.ts";

/**
 * Resizes one HWC image (`src`, values of any range) to `outH`×`outW`,
 * bilinearly (PyTorch `F.interpolate(mode="bilinear", align_corners=False)`).
 *
 * @example
 * ```ts
 * import { resizeImage } from "./resize.ts";
 * const out = resizeImage(new Float32Array([0, 1, 2, 3]), 2, 2, 1, 4, 4); // 16 values
 * ```
 */
export function resizeImage(
  src: Float32Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  out: Float32Array = new Float32Array(outH * outW * c),
): Float32Array {
  for (
    const [name, v] of [["height", h], ["width", w], ["channels", c], ["output height", outH], [
      "output width",
      outW,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`resizeImage: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (src.length !== h * w * c) {
    throw new RangeError(`resizeImage: expected ${h}×${w}×${c} = ${h * w * c} values, got ${src.length}`);
  }
  if (out.length !== outH * outW * c) {
    throw new RangeError(`resizeImage: output buffer holds ${out.length} values, need ${outH * outW * c}`);
  }
  const axis = (inSize: number, outSize: number) => {
    const lo = new Int32Array(outSize), hi = new Int32Array(outSize), t = new Float32Array(outSize);
    const scale = inSize / outSize;
    for (let o = 0; o < outSize; o++) {
      const p = Math.max(0, (o + 0.5) * scale - 0.5);
      const i0 = Math.min(Math.floor(p), inSize - 1);
      lo[o] = i0;
      hi[o] = Math.min(i0 + 1, inSize - 1);
      t[o] = p - i0;
    }
    return { lo, hi, t };
  };
  const ys = axis(h, outH), xs = axis(w, outW);
  for (let oy = 0; oy < outH; oy++) {
    const r0 = ys.lo[oy] * w, r1 = ys.hi[oy] * w, ty = ys.t[oy];
    for (let ox = 0; ox < outW; ox++) {
      const c0 = xs.lo[ox], c1 = xs.hi[ox], tx = xs.t[ox];
      const o = (oy * outW + ox) * c;
      for (let ch = 0; ch < c; ch++) {
        const a = src[(r0 + c0) * c + ch], b = src[(r0 + c1) * c + ch];
        const d = src[(r1 + c0) * c + ch], e = src[(r1 + c1) * c + ch];
        const top = a + (b - a) * tx, bottom = d + (e - d) * tx;
        out[o + ch] = top + (bottom - top) * ty;
      }
    }
  }
  return out;
}

/**
 * A copy of `ds` with every image resized to `size`×`size` (bilinear, see
 * {@linkcode resizeImage}); `ds` itself is returned when it already has that
 * size.
 *
 * @example
 * ```ts ignore
 * const fm32 = resizeDataset(await loadDataset("fashion_mnist", "train"), 32); // 32×32×1
 * ```
 */
export function resizeDataset(ds: Dataset, size: number): Dataset {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`resizeDataset: size must be a positive integer, got ${size}`);
  }
  if (ds.height === size && ds.width === size) return ds;
  const per = ds.height * ds.width * ds.channels;
  const outPer = size * size * ds.channels;
  const images = new Float32Array(ds.n * outPer);
  for (let i = 0; i < ds.n; i++) {
    resizeImage(
      ds.images.subarray(i * per, (i + 1) * per),
      ds.height,
      ds.width,
      ds.channels,
      size,
      size,
      images.subarray(i * outPer, (i + 1) * outPer),
    );
  }
  return { ...ds, images, height: size, width: size };
}
