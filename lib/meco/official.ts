/**
 * The `official` MeCo variant: what the authors' released code (GitHub
 * joey-wang123/DFME-DRO) does, which differs from the paper's Algorithm 1.
 * Written from a reading of that code; each piece names the file and function
 * it corresponds to.
 *
 * Training (teacher-train/teacher-train_DRO.py, `train`, `SVGD_step`,
 * `SVGD_kernal`, `main`):
 *
 * - the target is trained from scratch (`net = LeNet5()`) with Adam, lr 1e-3
 *   (`torch.optim.Adam(net.parameters(), lr=0.001)`), batch 64, for 49 MNIST
 *   epochs (`for e in range(1, 50)`); batches smaller than the batch size are
 *   skipped (`if args.batch_size == images.size(0)`);
 * - the perturbation network is never trained: the optimizer holds only the
 *   target's parameters, and every batch re-draws its weights
 *   (`perturbnet.reload_parameters()`, PyTorch's default initialisation) and
 *   its output factor ε ~ U[0.3, 0.6]
 *   (`set_epsilon(random.uniform(noisenet_max_eps / 2, noisenet_max_eps))`,
 *   `--noisenet-max-eps 0.6`);
 * - the inner step moves ẑ (starting at x) by `--T_step` (1) SVGD steps of size
 *   `--stepsize` (1e-4) on −(CE(T(ẑ)) − γ·ρ), ρ = mean_i ‖ẑ_i − x_i‖², γ =
 *   `--gamma` (0.2): γ is this transport penalty, not the weight of the utility
 *   term. The loss of this step is the clean cross-entropy of T, without h.
 *   See {@linkcode officialSvgdStep} for the kernel and the signs;
 * - the loss is CE(T(x)) + CE(T(ẑ + s·h(ẑ))) + 0.001·mean|T(ẑ + s·h(ẑ)) − T(ẑ)|
 *   with s = 0.5 (`scale = 0.5` in `main`), on logits (`nn.L1Loss`, a mean over
 *   batch and classes); the term `net(images + scale*perturbation)` is
 *   computed there but enters no loss, and is left out here;
 * - the target is in training mode throughout (`net.train()`), the
 *   perturbation network too (`.train()` in `main`, never switched).
 *
 * Perturbation network (teacher-train/perturbnet.py `Res2Net`, `Bottle2neck`;
 * DFME/dfme/perturbnet_weight.py `Res2Net_weight`;
 * DFME/dfme/network/noise_layer_weight.py `noise_Conv2d`), built with
 * `hidden_planes=2`. The batch is folded into the channels
 * (`images.view(1, -1, 32, 32)`) and every convolution has `groups=batch_size`,
 * so each image has its own random weights, and the BatchNorms, in training
 * mode over a batch of one, normalise each image's channels over its pixels.
 * Two blocks, each: conv1×1 (c → p, no bias) → BN → ReLU → conv3×3 (p → p,
 * dilation 2, padding 2, bias) → BN → ReLU → conv1×1 (p → c, no bias) → BN,
 * with no residual sum. `Res2Net` multiplies each block's output by ε; the BN
 * after the second block's first convolution undoes the first factor, so the
 * output is ε times a map of unit RMS per channel. `Res2Net_weight` (the
 * attack scripts' deployment) has no ε factor, and each of its convolutions
 * adds fresh noise to its weights on every forward pass: W + a·N(0, std(W))·a
 * with a = its `epsilon` argument (DFME/dfme/train_cifar10.py:
 * `--noisenet-max-eps`, default 1.5).
 *
 * Deployment (DFME/dfme/train_cifar10.py, train_cifar100.py `train`): for every
 * query batch the weights are re-drawn (`reload_parameters()`; `set_epsilon` is
 * commented out), the target answers T(x + s·h(x)) in eval mode with s =
 * `--scale` (the official README: 0.27 for CIFAR-10, 0.2 for CIFAR-100). The official code
 * has no MNIST attack script.
 *
 * Differences kept here, by necessity: our images are in [−1, 1] where the
 * official code feeds (p − mean)/std normalised images, so every perturbation
 * and SVGD step is taken in the official units and converted (a
 * perturbation δ there is 2·std·δ here; {@linkcode officialInputStd}); our
 * MNIST target sees 28×28×1 images where the official LeNet5 sees the image
 * resized to 32×32 and repeated to three channels, so h here perturbs the one
 * channel there is.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, deriveSeed, gatherBatch, imageShape, mulberry32, shuffledBatches } from "../data/mod.ts";
import { crossEntropy } from "../train/losses.ts";

/** The official code's constants that our config has no field for. */
export const OFFICIAL = {
  /** teacher-train_DRO.py `--noisenet-max-eps`: ε ~ U[max/2, max] per training batch. */
  maxEps: 0.6,
  /** teacher-train_DRO.py `main`: `scale = 0.5`, h's factor in training. */
  trainScale: 0.5,
  /** teacher-train_DRO.py `train`: `loss += 0.001*L1norm`. */
  l1Weight: 0.001,
  /** teacher-train_DRO.py `SVGD_kernal`: `h = 0.05 * median**2 / log(N + 1)`. */
  bandwidthFactor: 0.05,
  /** train_cifar10.py `--noisenet-max-eps` (default 1.5), passed to `Res2Net_weight` as its weight-noise factor. */
  weightNoise: 1.5,
  /** PyTorch BatchNorm2d eps. */
  bnEps: 1e-5,
} as const;

