/**
 * Training-time cost of MeCo over plain training (MeCo paper, Table 15): the
 * same number of mini-batches of plain supervised training (the victim's
 * recipe) and of MeCo's Algorithm 1 (the config's `meco` entry), timed back to
 * back in one process on the same images.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { ExperimentConfig, MecoDefenseConfig } from "../config/mod.ts";
import { type Dataset, deriveSeed, subset } from "../data/mod.ts";
import { trainMeco } from "../meco/train.ts";
import { perturbationNet } from "../models/perturbation.ts";
import { buildClassifier } from "../models/registry.ts";
import { fit } from "../train/fit.ts";

/** What {@linkcode measureTraining} reports. */
export interface TrainingCost {
  /** Mini-batches timed for each method. */
  steps: number;
  /** Batch size of plain training. */
  plain_batch_size: number;
  /** Batch size of MeCo training. */
  meco_batch_size: number;
  /** Milliseconds per plain training step. */
  plain_ms_per_step: number;
  /** Milliseconds per MeCo step (Q SVGD steps + the joint update of T and h). */
  meco_ms_per_step: number;
  /** Per training image, MeCo time over plain time. */
  overhead_per_image: number;
  /** Estimated minutes of the config's full plain training (victim epochs over the whole training set). */
  plain_minutes_full: number;
  /** Estimated minutes of the config's full MeCo training (its epochs over its training set). */
  meco_minutes_full: number;
}

function build(cfg: ExperimentConfig, shape: [number, number, number], classes: number, seed: number) {
  return buildClassifier(cfg.victim.arch, { seed, inputShape: shape, classes, width: cfg.victim.width });
}

/**
 * Times `steps` plain training steps and `steps` MeCo steps on the first
 * images of `train` (in [-1, 1]), each after one untimed warm-up step.
 */
export async function measureTraining(
  cfg: ExperimentConfig,
  meco: MecoDefenseConfig,
  train: Dataset,
  steps: number,
  seed: number,
): Promise<TrainingCost> {
  const shape: [number, number, number] = [train.height, train.width, train.channels];
  const t = cfg.victim.train;
  const timeIt = async (batch: number, run: (ds: Dataset) => Promise<void>) => {
    await run(subset(train, batch, { seed: deriveSeed(seed, 1) })); // warm-up: kernels compiled, buffers sized
    const ds = subset(train, batch * steps, { seed: deriveSeed(seed, 2) });
    const t0 = performance.now();
    await run(ds);
    return (performance.now() - t0) / steps;
  };
  const plain = await timeIt(t.batch_size, async (ds) => {
    const model = build(cfg, shape, train.numClasses, seed);
    try {
      await fit(model, ds, {
        epochs: 1,
        batchSize: t.batch_size,
        optimizer: t.optimizer,
        lr: t.lr,
        momentum: t.momentum,
        weightDecay: t.weight_decay,
        seed,
      });
    } finally {
      model.dispose();
    }
  });
  const mecoMs = await timeIt(meco.batch_size, async (ds) => {
    const target = build(cfg, shape, train.numClasses, seed);
    let perturb: tf.LayersModel = perturbationNet({ imageShape: shape, width: meco.width, bound: meco.bound, seed });
    try {
      const out = await trainMeco(target, perturb, ds, {
        gamma: meco.gamma,
        q: meco.q,
        alpha: meco.alpha,
        sigma: meco.sigma,
        bound: meco.bound,
        width: meco.width,
        epochs: 1,
        batchSize: meco.batch_size,
        lr: meco.lr,
        variant: meco.variant,
        seed,
      });
      perturb = out.perturb;
    } finally {
      target.dispose();
      perturb.dispose();
    }
  });
  const n = train.n;
  const mecoN = Math.min(meco.train_subset ?? n, n);
  return {
    steps,
    plain_batch_size: t.batch_size,
    meco_batch_size: meco.batch_size,
    plain_ms_per_step: plain,
    meco_ms_per_step: mecoMs,
    overhead_per_image: (mecoMs / meco.batch_size) / (plain / t.batch_size),
    plain_minutes_full: (Math.ceil(n / t.batch_size) * t.epochs * plain) / 60000,
    meco_minutes_full: (Math.ceil(mecoN / meco.batch_size) * meco.epochs * mecoMs) / 60000,
  };
}
