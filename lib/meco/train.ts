/**
 * MeCo defensive training, the paper's Algorithm 1. For each mini-batch (x, y):
 *
 * 1. draw ε ~ N(0, I);
 * 2. simulate the worst-case test distribution: Q SVGD steps (Eq. 11, see
 *    svgd.ts) move the batch x_0 = x to x_Q up the loss L(T(x + h(x, ε)), y);
 *    each step moves the batch by an RMS of α per pixel (`step: "rms"` of
 *    {@linkcode svgdStep}: Eq. 11's direction, its length fixed, because the
 *    literal rate moved images by ~2e-6 per pixel and the Q ablations measured
 *    nothing);
 * 3. update the target T and the perturbation generator h together on
 *    L(T(x_Q + h(x_Q, ε)), y) + γ · mean ‖softmax T(x + h(x, ε)) − softmax T(x)‖₁.
 *
 * Q = 0 is the paper's no-DRO ablation (the loss is taken at x itself). Every
 * epoch records how far the SVGD steps moved the batch (`svgdRms`) next to
 * how far h moves it (`hRms`), both RMS per pixel.
 *
 * `variant: "official"` runs the official code's recipe instead (see
 * official.ts: target trained from scratch on CE(x) + CE(ẑ + s·h(ẑ)) + 0.001·L1
 * of logits, h a random per-image network never trained, γ the transport
 * penalty of the inner step, α its SVGD step size, `width` h's hidden planes).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, deriveSeed, gatherBatch, imageShape, shuffledBatches } from "../data/mod.ts";
import { crossEntropy } from "../train/losses.ts";
import { trainMecoOfficial } from "./official.ts";
import { type Bandwidth, svgdStep } from "./svgd.ts";

/** Hyperparameters of {@linkcode trainMeco} (the config's `meco` defense entry). */
export interface MecoTrainOptions {
  /** Weight γ of the L1 utility term (official variant: the transport penalty of the inner step). */
  gamma: number;
  /** SVGD steps per batch (0 = no-DRO ablation). */
  q: number;
  /**
   * SVGD step size α: the RMS displacement per pixel of one step, in image
   * units ([−1, 1]); official variant: the official `--stepsize`, Eq. 11's literal rate.
   */
  alpha: number;
  /** Kernel bandwidth σ or "median". */
  sigma: Bandwidth;
  /** L∞ bound of h's output. */
  bound: number;
  /** Filters of h (official variant: its `hidden_planes`). */
  width: number;
  /** Epochs over the training set. */
  epochs: number;
  /** Batch size. */
  batchSize: number;
  /** Adam learning rate for T and h. */
  lr: number;
  /** "paper" (Algorithm 1) or "official" (the official code's recipe, see official.ts). */
  variant: "paper" | "official";
  /** Run seed. */
  seed: number;
  /** Called after every epoch with the mean loss and its parts. */
  onEpoch?: (epoch: number, stats: MecoEpochStats) => void | Promise<void>;
  /** Called every `every` steps (progress). */
  onStep?: (step: number, total: number) => void;
}

/** Per-epoch means of the MeCo loss terms. */
export interface MecoEpochStats {
  /** L(T(x_Q + h(x_Q, ε)), y). */
  ce: number;
  /** mean ‖T(x + h(x, ε)) − T(x)‖₁ (softmax outputs). */
  l1: number;
  /** ce + γ·l1 (official: the official loss, CE(x) + ce + 0.001·l1). */
  loss: number;
  /** RMS per pixel of x_Q − x: how far the Q SVGD steps moved the batch (image units). */
  svgdRms: number;
  /** RMS per pixel of h(x_Q, ε): how far the perturbation moves it (image units). */
  hRms: number;
}

/** The mean per-sample loss L(T(x + h(x, ε)), y) in inference mode, as a function of x. */
function perturbedLoss(target: tf.LayersModel, perturb: tf.LayersModel, eps: tf.Tensor4D, y: tf.Tensor1D) {
  return (x: tf.Tensor): tf.Scalar => {
    const xp = tf.add(x, perturb.apply([x, eps], { training: false }) as tf.Tensor);
    return crossEntropy(target.apply(xp, { training: false }) as tf.Tensor2D, y);
  };
}

/**
 * Moves the batch `x` Q SVGD steps toward the worst case (paper Eq. 11), each
 * step by an RMS of `alpha` per pixel (before clipping to [−1, 1]). The loss
 * gradient of each particle is that of its own loss L(T(x_j + h(x_j, ε_j)), y_j)
 * (the batch mean scaled by N), taken with the models in inference mode, so
 * particles do not interact through BatchNorm.
 */
export function worstCaseBatch(
  target: tf.LayersModel,
  perturb: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  eps: tf.Tensor4D,
  opts: Pick<MecoTrainOptions, "q" | "alpha" | "sigma">,
): tf.Tensor4D {
  const n = x.shape[0];
  let xq = tf.clone(x);
  for (let q = 0; q < opts.q; q++) {
    const next = tf.tidy(() => {
      // crossEntropy is a batch mean: scale by n for per-particle ∇ loss(x_j).
      const g = tf.mul(tf.grad(perturbedLoss(target, perturb, eps, y))(xq), n) as tf.Tensor4D;
      return svgdStep(xq, g, { alpha: opts.alpha, step: "rms", sigma: opts.sigma, clip: [-1, 1] });
    });
    xq.dispose();
    xq = next;
  }
  return xq;
}