/**
 * The std of the official code's input normalisation, per channel: MNIST's
 * 0.3081 (`Normalize((0.1307,), (0.3081,))`, used here for every one-channel
 * dataset) or CIFAR's (0.2023, 0.1994, 0.2010) for three channels. A step δ in
 * the official units is 2·std·δ in our [−1, 1] units.
 */
export function officialInputStd(channels: number): number[] {
  if (channels === 1) return [0.3081];
  if (channels === 3) return [0.2023, 0.1994, 0.2010];
  throw new Error(`officialInputStd: no official normalisation for ${channels} channels`);
}

/** One image's-worth of weights for every image of a batch: [n, fanIn, fanOut] (and bias [n, 1, fanOut]). */
export interface GroupedConv {
  w: tf.Tensor3D;
  b?: tf.Tensor3D;
  /** 1 (1×1 conv) or 3 (3×3 conv, dilation 2, padding 2). */
  k: 1 | 3;
}

/** The random weights of the official perturbation network for a batch of `n` images (`reload_parameters`). */
export interface OfficialWeights {
  /** Two blocks of three grouped convolutions. */
  blocks: GroupedConv[][];
  /** Images the weights are for. */
  n: number;
}

/**
 * Draws fresh per-image weights (`Res2Net.reload_parameters`: PyTorch's
 * `Conv2d.reset_parameters`, U(±1/√fan_in) for weights and biases; the
 * BatchNorms reset to weight 1, bias 0, which is what
 * {@linkcode officialPerturbation} applies).
 */
export function drawOfficialWeights(n: number, channels: number, hidden: number, seed: number): OfficialWeights {
  let k = 0;
  const u = (shape: [number, number, number], fanIn: number) => {
    const b = 1 / Math.sqrt(fanIn);
    return tf.randomUniform(shape, -b, b, "float32", deriveSeed(seed, k++)) as tf.Tensor3D;
  };
  const block = (): GroupedConv[] => [
    { w: u([n, channels, hidden], channels), k: 1 },
    { w: u([n, 9 * hidden, hidden], 9 * hidden), b: u([n, 1, hidden], 9 * hidden), k: 3 },
    { w: u([n, hidden, channels], hidden), k: 1 },
  ];
  return { blocks: [block(), block()], n };
}

/** Frees the tensors of `w`. */
export function disposeOfficialWeights(w: OfficialWeights): void {
  for (const b of w.blocks) for (const c of b) tf.dispose([c.w, ...(c.b ? [c.b] : [])]);
}

/** `noise_Conv2d.forward`: W + a·(N(0, std(W))·a), std unbiased over the layer's whole weight. */
function noisyWeight(w: tf.Tensor3D, a: number, seed: number): tf.Tensor3D {
  if (a === 0) return w;
  return tf.tidy(() => {
    const { variance } = tf.moments(w);
    const size = w.size;
    const std = tf.sqrt(tf.mul(variance, size / Math.max(1, size - 1)));
    return tf.add(w, tf.mul(tf.randomNormal(w.shape, 0, 1, "float32", seed), tf.mul(std, a * a))) as tf.Tensor3D;
  });
}

/**
 * A grouped convolution with `groups = n` (one group per image, as the
 * official `nn.Conv2d(..., groups=batch_size)` on the folded batch) as batched
 * matrix products: the 3×3 one (dilation 2, padding 2) gathers the nine
 * dilated shifts of the padded image into the channels first (order ky, kx, c).
 */
