/**
 * Plain supervised training of a classifier: epochs of seeded shuffled
 * batches, a learning-rate schedule, and a callback per epoch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedUpdateAvailable, SGD_UPDATE } from "../backend/mod.ts";
import { TorchAdam } from "../attacks/torch_adam.ts";
import { type Dataset, deriveSeed, gatherBatch, imageShape, shuffledBatches } from "../data/mod.ts";
import { CROSS_ENTROPY } from "./losses.ts";
import { makeTrainer } from "./trainer.ts";

/** Options for {@linkcode fit}. */
export interface FitOptions {
  /** Number of passes over the data. */
  epochs: number;
  /** Examples per step. */
  batchSize: number;
  /** "sgd" (with momentum and weight decay) or "adam". */
  optimizer: "sgd" | "adam";
  /** Initial learning rate. */
  lr: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** L2 weight decay added to the gradient, PyTorch-style (default 0). */
  weightDecay?: number;
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

/** SGD with momentum and coupled weight decay, as torch.optim.SGD. */
class TorchSGD extends tf.MomentumOptimizer {
  constructor(lr: number, momentum: number, readonly weightDecay: number) {
    super(lr, momentum);
  }
  override dispose(): void {
    super.dispose();
    // tfjs's MomentumOptimizer keeps -lr as a scalar tensor (`c`) that its dispose() leaves behind.
    const c = (this as unknown as { c?: tf.Tensor }).c;
    if (c !== undefined && !c.isDisposed) c.dispose();
  }
  override applyGradients(g: Parameters<tf.MomentumOptimizer["applyGradients"]>[0]): void {
    const list: { name: string; tensor: tf.Tensor }[] = Array.isArray(g)
      ? g
      : Object.entries(g).map(([name, tensor]) => ({ name, tensor }));
    if (this.#applyFused(list)) return;
    if (this.weightDecay === 0) return super.applyGradients(g);
    const decayed = tf.tidy(() =>
      list.map(({ name, tensor }) => {
        const v = tf.engine().registeredVariables[name];
        return { name, tensor: v ? tf.add(tensor, tf.mul(v, this.weightDecay)) : tensor };
      })
    );
    super.applyGradients(decayed);
    tf.dispose(decayed.filter((d, i) => d.tensor !== list[i].tensor).map((d) => d.tensor));
  }
  /**
   * The same update as one fused kernel per variable (lib/backend/native/optimizer_update.ts), keeping
   * tfjs's accumulator bookkeeping so getWeights/setWeights (checkpoints) are unchanged. False when the
   * kernel is not available for these tensors (then nothing was done).
   */
  #applyFused(list: { name: string; tensor: tf.Tensor }[]): boolean {
    const vars = list.map(({ name }) => tf.engine().registeredVariables[name]);
    if (list.some((l) => l.tensor == null)) return false; // tfjs allows missing gradients: the unfused path skips them
    if (vars.some((v) => v === undefined) || !fusedUpdateAvailable(SGD_UPDATE, ...vars, ...list.map((l) => l.tensor))) {
      return false;
    }
    const self = this as unknown as {
      accumulations: { originalName: string; variable: tf.Variable }[];
      momentum: number;
    };
    list.forEach(({ name, tensor }, i) => {
      const value = vars[i];
      if (self.accumulations[i] == null) {
        self.accumulations[i] = {
          originalName: `${name}/momentum`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
      }
      const acc = self.accumulations[i].variable;
      const out = tf.engine().runKernel(
        SGD_UPDATE,
        { param: value, buf: acc, grad: tensor },
        { lr: this.learningRate, momentum: self.momentum, weightDecay: this.weightDecay },
      ) as tf.Tensor[];
      value.assign(out[0]);
      acc.assign(out[1]);
      tf.dispose(out);
    });
    this.incrementIterations();
    return true;
  }
}

/** Makes the optimizer described by `opts`; its learning rate can be changed via `setLr`. */
export function makeOptimizer(
  opts: Pick<FitOptions, "optimizer" | "lr" | "momentum" | "weightDecay">,
): { optimizer: tf.Optimizer; setLr: (lr: number) => void } {
  if (opts.optimizer === "adam") {
    const o = new TorchAdam(opts.lr);
    return { optimizer: o, setLr: (lr) => (o.learningRate = lr) };
  }
  const o = new TorchSGD(opts.lr, opts.momentum ?? 0.9, opts.weightDecay ?? 0);
  return { optimizer: o, setLr: (lr) => o.setLearningRate(lr) };
}

/** The learning rate at `progress` ∈ [0, 1] of a multi-step schedule. */
export function stepLr(lr: number, progress: number, milestones: number[] = [], gamma = 0.1): number {
  return milestones.reduce((acc, m) => (progress >= m ? acc * gamma : acc), lr);
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