/** The loss terms and displacements of one {@linkcode mecoTrainStep}. */
export interface MecoStepStats {
  /** L(T(x_Q + h(x_Q, ε)), y). */
  ce: number;
  /** mean ‖T(x + h(x, ε)) − T(x)‖₁ (softmax outputs). */
  l1: number;
  /** Mean square per pixel of x_Q − x. */
  svgdMs: number;
  /** Mean square per pixel of h(x_Q, ε). */
  hMs: number;
}

/**
 * One step of Algorithm 1 on the batch (x, y) with noise ε: the Q SVGD steps
 * of {@linkcode worstCaseBatch}, then one step of `optimizer` on T and h of
 * L(T(x_Q + h(x_Q, ε)), y) + γ·mean ‖softmax T(x + h(x, ε)) − softmax T(x)‖₁
 * (both models in training mode). What `deno task bench` times as
 * `meco_lenet_step_b128_h16`.
 */
export function mecoTrainStep(
  target: tf.LayersModel,
  perturb: tf.LayersModel,
  optimizer: tf.Optimizer,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  eps: tf.Tensor4D,
  opts: Pick<MecoTrainOptions, "q" | "alpha" | "sigma" | "gamma">,
): MecoStepStats {
  return tf.tidy(() => {
    const vars = [...target.trainableWeights, ...perturb.trainableWeights].map((v) => v.read() as tf.Variable);
    const xq = worstCaseBatch(target, perturb, x, y, eps, opts);
    let parts: tf.Scalar[] = [];
    optimizer.minimize(
      () => {
        const dq = perturb.apply([xq, eps], { training: true }) as tf.Tensor4D;
        const ceq = crossEntropy(target.apply(tf.add(xq, dq), { training: true }) as tf.Tensor2D, y);
        const dx = perturb.apply([x, eps], { training: true }) as tf.Tensor4D;
        const pPert = tf.softmax(target.apply(tf.add(x, dx), { training: true }) as tf.Tensor2D);
        const pClean = tf.softmax(target.apply(x, { training: true }) as tf.Tensor2D);
        const dist = tf.mean(tf.sum(tf.abs(tf.sub(pPert, pClean)), 1)) as tf.Scalar;
        parts = [tf.keep(ceq), tf.keep(dist), tf.keep(tf.mean(tf.square(dq)) as tf.Scalar)];
        return tf.add(ceq, tf.mul(dist, opts.gamma)) as tf.Scalar;
      },
      false,
      vars,
    );
    const [ce, l1, hMs] = parts.map((p) => p.dataSync()[0]);
    tf.dispose(parts);
    return { ce, l1, svgdMs: tf.mean(tf.square(tf.sub(xq, x))).dataSync()[0], hMs };
  });
}

/**
 * Trains `target` (initialised by the caller: pretrained or fresh) and
 * `perturb` on `ds` (images in [-1, 1]) with Algorithm 1. Returns the
 * perturbation network (the official variant leaves `perturb` untouched and
 * unused: its h is drawn at random for every batch).
 */
export async function trainMeco(
  target: tf.LayersModel,
  perturb: tf.LayersModel,
  ds: Dataset,
  opts: MecoTrainOptions,
): Promise<{ perturb: tf.LayersModel; stats: MecoEpochStats[] }> {
  if (opts.variant === "official") {
    const stats = await trainMecoOfficial(target, ds, {
      gamma: opts.gamma,
      q: opts.q,
      stepsize: opts.alpha,
      hidden: opts.width,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      seed: opts.seed,
      onStep: opts.onStep,
      onEpoch: opts.onEpoch,
    });
    return { perturb, stats };
  }
  const [, h, w, c] = imageShape(ds);
  const optimizer = tf.train.adam(opts.lr);
  const stats: MecoEpochStats[] = [];
  const total = Math.ceil(ds.n / opts.batchSize) * opts.epochs;
  let step = 0;
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    let ce = 0, l1 = 0, svgdSq = 0, hSq = 0, seen = 0;
    for (const idx of shuffledBatches(ds.n, opts.batchSize, deriveSeed(opts.seed, epoch))) {
      const b = gatherBatch(ds, idx);
      const [bce, bl1, bsvgd, bh] = tf.tidy(() => {
        const x = tf.tensor4d(b.images, [b.n, h, w, c]);
        const y = tf.tensor1d(b.labels, "int32");
        const eps = tf.randomNormal([b.n, h, w, c], 0, 1, "float32", deriveSeed(opts.seed, 1, step)) as tf.Tensor4D;
        const r = mecoTrainStep(target, perturb, optimizer, x, y, eps, opts);
        return [r.ce, r.l1, r.svgdMs, r.hMs];
      });
      ce += bce * b.n;
      l1 += bl1 * b.n;
      svgdSq += bsvgd * b.n;
      hSq += bh * b.n;
      seen += b.n;
      step++;
      opts.onStep?.(step, total);
    }
    const s = {
      ce: ce / seen,
      l1: l1 / seen,
      loss: (ce + opts.gamma * l1) / seen,
      svgdRms: Math.sqrt(svgdSq / seen),
      hRms: Math.sqrt(hSq / seen),
    };
    stats.push(s);
    await opts.onEpoch?.(epoch, s);
  }
  optimizer.dispose();
  return { perturb, stats };
}