export function groupedConv(x: tf.Tensor4D, c: GroupedConv, w: tf.Tensor3D): tf.Tensor4D {
  const [n, h, wd] = x.shape;
  let cols: tf.Tensor4D = x;
  if (c.k === 3) {
    const p = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]]);
    const shifts: tf.Tensor4D[] = [];
    for (let ky = 0; ky < 3; ky++) {
      for (let kx = 0; kx < 3; kx++) shifts.push(tf.slice(p, [0, 2 * ky, 2 * kx, 0], [n, h, wd, x.shape[3]]));
    }
    cols = tf.concat(shifts, 3);
  }
  let y: tf.Tensor3D = tf.matMul(tf.reshape(cols, [n, h * wd, cols.shape[3]]) as tf.Tensor3D, w);
  if (c.b) y = tf.add(y, c.b);
  return tf.reshape(y, [n, h, wd, w.shape[2]]);
}

/** BatchNorm2d in training mode over a batch of one: each image's channels normalised over its pixels. */
function perImageNorm(x: tf.Tensor4D): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [1, 2], true);
  return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, OFFICIAL.bnEps)));
}

/** Options of {@linkcode officialPerturbation}. */
export interface OfficialForwardOptions {
  /** `Res2Net`'s ε (each block's output × ε); 1 for `Res2Net_weight`, which has no such factor. */
  epsilon: number;
  /** `noise_Conv2d`'s factor a (0: plain `nn.Conv2d`, as in training). */
  weightNoise: number;
  /** Seed of this forward pass's weight noise. */
  seed: number;
}

/**
 * h(x) of the official code, in its units (input: normalised images
 * [n, h, w, c]; output of the same shape, before the `scale` factor).
 * `Bottle2neck.forward` twice, with `Res2Net.forward_original`'s ε factors.
 */
export function officialPerturbation(
  x: tf.Tensor4D,
  weights: OfficialWeights,
  opts: OfficialForwardOptions,
): tf.Tensor4D {
  if (x.shape[0] !== weights.n) {
    throw new Error(`officialPerturbation: ${x.shape[0]} images, weights drawn for ${weights.n}`);
  }
  return tf.tidy(() => {
    let y = x;
    let s = 0;
    for (const block of weights.blocks) {
      const w = block.map((c) => noisyWeight(c.w, opts.weightNoise, deriveSeed(opts.seed, s++)));
      let o = tf.relu(perImageNorm(groupedConv(y, block[0], w[0])));
      o = tf.relu(perImageNorm(groupedConv(o, block[1], w[1])));
      o = perImageNorm(groupedConv(o, block[2], w[2]));
      y = opts.epsilon === 1 ? o : tf.mul(o, opts.epsilon);
    }
    return y;
  });
}

/** Per-channel factor [c] from the official units to ours (2·std). */
function unitFactor(channels: number): tf.Tensor1D {
  return tf.tensor1d(officialInputStd(channels).map((s) => 2 * s));
}

/**
 * One SVGD step of the official code (`SVGD_step` with `SVGD_kernal(h=-1)`) on
 * flattened particles z [N, D] with g = ∇ of the minimised objective per
 * particle: with d_ij = ‖z_i − z_j‖ and h = 0.05·median_{i,j} d_ij² / log(N + 1)
 * (the median over the full N×N matrix, zero diagonal included),
 * k_ij = exp(−d_ij²/h) and
 *
 *   z ← z − stepsize·(K g + ∇K)/N,  ∇K_i = Σ_j k_ij (z_i − z_j)·2/h.
 *
 * As printed, the kernel term is subtracted, i.e. it pulls particles together
 * (the paper's Eq. 11 has the same sign; standard SVGD adds it), and the
 * factor 0.05 makes k_ij ≈ (N + 1)^−20 between distinct images, so K ≈ I.
 */
