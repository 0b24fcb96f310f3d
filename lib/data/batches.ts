/**
 * Index batches for training loops: a seeded shuffled batch iterator, a
 * sequential one for evaluation, and gathering a batch of examples.
 *
 * @module
 */

import { type Dataset, imageSize } from "./dataset.ts";
import { shuffledIndices } from "./rng.ts";

/** Options for {@linkcode shuffledBatches} and {@linkcode sequentialBatches}. */
export interface BatchOptions {
  /** Drop a last batch smaller than `batchSize` (default `false`). */
  dropLast?: boolean;
}

function checkArgs(n: number, batchSize: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`n must be a non-negative integer, got ${n}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(
      `batchSize must be a positive integer, got ${batchSize}`,
    );
  }
}

function* slices(
  order: Int32Array,
  batchSize: number,
  dropLast: boolean,
): Generator<Int32Array> {
  for (let start = 0; start < order.length; start += batchSize) {
    const end = Math.min(start + batchSize, order.length);
    if (dropLast && end - start < batchSize) return;
    yield order.slice(start, end);
  }
}

/**
 * Yields one epoch of index batches over `0 .. n-1` in an order fixed by
 * `seed` (use {@linkcode deriveSeed} with the epoch for per-epoch orders).
 * Every index appears exactly once (unless `dropLast` drops a short tail).
 *
 * @example
 * ```ts
 * import { shuffledBatches } from "./batches.ts";
 * for (const idx of shuffledBatches(10, 4, 1)) console.log(idx.length); // 4, 4, 2
 * ```
 */
export function shuffledBatches(
  n: number,
  batchSize: number,
  seed: number,
  opts: BatchOptions = {},
): Generator<Int32Array> {
  checkArgs(n, batchSize);
  return slices(shuffledIndices(n, seed), batchSize, opts.dropLast ?? false);
}

/** Yields index batches over `0 .. n-1` in order. */
export function sequentialBatches(
  n: number,
  batchSize: number,
  opts: BatchOptions = {},
): Generator<Int32Array> {
  checkArgs(n, batchSize);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return slices(order, batchSize, opts.dropLast ?? false);
}

/** The examples of one batch, copied out of a dataset. */
export interface Batch {
  /** NHWC pixels of the batch, length `n * height * width * channels`. */
  images: Float32Array;
  /** Labels of the batch. */
  labels: Int32Array;
  /** Number of examples in the batch. */
  n: number;
}

/**
 * Copies the examples at `indices` out of `ds`; an index out of range is a
 * `RangeError`.
 *
 * @example
 * ```ts ignore
 * import { gatherBatch, shuffledBatches } from "./batches.ts";
 * for (const idx of shuffledBatches(ds.n, 128, seed)) {
 *   const { images, labels } = gatherBatch(ds, idx);
 * }
 * ```
 */
export function gatherBatch(ds: Dataset, indices: ArrayLike<number>): Batch {
  const size = imageSize(ds);
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new RangeError(
        `index ${i} at position ${k} is outside dataset ${ds.name} (${ds.n} examples)`,
      );
    }
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
  }
  return { images, labels, n: indices.length };
}
