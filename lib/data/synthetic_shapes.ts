/**
 * Synthetic "random shapes" images, the data-free proxy data of DFMS
 * (Sanyal et al., CVPR 2022): each image is a canvas of a random background
 * colour with a few random shapes (ellipses, rectangles, triangles) of random
 * colours, blurred, then reduced to the target size. Generated in code from a
 * seed, so every run sees the same proxy set without downloading anything.
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { mulberry32, type Rng } from "./rng.ts";

/** Options of {@linkcode syntheticShapes}. */
export interface SyntheticShapesOptions {
  /** Number of images. */
  n: number;
  /** Image height. */
  height: number;
  /** Image width. */
  width: number;
  /** Channels (1: grey levels, 3: RGB colours). */
  channels: number;
  /** Seed of every random draw. */
  seed: number;
  /** Canvas scale: shapes are drawn at `scale ×` the image size and reduced by averaging (default 2). */
  scale?: number;
  /** Most shapes per image (at least 1; default 3). */
  maxShapes?: number;
}

type Shape = (u: number, v: number) => boolean;

function randomShape(rng: Rng, size: number): Shape {
  const cx = rng() * size, cy = rng() * size;
  const r = size * (0.1 + 0.35 * rng());
  const kind = Math.floor(rng() * 3);
  if (kind === 0) {
    const rx = r, ry = r * (0.4 + 0.6 * rng()), a = rng() * Math.PI;
    const ca = Math.cos(a), sa = Math.sin(a);
    return (u, v) => {
      const du = u - cx, dv = v - cy;
      const p = (du * ca + dv * sa) / rx, q = (-du * sa + dv * ca) / ry;
      return p * p + q * q <= 1;
    };
  }
  if (kind === 1) {
    const hw = r, hh = r * (0.3 + 0.7 * rng()), a = rng() * Math.PI;
    const ca = Math.cos(a), sa = Math.sin(a);
    return (u, v) => {
      const du = u - cx, dv = v - cy;
      return Math.abs(du * ca + dv * sa) <= hw && Math.abs(-du * sa + dv * ca) <= hh;
    };
  }
  const pts = [0, 1, 2].map(() => {
    const a = rng() * 2 * Math.PI;
    return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
  });
  const side = (p: number[], q: number[], u: number, v: number) =>
    (q[0] - p[0]) * (v - p[1]) - (q[1] - p[1]) * (u - p[0]);
  return (u, v) => {
    const d1 = side(pts[0], pts[1], u, v), d2 = side(pts[1], pts[2], u, v), d3 = side(pts[2], pts[0], u, v);
    return (d1 >= 0 && d2 >= 0 && d3 >= 0) || (d1 <= 0 && d2 <= 0 && d3 <= 0);
  };
}

/** Separable [1, 4, 6, 4, 1]/16 blur of one channel-last canvas, edges clamped. */
function blur(src: Float32Array, h: number, w: number, c: number): Float32Array {
  const k = [1, 4, 6, 4, 1].map((v) => v / 16);
  const tmp = new Float32Array(src.length), out = new Float32Array(src.length);
  const clamp = (i: number, n: number) => Math.min(n - 1, Math.max(0, i));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let t = -2; t <= 2; t++) s += k[t + 2] * src[(y * w + clamp(x + t, w)) * c + ch];
        tmp[(y * w + x) * c + ch] = s;
      }
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let t = -2; t <= 2; t++) s += k[t + 2] * tmp[(clamp(y + t, h) * w + x) * c + ch];
        out[(y * w + x) * c + ch] = s;
      }
    }
  }
  return out;
}

/**
 * `n` random-shape images as a {@linkcode Dataset} with pixels in [0, 1]
 * (labels are all 0: the proxy set is unlabelled; `numClasses` is 1).
 *
 * @example
 * ```ts
 * import { syntheticShapes } from "./synthetic_shapes.ts";
 * const proxy = syntheticShapes({ n: 16, height: 28, width: 28, channels: 1, seed: 0 });
 * console.log(proxy.images.length); // 16 * 784
 * ```
 */
export function syntheticShapes(opts: SyntheticShapesOptions): Dataset {
  const { n, height: h, width: w, channels: c } = opts;
  const scale = opts.scale ?? 2;
  const maxShapes = opts.maxShapes ?? 3;
  for (
    const [name, v] of [["n", n], ["height", h], ["width", w], ["channels", c], ["scale", scale], [
      "maxShapes",
      maxShapes,
    ]] as const
  ) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`syntheticShapes: ${name} must be a positive integer, got ${v}`);
    }
  }
  const rng = mulberry32(opts.seed);
  const H = h * scale, W = w * scale, size = Math.max(H, W);
  const images = new Float32Array(n * h * w * c);
  const canvas = new Float32Array(H * W * c);
  const colour = () => Array.from({ length: c }, () => rng());
  for (let i = 0; i < n; i++) {
    const bg = colour();
    for (let p = 0; p < H * W; p++) for (let ch = 0; ch < c; ch++) canvas[p * c + ch] = bg[ch];
    const count = 1 + Math.floor(rng() * maxShapes);
    for (let s = 0; s < count; s++) {
      const inside = randomShape(rng, size);
      const fg = colour();
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          if (inside(x + 0.5, y + 0.5)) { for (let ch = 0; ch < c; ch++) canvas[(y * W + x) * c + ch] = fg[ch]; }
        }
      }
    }
    const soft = blur(canvas, H, W, c);
    const base = i * h * w * c;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          for (let dy = 0; dy < scale; dy++) {
            for (let dx = 0; dx < scale; dx++) sum += soft[((y * scale + dy) * W + x * scale + dx) * c + ch];
          }
          images[base + (y * w + x) * c + ch] = sum / (scale * scale);
        }
      }
    }
  }
  return {
    name: "synthetic_shapes",
    split: "train",
    images,
    labels: new Int32Array(n),
    n,
    height: h,
    width: w,
    channels: c,
    numClasses: 1,
  };
}