export function officialSvgdStep(z: tf.Tensor2D, g: tf.Tensor2D, stepsize: number): tf.Tensor2D {
  return tf.tidy(() => {
    const n = z.shape[0];
    const sq = tf.sum(tf.square(z), 1, true);
    const d2 = tf.relu(tf.sub(tf.add(sq, tf.transpose(sq)), tf.mul(tf.matMul(z, z, false, true), 2)));
    const d = Array.from(tf.sqrt(d2).dataSync()).sort((a, b) => a - b);
    const m = d.length >> 1;
    const med = d.length % 2 ? d[m] : (d[m - 1] + d[m]) / 2; // np.median
    const h = OFFICIAL.bandwidthFactor * med * med / Math.log(n + 1);
    // One particle: `kernal_xj_xi = torch.tensor([1])`; h = 0 otherwise only for identical particles.
    const k = n > 1 && h > 0 ? tf.exp(tf.div(d2, -h)) : tf.onesLike(d2);
    const dk = n > 1 && h > 0 ? tf.mul(tf.sub(tf.mul(z, tf.sum(k, 1, true)), tf.matMul(k, z)), 2 / h) : tf.zerosLike(z);
    return tf.sub(z, tf.mul(tf.div(tf.add(tf.matMul(k, g), dk), n), stepsize)) as tf.Tensor2D;
  });
}

/** Options of the official inner step ({@linkcode officialWorstCase}). */
export interface OfficialInnerOptions {
  /** `--T_step`. */
  q: number;
  /** `--stepsize`. */
  stepsize: number;
  /** `--gamma`: the transport penalty's weight. */
  gamma: number;
  /** Models in training mode (the official `net.train()`). */
  training: boolean;
}

/**
 * `train`'s inner loop: ẑ starts at x and takes `q` official SVGD steps on
 * −(CE(T(ẑ)) − γ·mean_i ‖ẑ_i − x_i‖²), all in the official units. `x` is in our
 * units; so is the result (no clipping: the official ẑ is not clipped).
 */
export function officialWorstCase(
  target: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  opts: OfficialInnerOptions,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.tidy(() => {
    const f = unitFactor(c);
    const xo = tf.div(x, f); // official units, up to the mean shift (which no step depends on)
    let z = tf.clone(xo) as tf.Tensor4D;
    for (let t = 0; t < opts.q; t++) {
      const objective = (v: tf.Tensor): tf.Scalar => {
        const delta = tf.reshape(tf.sub(v, xo), [n, -1]);
        const rho = tf.mean(tf.sum(tf.square(delta), 1));
        const logits = target.apply(tf.mul(v, f), { training: opts.training }) as tf.Tensor2D;
        return tf.neg(tf.sub(crossEntropy(logits, y), tf.mul(rho, opts.gamma))) as tf.Scalar;
      };
      const g = tf.grad(objective)(z);
      const next = officialSvgdStep(
        tf.reshape(z, [n, -1]) as tf.Tensor2D,
        tf.reshape(g, [n, -1]) as tf.Tensor2D,
        opts.stepsize,
      );
      z = tf.reshape(next, [n, h, w, c]) as tf.Tensor4D;
    }
    return tf.mul(z, f) as tf.Tensor4D;
  });
}

/**
 * The official perturbation in our units for a batch `x` (our units):
 * s·2·std·h(x/(2·std)). Only the scale of the input matters to h (its
 * BatchNorms remove the normalisation's mean shift).
 */
export function officialPerturbationOurUnits(
  x: tf.Tensor4D,
  weights: OfficialWeights,
  scale: number,
  opts: OfficialForwardOptions,
): tf.Tensor4D {
  return tf.tidy(() => {
    const f = unitFactor(x.shape[3]);
    return tf.mul(officialPerturbation(tf.div(x, f), weights, opts), tf.mul(f, scale));
  });
}

/** Hyperparameters of {@linkcode trainMecoOfficial} (from the `meco` entry with `variant: official`). */
export interface OfficialTrainOptions {
  /** `--gamma` (0.2): the transport penalty of the inner step. */
  gamma: number;
  /** `--T_step` (1). */
  q: number;
  /** `--stepsize` (1e-4). */
  stepsize: number;
  /** `hidden_planes` (2). */
  hidden: number;
  /** Epochs (MNIST: 49). */
  epochs: number;
  /** Batch size (64); smaller batches are skipped. */
  batchSize: number;
  /** Adam learning rate (1e-3). */
  lr: number;
  /** Run seed. */
  seed: number;
}

/** Per-batch numbers of the official training, averaged over an epoch by the caller. */
export interface OfficialBatchStats {
  /** CE(T(ẑ + s·h(ẑ))). */
  ce: number;
  /** mean |T(ẑ + s·h(ẑ)) − T(ẑ)| on logits. */
  l1: number;
  /** The whole loss. */
  loss: number;
  /** RMS per pixel of ẑ − x (our units). */
  svgdRms: number;
  /** RMS per pixel of s·h(ẑ) (our units). */
  hRms: number;
}

