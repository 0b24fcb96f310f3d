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
import { TorchAdam } from "../train/optim.ts";
import { trainMecoOfficial } from "./official.ts";
import { perturbationInference } from "../models/perturbation.ts";
import { type Bandwidth, svgdStep } from "./svgd.ts";
import {
  accumulateGrads,
  activationBytes,
  chainForward,
  chainGrads,
  modelSegments,
  type Piece,
} from "../train/recompute.ts";

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

/**
 * The mean per-sample loss L(T(x + h(x, ε)), y) in inference mode, as a function of x. h runs in its folded form for
 * input gradients where it has one (`perturbationInference` with `differentiable`: no weight gradients computed).
 */
function perturbedLoss(target: tf.LayersModel, perturb: tf.LayersModel, eps: tf.Tensor4D, y: tf.Tensor1D) {
  const h = perturbationInference(perturb, { differentiable: true }) ??
    ((x: tf.Tensor4D, eps: tf.Tensor4D) => perturb.apply([x, eps], { training: false }) as tf.Tensor4D);
  return (x: tf.Tensor): tf.Scalar => {
    const xp = tf.add(x, h(x as tf.Tensor4D, eps));
    return crossEntropy(target.apply(xp, { training: false }) as tf.Tensor2D, y);
  };
}

/**
 * Moves the batch `x` Q SVGD steps toward the worst case (paper Eq. 11), each
 * step by an RMS of `alpha` per pixel (before clipping to [−1, 1]). The loss
 * gradient of each particle is that of its own loss L(T(x_j + h(x_j, ε_j)), y_j)
 * (the batch mean scaled by N), taken with the models in inference mode, so
 * particles do not interact through BatchNorm, and the gradients can be taken
 * in `chunks` parts of the batch (less memory, the same gradients).
 */
export function worstCaseBatch(
  target: tf.LayersModel,
  perturb: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  eps: tf.Tensor4D,
  opts: Pick<MecoTrainOptions, "q" | "alpha" | "sigma"> & { chunks?: number },
): tf.Tensor4D {
  const n = x.shape[0];
  const size = Math.ceil(n / Math.max(1, Math.min(n, opts.chunks ?? 1)));
  // crossEntropy is a batch mean: scale by the part's size for per-particle ∇ loss(x_j).
  const particleGrads = (xq: tf.Tensor4D): tf.Tensor4D => {
    if (size >= n) return tf.mul(tf.grad(perturbedLoss(target, perturb, eps, y))(xq), n);
    const parts: tf.Tensor4D[] = [];
    for (let i = 0; i < n; i += size) {
      const m = Math.min(size, n - i);
      parts.push(tf.tidy(() => {
        const loss = perturbedLoss(target, perturb, tf.slice(eps, i, m), tf.slice(y, i, m));
        return tf.mul(tf.grad(loss)(tf.slice(xq, i, m)), m);
      }));
    }
    const g = tf.concat(parts);
    tf.dispose(parts);
    return g;
  };
  let xq = tf.clone(x);
  for (let q = 0; q < opts.q; q++) {
    const next = tf.tidy(() =>
      svgdStep(xq, particleGrads(xq), { alpha: opts.alpha, step: "rms", sigma: opts.sigma, clip: [-1, 1] })
    );
    xq.dispose();
    xq = next;
  }
  return xq;
}

/**
 * The optimizer of T and h: tfjs's Adam (`tf.train.adam(lr)`: β 0.9 / 0.999, ε 1e-7, the wasm and cpu backends'
 * epsilon) as {@linkcode TorchAdam}, whose update is the same formula, run as one fused pass per variable on the
 * wasm backend instead of about a dozen kernels (equal to `tf.train.adam` up to rounding: tests/meco/meco_test.ts).
 */
export function mecoOptimizer(lr: number): TorchAdam {
  return new TorchAdam(lr, 0.9, 0.999, 1e-7);
}

/**
 * A target's memory plan for a MeCo step at batch size `batch`: whether the
 * step recomputes (lib/train/recompute.ts), the target as the pieces it
 * recomputes, and how many parts the SVGD step takes the gradients in. A
 * target whose layer outputs fit in `budget` bytes ({@linkcode TAPE_BUDGET})
 * is one piece on one tape (LeNet-5 at any batch this project trains at); a
 * larger one is cut into pieces of about 3/8 of that each (a full-width
 * ResNet-34-8x at batch 128: 1.4 GiB of outputs, a tape of about 3 GiB, more
 * than a MeCo step's three passes and h's two can hold in the wasm heap's
 * 4 GB).
 */
