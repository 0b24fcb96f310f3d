/**
 * Plain supervised training of a classifier: epochs of seeded shuffled
 * batches, a learning-rate schedule, and a callback per epoch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, deriveSeed, gatherBatch, imageShape, shuffledBatches } from "../data/mod.ts";
import { CROSS_ENTROPY } from "./losses.ts";
import { makeOptimizer, type OptimizerOptions, stepLr } from "./optim.ts";
import { makeTrainer } from "./trainer.ts";

/** Options for {@linkcode fit}: the optimizer's (see `makeOptimizer`) and the loop's. */
export interface FitOptions extends OptimizerOptions {
  /** Number of passes over the data. */
  epochs: number;
  /** Examples per step. */
  batchSize: number;
  /** Fractions of the run at which the learning rate is multiplied by `lrGamma`. */
  lrMilestones?: number[];
  /** Learning-rate decay factor at each milestone (default 0.1). */
  lrGamma?: number;
  /** Seed of the batch order. */
  seed: number;
  /** Host-side batch transform applied before each step (e.g. `augmenter(...)` from lib/data); default none. */
  augment?: (images: Float32Array, n: number, h: number, w: number, c: number) => Float32Array;
  /** Called after every epoch with its mean training loss. */
  onEpoch?: (epoch: number, loss: number) => void | Promise<void>;
}

/** Summary of a {@linkcode fit} run. */
export interface FitResult {
  /** Mean training loss of each epoch. */
  epochLosses: number[];
  /** Optimizer steps taken. */
  steps: number;
}

/**
 * Trains `model` (which outputs logits) on `ds` with cross-entropy.
 *
 * @example
 * ```ts ignore
 * await fit(lenet5({ seed: 0 }), train, { epochs: 1, batchSize: 128, optimizer: "adam", lr: 1e-3, seed: 0 });
 * ```
 */
export async function fit(model: tf.LayersModel, ds: Dataset, opts: FitOptions): Promise<FitResult> {
  const { optimizer, setLr } = makeOptimizer(opts);
  const trainer = makeTrainer(model, optimizer, CROSS_ENTROPY);
  const [, h, w, c] = imageShape(ds);
  const stepsPerEpoch = Math.ceil(ds.n / opts.batchSize);
  const total = stepsPerEpoch * opts.epochs;
  const epochLosses: number[] = [];
  let steps = 0;
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      let sum = 0, count = 0;
      for (const idx of shuffledBatches(ds.n, opts.batchSize, deriveSeed(opts.seed, epoch))) {
        setLr(stepLr(opts.lr, steps / total, opts.lrMilestones, opts.lrGamma));
        const b = gatherBatch(ds, idx);
        const x = opts.augment ? opts.augment(b.images, b.n, h, w, c) : b.images;
        const loss = tf.tidy(() => trainer.step(tf.tensor4d(x, [b.n, h, w, c]), tf.tensor1d(b.labels, "int32")));
        sum += loss.dataSync()[0] * b.n;
        count += b.n;
        loss.dispose();
        steps++;
      }
      epochLosses.push(sum / count);
      await opts.onEpoch?.(epoch, sum / count);
    }
  } finally {
    trainer.dispose();
    optimizer.dispose();
  }
  return { epochLosses, steps };
}
