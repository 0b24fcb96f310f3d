/**
 * The transfer set of a data-based attack (Knockoff Nets, JBDA): the images
 * the attacker queried, each with the black box's answer turned into a
 * training target (the victim's probabilities, or the one-hot of its top-1
 * label), and the clone training that goes with it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, shuffledBatches } from "../data/mod.ts";
import type { Trainer } from "../train/trainer.ts";
import type { BlackBox } from "../victim/black_box.ts";

/**
 * Queries `x` (counted by the black box) and returns the training targets
 * [n, k]: the answered probabilities (`soft`), or the one-hot of the answered
 * label (`hard`). The caller owns the result.
 */
export function queryTargets(blackBox: BlackBox, x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const answer = blackBox.query(x);
    if (blackBox.labels === "hard") {
      return tf.oneHot(answer as tf.Tensor1D, blackBox.numClasses).toFloat() as tf.Tensor2D;
    }
    return answer as tf.Tensor2D;
  });
}

/**
 * Images and targets gathered so far, in plain typed arrays (they can be
 * large: no tensors are held between calls).
 */
export class TransferSet {
  /** Shape [h, w, c] of one image. */
  readonly imageShape: readonly [number, number, number];
  /** Number of classes (length of one target). */
  readonly numClasses: number;
  readonly #size: number;
  #images: Float32Array;
  #targets: Float32Array;
  #n = 0;

  /**
   * An empty set.
   *
   * @param imageShape shape [h, w, c] of one image
   * @param numClasses length of one target
   * @param capacity examples to allocate room for up front (it grows as needed)
   */
  constructor(imageShape: readonly [number, number, number], numClasses: number, capacity = 1024) {
    this.imageShape = [...imageShape] as [number, number, number];
    this.numClasses = numClasses;
    this.#size = imageShape[0] * imageShape[1] * imageShape[2];
    const cap = Math.max(1, capacity);
    this.#images = new Float32Array(cap * this.#size);
    this.#targets = new Float32Array(cap * numClasses);
  }

  /** Number of examples held. */
  get n(): number {
    return this.#n;
  }

  /** The images [n·h·w·c] held so far (a view, not a copy). */
  get images(): Float32Array {
    return this.#images.subarray(0, this.#n * this.#size);
  }

  /** The targets [n·k] held so far (a view, not a copy). */
  get targets(): Float32Array {
    return this.#targets.subarray(0, this.#n * this.numClasses);
  }

  #reserve(n: number): void {
    if (n * this.#size <= this.#images.length) return;
    const cap = Math.max(n, 2 * (this.#images.length / this.#size));
    const images = new Float32Array(cap * this.#size);
    images.set(this.images);
    const targets = new Float32Array(cap * this.numClasses);
    targets.set(this.targets);
    this.#images = images;
    this.#targets = targets;
  }

  /** Appends images [m, h, w, c] with their targets [m, k] (tensors are read, not disposed). */
  add(images: tf.Tensor4D, targets: tf.Tensor2D): void {
    const [m, h, w, c] = images.shape;
    const [h0, w0, c0] = this.imageShape;
    if (h !== h0 || w !== w0 || c !== c0 || targets.shape[0] !== m || targets.shape[1] !== this.numClasses) {
      throw new RangeError(
        `TransferSet.add: expected images [m, ${h0}, ${w0}, ${c0}] and targets [m, ${this.numClasses}], ` +
          `got [${images.shape}] and [${targets.shape}]`,
      );
    }
    this.addArrays(images.dataSync() as Float32Array, targets.dataSync() as Float32Array);
  }

  /** Appends raw arrays: `images` of m·h·w·c values and `targets` of m·k values. */
  addArrays(images: Float32Array, targets: Float32Array): void {
    const m = images.length / this.#size;
    if (!Number.isInteger(m) || targets.length !== m * this.numClasses) {
      throw new RangeError(`TransferSet.addArrays: ${images.length} image values do not fit ${targets.length} targets`);
    }
    this.#reserve(this.#n + m);
    this.#images.set(images, this.#n * this.#size);
    this.#targets.set(targets, this.#n * this.numClasses);
    this.#n += m;
  }

  /** The examples at `indices` as tensors: images [b, h, w, c] and targets [b, k]. */
  batch(indices: ArrayLike<number>): { x: tf.Tensor4D; y: tf.Tensor2D } {
    const b = indices.length, s = this.#size, k = this.numClasses;
    const images = new Float32Array(b * s);
    const targets = new Float32Array(b * k);
    for (let j = 0; j < b; j++) {
      const i = indices[j];
      if (!Number.isInteger(i) || i < 0 || i >= this.#n) {
        throw new RangeError(`TransferSet.batch: index ${i} outside [0, ${this.#n})`);
      }
      images.set(this.#images.subarray(i * s, (i + 1) * s), j * s);
      targets.set(this.#targets.subarray(i * k, (i + 1) * k), j * k);
    }
    return { x: tf.tensor4d(images, [b, ...this.imageShape]), y: tf.tensor2d(targets, [b, k]) };
  }
}

/**
 * One epoch of clone training on `set` through `trainer` (the clone's, with
 * the soft cross-entropy, `SOFT_CROSS_ENTROPY` of lib/train/losses.ts):
 * shuffled batches (order fixed by `seed`), one step per batch. Returns the
 * mean loss; keeps no tensors.
 */
export function trainEpoch(trainer: Trainer<tf.Tensor2D>, set: TransferSet, batchSize: number, seed: number): number {
  if (set.n === 0) return NaN;
  let sum = 0;
  for (const idx of shuffledBatches(set.n, batchSize, deriveSeed(seed))) {
    const loss = tf.tidy(() => {
      const { x, y } = set.batch(idx);
      return trainer.step(x, y);
    });
    sum += loss.dataSync()[0] * idx.length;
    loss.dispose();
  }
  return sum / set.n;
}
