/**
 * The standard CIFAR training augmentation and per-channel normalisation, on
 * host-side NHWC batches: a random crop of the zero-padded image (padding 4
 * in the reference recipe) and a random horizontal flip, both drawn from a
 * seeded PRNG so that a run repeats exactly.
 *
 * @module
 */

import { mulberry32, type Rng } from "./rng.ts";

/** Options for {@linkcode augmentBatch}. */
export interface AugmentOptions {
  /** Zero padding on each side before the random crop back to the original size (0 = no crop). */
  cropPadding: number;
  /** Flip each image left-right with probability 1/2. */
  flip: boolean;
  /** Value written into the padding (default 0; −1 for images in [−1, 1] keeps black borders). */
  fill?: number;
}

/**
 * Augments a batch of `n` HWC images held in `images` (length n·h·w·c) and
 * returns a new array; `rng` (e.g. `mulberry32(seed)`) draws one crop offset
 * pair and one flip per image, in image order.
 *
 * @example
 * ```ts
 * import { augmentBatch } from "./augment.ts";
 * import { mulberry32 } from "./rng.ts";
 * const out = augmentBatch(new Float32Array(2 * 32 * 32 * 3), 2, 32, 32, 3, { cropPadding: 4, flip: true }, mulberry32(0));
 * ```
 */
export function augmentBatch(
  images: Float32Array,
  n: number,
  h: number,
  w: number,
  c: number,
  opts: AugmentOptions,
  rng: Rng,
): Float32Array {
  const per = h * w * c;
  if (images.length !== n * per) {
    throw new RangeError(`augmentBatch: expected ${n}×${h}×${w}×${c} = ${n * per} values, got ${images.length}`);
  }
  const pad = opts.cropPadding;
  if (!Number.isInteger(pad) || pad < 0) {
    throw new RangeError(`augmentBatch: cropPadding must be a non-negative integer, got ${pad}`);
  }
  const fill = opts.fill ?? 0;
  const out = new Float32Array(images.length);
  for (let i = 0; i < n; i++) {
    // Offset of the crop window in the padded image, in [0, 2·pad]; shift = offset − pad.
    const dy = pad > 0 ? Math.floor(rng() * (2 * pad + 1)) - pad : 0;
    const dx = pad > 0 ? Math.floor(rng() * (2 * pad + 1)) - pad : 0;
    const flip = opts.flip && rng() < 0.5;
    const base = i * per;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let x = 0; x < w; x++) {
        const o = base + (y * w + x) * c;
        const sxCrop = x + dx;
        // Flipping the cropped image: output column x reads cropped column w−1−x.
        const sx = flip ? (w - 1 - x) + dx : sxCrop;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (let ch = 0; ch < c; ch++) out[o + ch] = fill;
        } else {
          const s = base + (sy * w + sx) * c;
          for (let ch = 0; ch < c; ch++) out[o + ch] = images[s + ch];
        }
      }
    }
  }
  return out;
}

/**
 * A batch transform for training loops: augments with a PRNG seeded once by
 * `seed`, so successive batches get fresh but reproducible draws.
 *
 * @example
 * ```ts ignore
 * const aug = augmenter({ cropPadding: 4, flip: true, fill: -1 }, 7);
 * const x = aug(batch.images, batch.n, 32, 32, 3);
 * ```
 */
export function augmenter(
  opts: AugmentOptions,
  seed: number,
): (images: Float32Array, n: number, h: number, w: number, c: number) => Float32Array {
  const rng = mulberry32(seed);
  return (images, n, h, w, c) => augmentBatch(images, n, h, w, c, opts, rng);
}

/** Per-channel statistics of a dataset, for {@linkcode normalize}. */
export interface ChannelStats {
  /** Mean of each channel. */
  mean: number[];
  /** Standard deviation of each channel (population). */
  std: number[];
}

/**
 * Per-channel mean and standard deviation of NHWC `images` with `c` channels.
 *
 * @example
 * ```ts
 * import { channelStats } from "./augment.ts";
 * channelStats(new Float32Array([0, 1, 0, 1]), 2); // { mean: [0, 1], std: [0, 0] }
 * ```
 */
export function channelStats(images: Float32Array, c: number): ChannelStats {
  if (!Number.isInteger(c) || c < 1 || images.length % c !== 0 || images.length === 0) {
    throw new RangeError(`channelStats: ${images.length} values do not split into ${c} channels`);
  }
  const sum = new Float64Array(c), sq = new Float64Array(c);
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    sum[i % c] += v;
    sq[i % c] += v * v;
  }
  const count = images.length / c;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, ch) => Math.sqrt(Math.max(0, s / count - mean[ch] * mean[ch])));
  return { mean, std };
}

/**
 * `(x − mean[ch]) / std[ch]` per channel of NHWC `images`, as torchvision's
 * `Normalize`; returns a new array. A zero or negative std is an error.
 *
 * @example
 * ```ts
 * import { normalize } from "./augment.ts";
 * normalize(new Float32Array([1, 1]), { mean: [0.5], std: [0.5] }); // [1, 1]
 * ```
 */
export function normalize(images: Float32Array, stats: ChannelStats): Float32Array {
  const c = stats.mean.length;
  if (c === 0 || stats.std.length !== c) {
    throw new RangeError(`normalize: mean has ${c} channels, std ${stats.std.length}`);
  }
  if (images.length % c !== 0) {
    throw new RangeError(`normalize: ${images.length} values do not split into ${c} channels`);
  }
  stats.std.forEach((s, ch) => {
    if (!(s > 0)) throw new RangeError(`normalize: std of channel ${ch} must be positive, got ${s}`);
  });
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = (images[i] - stats.mean[i % c]) / stats.std[i % c];
  return out;
}

/** CIFAR-10 training-set channel statistics used by the DFME/MeCo reference code (pixels in [0, 1]). */
export const CIFAR10_STATS: ChannelStats = { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] };
/** CIFAR-100 training-set channel statistics as commonly used (pixels in [0, 1]). */
export const CIFAR100_STATS: ChannelStats = { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] };
