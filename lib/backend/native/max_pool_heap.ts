/**
 * Max pooling (NHWC) for the compiled training step as plain loops over the
 * wasm heap, with the index of each window's maximum kept for the backward
 * pass. For few channels oneDNN's vectorised pooling has little to vectorise
 * over: on LeNet-5's first pooling ([128, 28, 28, 6], 2×2, stride 2) its
 * AVX2 kernel is several times slower than these loops ({@linkcode poolLoops}).
 * Ties go to the first maximum of a window (row by row), as in the cpu backend;
 * padding cells are never a window's maximum, as in tfjs and oneDNN.
 *
 * @module
 */
import type { ConvGeometry } from "./conv_geometry.ts";
import type { Dnnl } from "./dnnl.ts";

/** A 2-D max pooling's geometry (NHWC): the parts of a convolution's geometry it reads (dilation 1). */
export type PoolGeometry = Pick<
  ConvGeometry,
  "n" | "h" | "w" | "c" | "oh" | "ow" | "fh" | "fw" | "sh" | "sw" | "pt" | "pl"
>;

/**
 * Whether a max pooling of `channels` channels runs as these loops (in the
 * compiled step and in MaxPoolGrad): below AVX-512 and with fewer than 16
 * channels. oneDNN's kernels vectorise over channels; with few of them its
 * AVX2 kernel is several times slower than the loops, its AVX-512 kernel
 * faster (LeNet-5's first pooling forward: AVX2 ≈ 7–10 ms, AVX-512 ≈ 1.2 ms,
 * loops ≈ 3.4 ms; the data-dependent branch of each comparison bounds them).
 */
export function poolLoops(dnnl: Dnnl, channels: number): boolean {
  return channels < 16 && !dnnl.avx512;
}

/**
 * `dst` = maxpool(`src`) and `idx`[i] = the index in the input of output i's
 * maximum; `x`, `y`, `at` are element offsets into `src`, `dst`, `idx` (views
 * of the wasm heap, or arrays of their own).
 */
export function maxPoolForward(
  src: Float32Array,
  x: number,
  dst: Float32Array,
  y: number,
  idx: Int32Array,
  at: number,
  g: PoolGeometry,
): void {
  const { n, h, w, c, oh, ow, fh, fw, sh, sw, pt, pl } = g;
  const window = new Int32Array(fh * fw); // the window's pixels inside the input, row by row
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const h0 = Math.max(0, i * sh - pt), h1 = Math.min(h, i * sh - pt + fh);
      for (let j = 0; j < ow; j++, o += c) {
        const w0 = Math.max(0, j * sw - pl), w1 = Math.min(w, j * sw - pl + fw);
        let m = 0;
        for (let r = h0; r < h1; r++) for (let s = w0; s < w1; s++) window[m++] = ((b * h + r) * w + s) * c;
        for (let k = 0; k < c; k++) {
          let best = src[x + window[0] + k], arg = window[0] + k;
          for (let t = 1; t < m; t++) {
            const p = window[t] + k, v = src[x + p];
            if (v > best) {
              best = v;
              arg = p;
            }
          }
          dst[y + o + k] = best;
          idx[at + o + k] = arg;
        }
      }
    }
  }
}

/** `dst` = the input's gradient: each of `src`'s output gradients routed to its window's maximum (`idx` of the forward pass). */
export function maxPoolBackward(
  src: Float32Array,
  dy: number,
  dst: Float32Array,
  dx: number,
  idx: Int32Array,
  at: number,
  g: PoolGeometry,
): void {
  dst.fill(0, dx, dx + g.n * g.h * g.w * g.c);
  const outs = g.n * g.oh * g.ow * g.c;
  for (let o = 0; o < outs; o++) dst[dx + idx[at + o]] += src[dy + o];
}
