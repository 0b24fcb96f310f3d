/**
 * Max pooling (NHWC) on the wasm heap for the compiled training step and
 * MaxPoolGrad, with the index of each window's maximum kept for the backward
 * pass: WebAssembly SIMD over groups of four channels (max_pool_simd.wat) where
 * the module binds to the heap and there are at least four channels, else
 * plain loops. For few channels oneDNN's vectorised pooling has little to
 * vectorise over: on LeNet-5's first pooling ([128, 28, 28, 6], 2×2, stride 2)
 * its AVX2 kernel is several times slower than the loops, and its AVX-512
 * kernel slower than the SIMD pass ({@linkcode poolOnHeap}).
 * Ties go to the first maximum of a window (row by row), as in the cpu backend;
 * padding cells are never a window's maximum, as in tfjs and oneDNN.
 *
 * @module
 */
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { ConvGeometry } from "./conv_geometry.ts";
import type { Dnnl } from "./dnnl.ts";
import { MAX_POOL_SIMD_WASM } from "./max_pool_simd_wasm.ts";
import { bindWasmSimd } from "./wasm_simd.ts";
import { heapF32 } from "../wasm_kernels/heap.ts";

/** A 2-D max pooling's geometry (NHWC): the parts of a convolution's geometry it reads (dilation 1). */
export type PoolGeometry = Pick<
  ConvGeometry,
  "n" | "h" | "w" | "c" | "oh" | "ow" | "fh" | "fw" | "sh" | "sw" | "pt" | "pl"
>;

/** max_pool_simd.wat's exports; every address is in bytes. */
export interface MaxPoolSimdExports {
  maxpool(
    src: number,
    dst: number,
    idx: number,
    n: number,
    h: number,
    w: number,
    c: number,
    oh: number,
    ow: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    pt: number,
    pl: number,
  ): void;
  maxpool_grad(dy: number, dx: number, idx: number, nin: number, nout: number): void;
}

/** The most channels for which the SIMD pass replaces oneDNN's pooling where oneDNN has AVX-512 (see PERF.md). */
export const SIMD_POOL_MAX_CHANNELS = 16;

let simdEnabled = true;

/** Switches the SIMD pass off (loops, or oneDNN where it is faster than the loops) or back on; for A/B and tests. */
export function setMaxPoolSimd(on: boolean): void {
  simdEnabled = on;
}

/** max_pool_simd.wat bound to `backend`'s heap, or null (switched off, or a shared heap). */
export function maxPoolSimd(backend: BackendWasm): MaxPoolSimdExports | null {
  return simdEnabled ? bindWasmSimd<MaxPoolSimdExports>("max_pool_simd", MAX_POOL_SIMD_WASM, backend) : null;
}

/**
 * Whether a max pooling of `channels` channels runs on the heap ({@linkcode heapMaxPool}, in the compiled step and
 * in MaxPoolGrad) rather than on oneDNN: with 4 to {@linkcode SIMD_POOL_MAX_CHANNELS} channels where the SIMD pass
 * binds, and below AVX-512 with fewer than 16 channels. oneDNN's kernels vectorise over channels; with few of them
 * its AVX2 kernel is several times slower than even the loops (LeNet-5's first pooling forward: AVX2 ≈ 7–10 ms,
 * loops ≈ 3.4 ms, AVX-512 ≈ 1.2 ms, SIMD pass ≈ 0.45 ms under load).
 */
export function poolOnHeap(dnnl: Dnnl, backend: BackendWasm, channels: number): boolean {
  if (channels >= 4 && channels <= SIMD_POOL_MAX_CHANNELS && maxPoolSimd(backend) !== null) return true;
  return channels < 16 && !dnnl.avx512;
}

/** A max pooling of one geometry on the heap; offsets are byte offsets of float32 (`idx`: int32) buffers. */
export interface HeapMaxPool {
  /** `y` = maxpool(`x`); `idx` = the maxima's element indices into `x`. */
  forward(x: number, y: number, idx: number): void;
  /** `dx` = the input's gradient from `dy` and the forward pass's `idx`. */
  backward(dy: number, dx: number, idx: number): void;
}

/** The max pooling of geometry `g` on `backend`'s heap: the SIMD pass with at least four channels, else the loops. */
export function heapMaxPool(backend: BackendWasm, g: PoolGeometry): HeapMaxPool {
  const k = g.c >= 4 && g.n * g.oh * g.ow > 0 ? maxPoolSimd(backend) : null;
  const nin = g.n * g.h * g.w * g.c, nout = g.n * g.oh * g.ow * g.c;
  if (k !== null) {
    return {
      forward: (x, y, idx) => k.maxpool(x, y, idx, g.n, g.h, g.w, g.c, g.oh, g.ow, g.fh, g.fw, g.sh, g.sw, g.pt, g.pl),
      backward: (dy, dx, idx) => k.maxpool_grad(dy, dx, idx, nin, nout),
    };
  }
  const views = () => {
    const f32 = heapF32(backend);
    return [f32, new Int32Array(f32.buffer)] as const;
  };
  return {
    forward: (x, y, idx) => {
      const [f32, i32] = views();
      maxPoolForward(f32, x >>> 2, f32, y >>> 2, i32, idx >>> 2, g);
    },
    backward: (dy, dx, idx) => {
      const [f32, i32] = views();
      maxPoolBackward(f32, dy >>> 2, f32, dx >>> 2, i32, idx >>> 2, g);
    },
  };
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