/**
 * One official training step (teacher-train_DRO.py `train`, one batch) on
 * images `x` (our units) with labels `y`; updates the target only.
 */
export function officialTrainStep(
  target: tf.LayersModel,
  optimizer: tf.Optimizer,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  opts: OfficialTrainOptions,
  step: number,
): OfficialBatchStats {
  const [n, , , c] = x.shape;
  const eps = OFFICIAL.maxEps / 2 + mulberry32(deriveSeed(opts.seed, 2, step))() * (OFFICIAL.maxEps / 2);
  const weights = drawOfficialWeights(n, c, opts.hidden, deriveSeed(opts.seed, 7, step));
  try {
    return tf.tidy(() => {
      const zhat = officialWorstCase(target, x, y, {
        q: opts.q,
        stepsize: opts.stepsize,
        gamma: opts.gamma,
        training: true,
      });
      const noise = officialPerturbationOurUnits(zhat, weights, OFFICIAL.trainScale, {
        epsilon: eps,
        weightNoise: 0,
        seed: 0,
      });
      const vars = target.trainableWeights.map((v) => v.read() as tf.Variable);
      let parts: tf.Scalar[] = [];
      optimizer.minimize(
        () => {
          const clean = crossEntropy(target.apply(x, { training: true }) as tf.Tensor2D, y);
          const outVal = target.apply(tf.add(zhat, noise), { training: true }) as tf.Tensor2D;
          const oriVal = target.apply(zhat, { training: true }) as tf.Tensor2D;
          const ceVal = crossEntropy(outVal, y);
          const l1 = tf.mean(tf.abs(tf.sub(outVal, oriVal))) as tf.Scalar;
          const loss = tf.add(tf.add(clean, ceVal), tf.mul(l1, OFFICIAL.l1Weight)) as tf.Scalar;
          parts = [tf.keep(ceVal), tf.keep(l1), tf.keep(clean)];
          return loss;
        },
        false,
        vars,
      );
      const [ce, l1, clean] = parts.map((p) => p.dataSync()[0]);
      tf.dispose(parts);
      const loss = clean + ce + OFFICIAL.l1Weight * l1;
      const rms = (t: tf.Tensor) => Math.sqrt(tf.mean(tf.square(t)).dataSync()[0]);
      return { ce, l1, loss, svgdRms: rms(tf.sub(zhat, x)), hRms: rms(noise) };
    });
  } finally {
    disposeOfficialWeights(weights);
  }
}

/**
 * Trains `target` (from scratch, as the official code) on `ds` (images in
 * [−1, 1]) with the official recipe; returns per-epoch means.
 */
export async function trainMecoOfficial(
  target: tf.LayersModel,
  ds: Dataset,
  opts: OfficialTrainOptions & {
    onEpoch?: (epoch: number, stats: OfficialBatchStats) => void | Promise<void>;
    onStep?: (step: number, total: number) => void;
  },
): Promise<OfficialBatchStats[]> {
  const [, h, w, c] = imageShape(ds);
  const optimizer = tf.train.adam(opts.lr);
  const full = Math.floor(ds.n / opts.batchSize);
  const total = full * opts.epochs;
  const out: OfficialBatchStats[] = [];
  let step = 0;
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const sum = { ce: 0, l1: 0, loss: 0, svgdRms: 0, hRms: 0 };
      let batches = 0;
      for (const idx of shuffledBatches(ds.n, opts.batchSize, deriveSeed(opts.seed, epoch))) {
        if (idx.length !== opts.batchSize) continue; // `if args.batch_size == images.size(0)`
        const b = gatherBatch(ds, idx);
        const x = tf.tensor4d(b.images, [b.n, h, w, c]);
        const y = tf.tensor1d(b.labels, "int32");
        const s = officialTrainStep(target, optimizer, x, y, opts, step);
        tf.dispose([x, y]);
        for (const key of Object.keys(sum) as (keyof typeof sum)[]) sum[key] += s[key];
        batches++;
        step++;
        opts.onStep?.(step, total);
      }
      const mean = Object.fromEntries(
        Object.entries(sum).map(([key, v]) => [key, v / Math.max(1, batches)]),
      ) as unknown as OfficialBatchStats;
      out.push(mean);
      await opts.onEpoch?.(epoch, mean);
    }
  } finally {
    optimizer.dispose();
  }
  return out;
}