export function mecoMemoryPlan(target: tf.LayersModel, batch: number, budget = TAPE_BUDGET): {
  recompute: boolean;
  pieces: Piece[];
  svgdChunks: number;
} {
  const bytes = activationBytes(target, batch);
  const whole = (m: tf.LayersModel): Piece => ({
    run: (t) => m.apply(t, { training: true }) as tf.Tensor,
    vars: m.trainableWeights.map((v) => v.read() as tf.Variable),
  });
  if (bytes <= budget) return { recompute: false, pieces: [whole(target)], svgdChunks: 1 };
  const count = Math.ceil(bytes / (budget * PIECE_SHARE));
  const key = `${count}`;
  let parts = segmentCache.get(target)?.get(key);
  if (parts === undefined) {
    parts = modelSegments(target, count);
    if (!segmentCache.has(target)) segmentCache.set(target, new Map());
    segmentCache.get(target)!.set(key, parts);
  }
  return {
    recompute: parts.length > 1,
    pieces: parts.map(whole),
    svgdChunks: Math.min(batch, Math.ceil(bytes / budget)),
  };
}

/** Bytes of a target pass's layer outputs above which a MeCo step recomputes (see {@linkcode mecoMemoryPlan}). */
export const TAPE_BUDGET = 256 * 2 ** 20;
/** A recomputed piece's layer outputs as a share of the budget. */
const PIECE_SHARE = 3 / 8;
const segmentCache = new WeakMap<tf.LayersModel, Map<string, tf.LayersModel[]>>();

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
 *
 * The gradient of that loss is taken in three parts, each on its own tape, so
 * that at most one pass of T (with one of h) holds its activations at a time
 * instead of three: (a) the CE term; (b) the L1 term through
 * T(x + h(x, ε)), with softmax T(x) a constant; (c) the L1 term through T(x),
 * with softmax T(x + h(x, ε)) the constant (b) computed. (b) needs softmax
 * T(x) first: one more forward pass of T, after which BatchNorm's moving
 * statistics are put back, so that they see the passes (a), (b), (c) in the
 * order of the single-tape form. A large target is also recomputed piece by
 * piece within each part ({@linkcode mecoMemoryPlan}). The sum of the parts is
 * the single-tape gradient up to rounding (tests/meco/meco_test.ts), and one
 * optimizer step applies it.
 */
export function mecoTrainStep(
  target: tf.LayersModel,
  perturb: tf.LayersModel,
  optimizer: tf.Optimizer,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  eps: tf.Tensor4D,
  opts: Pick<MecoTrainOptions, "q" | "alpha" | "sigma" | "gamma"> & { tapeBudget?: number },
): MecoStepStats {
  const plan = mecoMemoryPlan(target, x.shape[0], opts.tapeBudget);
  return tf.tidy(() => {
    const models = [target, perturb];
    const chain = { recompute: plan.recompute, models };
    const xq = worstCaseBatch(target, perturb, x, y, eps, { ...opts, chunks: plan.svgdChunks });
    let hSq: tf.Scalar | undefined;
    // x' = x + h(x, ε) as the chain's first piece (x a constant); h's mean square recorded for (a).
    const perturbed: Piece = {
      run: (t) => {
        const d = perturb.apply([t, eps], { training: true }) as tf.Tensor4D;
        if (hSq === undefined) hSq = tf.keep(tf.mean(tf.square(d)) as tf.Scalar);
        return tf.add(t, d);
      },
      vars: perturb.trainableWeights.map((v) => v.read() as tf.Variable),
    };
    const grads: tf.NamedTensorMap = {};
    // (a) L(T(x_Q + h(x_Q, ε)), y).
    const a = chainGrads([perturbed, ...plan.pieces], xq, (logits) => crossEntropy(logits as tf.Tensor2D, y), chain);
    accumulateGrads(grads, a.grads);
    const hMs = hSq!.dataSync()[0];
    // softmax T(x), a constant for (b), from a pass that leaves BatchNorm's moving statistics as they were.
    const pClean = tf.softmax(chainForward(plan.pieces, x, [target]) as tf.Tensor2D);
    // (b) γ·mean ‖softmax T(x + h(x, ε)) − pClean‖₁ through the perturbed pass.
    let pPert: tf.Tensor2D | undefined;
    const b = chainGrads([perturbed, ...plan.pieces], x, (logits) => {
      pPert?.dispose(); // a recomputing chain runs the head once, a single tape once
      pPert = tf.keep(tf.softmax(logits as tf.Tensor2D));
      return tf.mul(tf.mean(tf.sum(tf.abs(tf.sub(pPert, pClean)), 1)), opts.gamma) as tf.Scalar;
    }, chain);
    accumulateGrads(grads, b.grads);
    // (c) the same term through the clean pass, with pPert the constant.
    const c = chainGrads(plan.pieces, x, (logits) => {
      const p = tf.softmax(logits as tf.Tensor2D);
      return tf.mul(tf.mean(tf.sum(tf.abs(tf.sub(pPert!, p)), 1)), opts.gamma) as tf.Scalar;
    }, { recompute: plan.recompute, models: [target] });
    accumulateGrads(grads, c.grads);
    optimizer.applyGradients(grads);
    const ce = a.value.dataSync()[0];
    const l1 = tf.mean(tf.sum(tf.abs(tf.sub(pPert!, pClean)), 1)).dataSync()[0];
    tf.dispose([pPert!, hSq!]); // kept out of their tapes' scopes, so out of this one too
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
  const optimizer = mecoOptimizer(opts.lr);
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
